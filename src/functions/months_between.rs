//! `months_between(from, to)`: whole calendar months from `from`'s month to `to`'s
//! month (2024-01-31 → 2024-02-01 is 1). Cohort tables index months this way.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::common::{Result, exec_err};
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

/// The month of a Date32 (days since 1970-01-01) as a count of months since year 0,
/// by Howard Hinnant's `civil_from_days`: plain integer arithmetic, because pipelines
/// call this on millions of rows.
fn month_index(days: i32) -> i64 {
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
        let (from, to) = (from.to_array(args.number_rows)?, to.to_array(args.number_rows)?);
        let (from, to) = (from.as_primitive::<Date32Type>(), to.as_primitive::<Date32Type>());
        let months: Int32Array = (0..from.len())
            .map(|i| {
                let (a, b) = (from.is_valid(i).then(|| from.value(i))?, to.is_valid(i).then(|| to.value(i))?);
                Some(months_between(a, b))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(months) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate};

    use super::*;

    fn days(date: &str) -> i32 {
        let date: NaiveDate = date.parse().unwrap();
        (date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
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
            assert_eq!(month_index(offset), i64::from(date.year()) * 12 + i64::from(date.month0()), "{date}");
        }
    }
}
