//! `local_date(ts, timezone)`: the calendar day of an instant in an IANA timezone.
//! The data contract turns timestamps into days "by converting to the pipeline's
//! timezone first"; this is that conversion, exact across daylight-saving changes.

use std::sync::Arc;

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::arrow::error::ArrowError;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

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
        let zone = match timestamps.data_type() {
            DataType::Timestamp(_, None) => Tz::UTC,
            _ => zone,
        };
        let instants = datafusion::arrow::compute::cast(&timestamps, &INSTANT)?;
        let instants = instants.as_primitive::<TimestampMicrosecondType>();
        let days: Date32Array = match zone {
            Tz::UTC | Tz::Etc__UTC => instants.try_unary(utc_day)?,
            zone => instants.try_unary(|micros| local_day(micros, zone))?,
        };
        Ok(ColumnarValue::Array(Arc::new(days) as ArrayRef))
    }
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// The day (days since 1970-01-01) of the instant `micros` after the epoch in `zone`:
/// the zone's offset at that instant, then whole days by integer division (this runs
/// once per order, and chrono's calendar dates cost more than the offset lookup).
fn local_day(micros: i64, zone: Tz) -> Result<i32, ArrowError> {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let utc = DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| ArrowError::ComputeError(format!("local_date: timestamp {micros} µs is out of range")))?;
    let offset = zone.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc();
    Ok((seconds + i64::from(offset)).div_euclid(SECONDS_PER_DAY) as i32)
}

/// [`local_day`] in UTC, whose offset is always zero: whole days since the epoch, without
/// the zone lookup and calendar that cost most of a stage reading 40 M orders' days.
fn utc_day(micros: i64) -> Result<i32, ArrowError> {
    let (first, last) = (DateTime::<Utc>::MIN_UTC.timestamp(), DateTime::<Utc>::MAX_UTC.timestamp());
    match micros.div_euclid(MICROS_PER_SECOND) {
        seconds if (first..=last).contains(&seconds) => Ok(seconds.div_euclid(SECONDS_PER_DAY) as i32),
        _ => Err(ArrowError::ComputeError(format!("local_date: timestamp {micros} µs is out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate};

    use super::*;
    use crate::config::types::days_since_epoch;

    /// Every quarter hour of 2024, and of a few years with unusual transitions, agrees
    /// with chrono's calendar date in zones with daylight saving on both hemispheres,
    /// half-hour offsets and a transition at midnight.
    #[test]
    fn agrees_with_the_calendar_across_daylight_saving_changes() {
        let zones = ["Europe/Rome", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Kolkata"];
        for zone in zones.map(|name| name.parse::<Tz>().unwrap()) {
            for year in [1900, 1970, 2018, 2024] {
                let start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
                for step in 0..(366 * 96) {
                    let instant = start + Duration::minutes(15 * step) - Duration::seconds(1);
                    let expected = days_since_epoch(instant.with_timezone(&zone).date_naive());
                    assert_eq!(local_day(instant.timestamp_micros(), zone).unwrap(), expected, "{instant} in {zone}");
                }
            }
        }
    }

    #[test]
    fn days_in_utc_are_the_days_the_zone_lookup_gives_and_out_of_range_instants_fail_alike() {
        let (first, last) = (DateTime::<Utc>::MIN_UTC.timestamp_micros(), DateTime::<Utc>::MAX_UTC.timestamp_micros());
        let mut micros = first;
        let step = (last / 5_000) - (first / 5_000);
        while micros <= last - 1_000_000 {
            for instant in [micros, micros + 999_999, micros - micros.rem_euclid(86_400_000_000) - 1] {
                assert_eq!(utc_day(instant).ok(), local_day(instant, Tz::UTC).ok(), "{instant} µs");
            }
            micros += step;
        }
        for instant in [-1, 0, 86_399_999_999, 86_400_000_000, first, last, first - 1_000_000, i64::MIN, i64::MAX] {
            assert_eq!(utc_day(instant).ok(), local_day(instant, Tz::UTC).ok(), "{instant} µs");
        }
        assert!(utc_day(i64::MAX).is_err() && utc_day(i64::MIN).is_err());
    }

    #[test]
    fn instants_before_the_epoch_round_down_to_their_day() {
        let micros = -1; // 1969-12-31T23:59:59.999999Z
        assert_eq!(local_day(micros, Tz::UTC).unwrap(), -1);
    }
}
