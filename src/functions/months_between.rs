//! `months_between(from, to)`: whole calendar months from `from`'s month to `to`'s
//! month (2024-01-31 → 2024-02-01 is 1). Cohort tables index months this way.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, AsArray, Int32Array};
use datafusion::arrow::compute::binary;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MonthsBetween {
    signature: Signature,
}

impl MonthsBetween {
    pub fn new() -> Self {
        MonthsBetween { signature: Signature::exact(vec![DataType::Date32, DataType::Date32], Volatility::Immutable) }
    }
}

/// The month of a Date32 (days since 1970-01-01) as a count of months since year 0.
/// Pipelines call this on tens of millions of dates per run, nearly all within a few
/// years, so the months of the days of 1900-2199 are computed once and looked up.
pub(super) fn month_index(days: i32) -> i64 {
    static MONTHS: LazyLock<Vec<i32>> = LazyLock::new(|| {
        (TABLE_FIRST_DAY..TABLE_FIRST_DAY + TABLE_DAYS as i32).map(|day| civil_month_index(day) as i32).collect()
    });
    let slot = days.checked_sub(TABLE_FIRST_DAY).and_then(|i| usize::try_from(i).ok());
    match slot.and_then(|i| MONTHS.get(i)) {
        Some(&month) => i64::from(month),
        None => civil_month_index(days),
    }
}

/// 1900-01-01 as days since 1970-01-01, and the days up to 2199-12-31.
const TABLE_FIRST_DAY: i32 = -25_567;
const TABLE_DAYS: usize = 109_573;

/// `month_index` by Howard Hinnant's `civil_from_days`: integer arithmetic.
fn civil_month_index(days: i32) -> i64 {
    let shifted = i64::from(days) + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 = March .. 11 = February
    // Years start in March here; January and February belong to the next civil year.
    let year = year_of_era + era * 400 + i64::from(month_from_march >= 10);
    let month = (month_from_march + 2) % 12; // 0 = January
    year * 12 + month
}

/// Calendar months from the month of `from` to the month of `to` (Date32 days).
fn months_between(from: i32, to: i32) -> i32 {
    (month_index(to) - month_index(from)) as i32
}

/// The day of a constant argument (`None` for NULL).
fn date(value: &ScalarValue) -> Result<Option<i32>> {
    match value {
        ScalarValue::Date32(day) => Ok(*day),
        other => exec_err!("months_between takes dates, got {}", other.data_type()),
    }
}

impl ScalarUDFImpl for MonthsBetween {
    fn name(&self) -> &str {
        "months_between"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [from, to] = args.args.as_slice() else {
            return exec_err!("months_between takes two dates");
        };
        // Whole arrays at once (a null either side gives null): this runs on every
        // order and purchase day. A constant side, such as DATE '1970-01-01' to number
        // months, is not expanded to an array first.
        let months: Int32Array = match (from, to) {
            (ColumnarValue::Scalar(from), ColumnarValue::Array(to)) => match date(from)? {
                Some(from) => to.as_primitive::<Date32Type>().unary(|to| months_between(from, to)),
                None => Int32Array::new_null(to.len()),
            },
            (ColumnarValue::Array(from), ColumnarValue::Scalar(to)) => match date(to)? {
                Some(to) => from.as_primitive::<Date32Type>().unary(|from| months_between(from, to)),
                None => Int32Array::new_null(from.len()),
            },
            _ => {
                let (from, to) = (from.to_array(args.number_rows)?, to.to_array(args.number_rows)?);
                binary(from.as_primitive::<Date32Type>(), to.as_primitive::<Date32Type>(), months_between)?
            }
        };
        Ok(ColumnarValue::Array(Arc::new(months) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate};
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn days(date: &str) -> i32 {
        let date: NaiveDate = date.parse().unwrap();
        (date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
    }

    #[test]
    fn the_table_spans_1900_to_2199() {
        assert_eq!(TABLE_FIRST_DAY, days("1900-01-01"));
        assert_eq!(TABLE_FIRST_DAY + TABLE_DAYS as i32 - 1, days("2199-12-31"));
    }

    #[test]
    fn counts_calendar_months() {
        assert_eq!(months_between(days("2024-01-31"), days("2024-02-01")), 1);
        assert_eq!(months_between(days("2023-11-15"), days("2024-02-10")), 3);
        assert_eq!(months_between(days("2024-03-01"), days("2024-03-31")), 0);
        assert_eq!(months_between(days("2024-03-01"), days("2023-03-31")), -12);
        assert_eq!(months_between(days("1970-01-01"), days("1900-01-01")), -840);
    }

    #[test]
    fn agrees_with_the_calendar_on_every_day_from_1600_to_2400() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for offset in days("1600-01-01")..days("2400-12-31") {
            let date = epoch + chrono::Duration::days(i64::from(offset));
            let expected = i64::from(date.year()) * 12 + i64::from(date.month0());
            assert_eq!(month_index(offset), expected, "{date}");
            assert_eq!(civil_month_index(offset), expected, "{date}");
        }
    }

    #[tokio::test]
    async fn constant_or_column_on_either_side_and_nulls_give_null() {
        let ctx = crate::run::session();
        let sql = "SELECT months_between(DATE '1970-01-01', a) AS from_epoch, months_between(a, DATE '2024-03-01') AS to_march, \
                   months_between(a, b) AS between, months_between(NULL, a) AS from_null \
                   FROM (VALUES (DATE '2024-01-31', DATE '2024-02-01'), (NULL, DATE '2024-02-01'), (DATE '1969-12-31', NULL)) AS t(a, b)";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let column = |name: &str| -> Vec<Option<i32>> {
            batches
                .iter()
                .flat_map(|b| b.column_by_name(name).unwrap().as_primitive::<Int32Type>().iter().collect::<Vec<_>>())
                .collect()
        };
        assert_eq!(column("from_epoch"), [Some(648), None, Some(-1)]);
        assert_eq!(column("to_march"), [Some(2), None, Some(651)]);
        assert_eq!(column("between"), [Some(1), None, None]);
        assert_eq!(column("from_null"), [None, None, None]);
    }
}
