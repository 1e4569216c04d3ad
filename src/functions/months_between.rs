//! `months_between(from, to)`: whole calendar months from `from`'s month to `to`'s
//! month (2024-01-31 → 2024-02-01 is 1). Cohort tables index months this way.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
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

/// Calendar months from `from`'s month to `to`'s month.
pub fn months_between(from: NaiveDate, to: NaiveDate) -> i32 {
    (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32
}

fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days + 719_163)
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
                Some(months_between(date(a)?, date(b)?))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(months) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calendar_months() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(months_between(d("2024-01-31"), d("2024-02-01")), 1);
        assert_eq!(months_between(d("2023-11-15"), d("2024-02-10")), 3);
        assert_eq!(months_between(d("2024-03-01"), d("2024-03-31")), 0);
        assert_eq!(months_between(d("2024-03-01"), d("2023-03-31")), -12);
        assert_eq!(date(0), Some(d("1970-01-01")));
    }
}
