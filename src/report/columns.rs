//! Typed access to the columns of a published table, whatever Arrow type it was
//! written with: money is `DECIMAL(18,2)`, counts are 64-bit integers, rates
//! doubles, months and days `DATE`s, and a table read back from Parquet may differ
//! in width or string layout from the one the run computed. Every column is cast to
//! the one type the report works in, so the report does not care.

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};

use crate::error::{Error, Result};

/// One output table, by name (for error messages).
pub(crate) struct Table<'a> {
    name: &'a str,
    batches: &'a [RecordBatch],
}

impl<'a> Table<'a> {
    pub(crate) fn new(name: &'a str, batches: &'a [RecordBatch]) -> Self {
        Self { name, batches }
    }

    /// `column` of every batch. A missing column is an error: the tables are the
    /// pipeline's contract (shared/METRICS.md), and a report silently showing "no
    /// data" for a renamed column would hide the break.
    fn arrays(&self, column: &str) -> Result<Vec<&'a ArrayRef>> {
        self.batches
            .iter()
            .map(|batch| {
                batch.column_by_name(column).ok_or_else(|| {
                    let found: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
                    Error::Data(format!(
                        "table `{}` has no column `{column}` (it has {}); the report reads the columns of \
                         shared/METRICS.md: rerun the pipeline that publishes it",
                        self.name,
                        found.join(", ")
                    ))
                })
            })
            .collect()
    }

    /// `column` of every batch, cast to `data_type`.
    fn column(&self, column: &str, data_type: &DataType) -> Result<Vec<ArrayRef>> {
        self.arrays(column)?
            .into_iter()
            .map(|array| {
                cast(array, data_type).map_err(|e| {
                    Error::Data(format!(
                        "table `{}`, column `{column}`: cannot read {} as {data_type}: {e}",
                        self.name,
                        array.data_type()
                    ))
                })
            })
            .collect()
    }

    /// A numeric column (integer, decimal or float) as `f64`.
    pub(crate) fn floats(&self, column: &str) -> Result<Vec<Option<f64>>> {
        let arrays = self.column(column, &DataType::Float64)?;
        Ok(collect(&arrays, |a| a.as_primitive::<Float64Type>().iter()))
    }

    /// An integer column as `i64`.
    pub(crate) fn integers(&self, column: &str) -> Result<Vec<Option<i64>>> {
        let arrays = self.column(column, &DataType::Int64)?;
        Ok(collect(&arrays, |a| a.as_primitive::<Int64Type>().iter()))
    }

    /// A text column, borrowed from the table: customer-level tables have a million
    /// ids, which are not worth copying.
    pub(crate) fn strings(&self, column: &str) -> Result<Vec<Option<&'a str>>> {
        let arrays = self.arrays(column)?;
        let mut out = Vec::with_capacity(arrays.iter().map(|a| a.len()).sum());
        for array in arrays {
            match array.data_type() {
                DataType::Utf8 => out.extend(array.as_string::<i32>().iter()),
                DataType::LargeUtf8 => out.extend(array.as_string::<i64>().iter()),
                DataType::Utf8View => out.extend(array.as_string_view().iter()),
                other => {
                    return Err(Error::Data(format!(
                        "table `{}`, column `{column}`: cannot read {other} as text",
                        self.name
                    )));
                }
            }
        }
        Ok(out)
    }

    /// A date (or timestamp) column as calendar days.
    pub(crate) fn dates(&self, column: &str) -> Result<Vec<Option<NaiveDate>>> {
        let arrays = self.column(column, &DataType::Date32)?;
        Ok(collect(&arrays, |a| {
            let dates = a.as_primitive::<Date32Type>();
            (0..dates.len()).map(move |i| if dates.is_null(i) { None } else { dates.value_as_date(i) })
        }))
    }

    /// A boolean column.
    pub(crate) fn booleans(&self, column: &str) -> Result<Vec<Option<bool>>> {
        let arrays = self.column(column, &DataType::Boolean)?;
        Ok(collect(&arrays, |a| a.as_boolean().iter()))
    }
}

/// The values of every array, in order, into one vector sized up front (tables of a
/// million rows would otherwise grow it a dozen times).
fn collect<'a, T, I>(arrays: &'a [ArrayRef], values: impl Fn(&'a ArrayRef) -> I) -> Vec<T>
where
    I: Iterator<Item = T>,
{
    let mut out = Vec::with_capacity(arrays.iter().map(|a| a.len()).sum());
    for array in arrays {
        out.extend(values(array));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Date32Array, Decimal128Array, Int32Array, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("revenue", DataType::Decimal128(18, 2), true),
            Field::new("orders", DataType::Int32, true),
            Field::new("segment", DataType::Utf8View, true),
            Field::new("period", DataType::Date32, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Decimal128Array::from(vec![Some(123_456), None]).with_precision_and_scale(18, 2).unwrap()),
                Arc::new(Int32Array::from(vec![Some(7), None])),
                Arc::new(StringViewArray::from(vec![Some("Champions"), None])),
                Arc::new(Date32Array::from(vec![Some(19_723), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn columns_are_cast_to_the_report_types() {
        let batches = [batch(), batch()];
        let table = Table::new("kpi_monthly", &batches);
        assert_eq!(table.floats("revenue").unwrap(), [Some(1234.56), None, Some(1234.56), None]);
        assert_eq!(table.integers("orders").unwrap()[..2], [Some(7), None]);
        assert_eq!(table.strings("segment").unwrap()[..2], [Some("Champions"), None]);
        let error = table.strings("revenue").unwrap_err().to_string();
        assert!(error.contains("column `revenue`: cannot read Decimal128(18, 2) as text"), "{error}");
        assert_eq!(table.dates("period").unwrap()[..2], [NaiveDate::from_ymd_opt(2024, 1, 1), None]);
    }

    #[test]
    fn a_missing_column_names_the_table_and_what_it_has() {
        let batches = [batch()];
        let error = Table::new("kpi_monthly", &batches).floats("crr").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("table `kpi_monthly` has no column `crr` (it has revenue, orders, segment, period)"),
            "{error}"
        );
    }
}
