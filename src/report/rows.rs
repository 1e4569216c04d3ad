//! A table as the templates see it: a list of rows, each an object from column name to
//! value. Whatever Arrow type a column was written with, its values become plain
//! template values: integers and floats numbers (money, a `DECIMAL`, too: the filters
//! format it), text strings, booleans, dates `YYYY-MM-DD` strings, and every other type
//! its Arrow display text. A null, and a float that is not a finite number, is null:
//! "no data" for the filters.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, UInt64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// One row: column name → value.
pub type Row = Map<String, Value>;

/// The rows of `batches`, the batches of table `name` (for error messages).
pub fn rows(name: &str, batches: &[RecordBatch]) -> Result<Vec<Row>> {
    let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in batches {
        let schema = batch.schema();
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(array, field)| {
                values(array).map_err(|e| {
                    Error::Data(format!(
                        "table `{name}`, column `{}`: cannot read {}: {e}",
                        field.name(),
                        array.data_type()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for index in 0..batch.num_rows() {
            let row = schema.fields().iter().zip(&columns).map(|(f, c)| (f.name().clone(), c[index].clone())).collect();
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Every value of `array`, as template values.
fn values(array: &ArrayRef) -> std::result::Result<Vec<Value>, datafusion::arrow::error::ArrowError> {
    let nullable = |i: usize, value: Value| if array.is_null(i) { Value::Null } else { value };
    let all = 0..array.len();
    Ok(match array.data_type() {
        DataType::Null => vec![Value::Null; array.len()],
        DataType::Boolean => {
            let booleans = array.as_boolean();
            all.map(|i| nullable(i, Value::Bool(booleans.value(i)))).collect()
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => {
            let integers = cast(array, &DataType::Int64)?;
            let integers = integers.as_primitive::<Int64Type>();
            all.map(|i| nullable(i, Value::from(integers.value(i)))).collect()
        }
        DataType::UInt64 => {
            let integers = array.as_primitive::<UInt64Type>();
            all.map(|i| nullable(i, Value::from(integers.value(i)))).collect()
        }
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => {
            let floats = cast(array, &DataType::Float64)?;
            let floats = floats.as_primitive::<Float64Type>();
            all.map(|i| nullable(i, Number::from_f64(floats.value(i)).map_or(Value::Null, Value::Number))).collect()
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = cast(array, &DataType::Utf8)?;
            let text = text.as_string::<i32>();
            all.map(|i| nullable(i, Value::String(text.value(i).to_string()))).collect()
        }
        DataType::Date32 | DataType::Date64 => {
            let days = cast(array, &DataType::Date32)?;
            let days = days.as_primitive::<Date32Type>();
            all.map(|i| match days.value_as_date(i) {
                Some(date) if days.is_valid(i) => Value::String(date.to_string()),
                _ => Value::Null,
            })
            .collect()
        }
        _ => {
            let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
            all.map(|i| nullable(i, Value::String(formatter.value(i).to_string()))).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, StringViewArray, TimestampSecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_become_template_values_whatever_their_arrow_type() {
        let schema = Schema::new(vec![
            Field::new("revenue", DataType::Decimal128(18, 2), true),
            Field::new("orders", DataType::Int32, true),
            Field::new("crr", DataType::Float64, true),
            Field::new("segment", DataType::Utf8View, true),
            Field::new("period", DataType::Date32, true),
            Field::new("is_complete", DataType::Boolean, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Second, None), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Decimal128Array::from(vec![Some(123_456), None]).with_precision_and_scale(18, 2).unwrap()),
                Arc::new(Int32Array::from(vec![Some(7), None])),
                Arc::new(Float64Array::from(vec![Some(f64::NAN), Some(0.25)])),
                Arc::new(StringViewArray::from(vec![Some("Champions"), None])),
                Arc::new(Date32Array::from(vec![Some(19_723), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(TimestampSecondArray::from(vec![Some(0), None])),
            ],
        )
        .unwrap();
        let rows = rows("kpi_monthly", &[batch]).unwrap();
        assert_eq!(
            Value::Array(rows.into_iter().map(Value::Object).collect()),
            json!([
                {"revenue": 1234.56, "orders": 7, "crr": null, "segment": "Champions", "period": "2024-01-01",
                 "is_complete": true, "at": "1970-01-01T00:00:00"},
                {"revenue": null, "orders": null, "crr": 0.25, "segment": null, "period": null,
                 "is_complete": null, "at": null},
            ])
        );
    }
}
