//! `month_start(date)`: the first day of the date's month — what
//! `CAST(date_trunc('month', date) AS DATE)` gives, without DataFusion's round trip
//! through nanosecond timestamps and chrono for every value (the pipeline truncates
//! every order's and loyalty event's day to its month).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Date32Array};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::common::{Result, ScalarValue, exec_err};
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
}
