//! `local_date(ts, timezone)`: the calendar day of an instant in an IANA timezone.
//! The data contract turns timestamps into days "by converting to the pipeline's
//! timezone first"; this is that conversion, exact across daylight-saving changes.

use std::sync::Arc;

use chrono::DateTime;
use chrono_tz::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use crate::config::types::days_since_epoch;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LocalDate {
    signature: Signature,
}

impl LocalDate {
    pub fn new() -> Self {
        LocalDate { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

const INSTANT: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

impl ScalarUDFImpl for LocalDate {
    fn name(&self) -> &str {
        "local_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [
                DataType::Timestamp(_, zone),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null,
            ] => Ok(vec![DataType::Timestamp(TimeUnit::Microsecond, zone.clone()), DataType::Utf8]),
            _ => plan_err!("local_date(timestamp, timezone) takes a timestamp and a timezone name, got {arg_types:?}"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [timestamps, zone] = args.args.as_slice() else {
            return exec_err!("local_date takes two arguments");
        };
        let zone = match zone {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))) => {
                name.parse::<Tz>().or_else(|_| exec_err!("local_date: `{name}` is not an IANA timezone"))?
            }
            _ => return exec_err!("local_date: the timezone must be a constant string"),
        };
        let timestamps = timestamps.to_array(args.number_rows)?;
        // Timestamps without a zone are already wall-clock times: their day is the date part.
        let zoned = !matches!(timestamps.data_type(), DataType::Timestamp(_, None));
        let instants = datafusion::arrow::compute::cast(&timestamps, &INSTANT)?;
        let days: Date32Array = instants
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|micros| {
                let utc = DateTime::from_timestamp_micros(micros?)?;
                let date = if zoned { utc.with_timezone(&zone).date_naive() } else { utc.date_naive() };
                Some(days_since_epoch(date))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(days) as ArrayRef))
    }
}
