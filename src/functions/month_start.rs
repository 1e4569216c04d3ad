//! `month_start(date)`: the first day of the date's month — what
//! `CAST(date_trunc('month', date) AS DATE)` gives, without DataFusion's round trip
//! through nanosecond timestamps and chrono for every value (the pipeline truncates
//! every order's and loyalty event's day to its month).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Date32Array};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::months_between::month_index;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MonthStart {
    signature: Signature,
}

impl MonthStart {
    pub fn new() -> Self {
        MonthStart { signature: Signature::exact(vec![DataType::Date32], Volatility::Immutable) }
    }
}

/// The first day of the month of `days` (Date32: days since 1970-01-01), by Howard
/// Hinnant's `days_from_civil` on the month `month_index` finds.
fn month_start(days: i32) -> i32 {
    let month = month_index(days);
    let (year, month0) = (month.div_euclid(12), month.rem_euclid(12));
    // Years start in March here, so January and February count in the year before.
    let year = if month0 < 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month0 + 10) % 12) + 2) / 5; // day 1 of the month
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era - 719_468) as i32
}

impl ScalarUDFImpl for MonthStart {
    fn name(&self) -> &str {
        "month_start"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    /// Days in order give their months in order (a month starts no later than the next
    /// day's), so rows sorted by a day are sorted by its month: grouping orders sorted by
    /// customer and day by customer and month then streams, its result in that order.
    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        Ok(inputs.first().map_or(SortProperties::Singleton, |day| day.sort_properties))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [date] = args.args.as_slice() else {
            return exec_err!("month_start takes one date");
        };
        match date {
            ColumnarValue::Scalar(ScalarValue::Date32(day)) => {
                Ok(ColumnarValue::Scalar(ScalarValue::Date32(day.map(month_start))))
            }
            ColumnarValue::Scalar(other) => exec_err!("month_start takes a date, got {}", other.data_type()),
            ColumnarValue::Array(days) => {
                let months: Date32Array = days.as_primitive::<Date32Type>().unary(month_start);
                Ok(ColumnarValue::Array(Arc::new(months) as ArrayRef))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate};

    use super::*;
    use crate::config::types::days_since_epoch;

    #[test]
    fn agrees_with_the_calendar_on_every_day_from_1600_to_2400() {
        let mut date = NaiveDate::from_ymd_opt(1600, 1, 1).unwrap();
        while date.year() <= 2400 {
            let first = date.with_day(1).unwrap();
            assert_eq!(month_start(days_since_epoch(date)), days_since_epoch(first), "{date}");
            date = date.succ_opt().unwrap();
        }
    }

    #[tokio::test]
    async fn columns_constants_and_nulls() {
        let ctx = crate::run::session();
        let sql = "SELECT month_start(d) AS m, month_start(DATE '2024-02-29') AS c \
                   FROM (VALUES (DATE '2024-03-31'), (NULL), (DATE '1969-12-31')) AS t(d)";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let column = |name: &str| -> Vec<Option<i32>> {
            batches.iter().flat_map(|b| b.column_by_name(name).unwrap().as_primitive::<Date32Type>().iter()).collect()
        };
        let day = |text: &str| Some(days_since_epoch(text.parse().unwrap()));
        assert_eq!(column("m"), [day("2024-03-01"), None, day("1969-12-01")]);
        assert_eq!(column("c"), [day("2024-02-01"); 3]);
    }

    #[tokio::test]
    async fn rows_sorted_by_key_and_day_are_grouped_by_key_and_month_as_they_stream_by() {
        use datafusion::arrow::array::{RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{Field, Schema};
        use datafusion::datasource::MemTable;
        use datafusion::physical_plan::displayable;
        use datafusion::prelude::col;

        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("day", DataType::Date32, false),
        ]));
        let keys = StringArray::from(vec!["a", "a", "a", "b"]);
        let days = Date32Array::from(vec![19_000, 19_010, 19_050, 19_001]);
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(keys), Arc::new(days)]).unwrap();
        let sorted = vec![vec![col("key").sort(true, false), col("day").sort(true, false)]];
        let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap().with_sort_order(sorted);
        let ctx = crate::run::session();
        ctx.register_table("orders", Arc::new(table)).unwrap();
        let query = "SELECT key, month_start(day) AS month, COUNT(*) AS orders FROM orders \
                     GROUP BY key, month_start(day) ORDER BY key, month";
        let frame = ctx.sql(query).await.unwrap();
        let plan = displayable(frame.clone().create_physical_plan().await.unwrap().as_ref()).indent(false).to_string();
        assert!(plan.contains("ordering_mode=Sorted") && !plan.contains("SortExec"), "{plan}");
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&frame.collect().await.unwrap())
            .unwrap()
            .to_string();
        let rows: Vec<&str> = text.lines().filter(|line| line.starts_with("| ")).skip(1).collect();
        assert_eq!(
            rows,
            ["| a   | 2022-01-01 | 2      |", "| a   | 2022-02-01 | 1      |", "| b   | 2022-01-01 | 1      |"]
        );
    }
}
