//! Typing raw columns as declared: text is parsed value by value and native
//! (Parquet) columns are converted, and every value that does not fit is reported
//! with its row and column instead of failing the whole file.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    RecordBatch, StringArray, StringViewArray, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::config::types::days_since_epoch;
use crate::config::{Column, ColumnType};

/// A value that does not fit its declared column.
pub struct BadValue {
    /// Index of the row in the batch.
    pub index: usize,
    pub column: String,
    pub reason: String,
}

/// `batch` with its columns typed as `columns` declare, and the values that did not fit.
/// Declared columns missing from the batch are null; the caller rejects missing required ones.
pub fn type_batch(batch: &RecordBatch, columns: &[Column], timezone: Tz) -> (RecordBatch, Vec<BadValue>) {
    let mut bad = Vec::new();
    let mut arrays = Vec::with_capacity(columns.len());
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        let target = column.kind.data_type();
        let array = match batch.schema().index_of(column.file_name()) {
            Ok(index) => {
                let (array, problems) = convert(batch.column(index), column.kind, timezone);
                bad.extend(problems.into_iter().map(|(index, reason)| BadValue {
                    index,
                    column: column.name.clone(),
                    reason,
                }));
                array
            }
            Err(_) => datafusion::arrow::array::new_null_array(&target, batch.num_rows()),
        };
        if column.required {
            for index in (0..array.len()).filter(|&i| array.is_null(i) && batch_value_missing(batch, column, i)) {
                bad.push(BadValue { index, column: column.name.clone(), reason: "required value is missing".into() });
            }
        }
        fields.push(Field::new(&column.name, target, !column.required));
        arrays.push(array);
    }
    // Required columns are declared non-null; rows with nulls there are removed before use.
    let schema = Arc::new(Schema::new(fields.into_iter().map(|f| f.with_nullable(true)).collect::<Vec<_>>()));
    let typed = RecordBatch::try_new(schema, arrays).expect("typed columns have the batch's length");
    (typed, bad)
}

/// True when the raw value was absent, so a null is "missing", not "unparsable" (reported once).
fn batch_value_missing(batch: &RecordBatch, column: &Column, index: usize) -> bool {
    batch.schema().index_of(column.file_name()).map_or(true, |i| batch.column(i).is_null(index))
}

/// Converts one column, returning the (row index, reason) of values that do not fit.
fn convert(array: &ArrayRef, kind: ColumnType, timezone: Tz) -> (ArrayRef, Vec<(usize, String)>) {
    let target = kind.data_type();
    if array.data_type() == &target {
        return (Arc::clone(array), Vec::new());
    }
    if let Some(text) = array.as_string_opt::<i32>() {
        return parse_text(text, kind, timezone);
    }
    match (array.data_type(), kind) {
        // A timestamp without zone is a wall-clock time in the pipeline's timezone.
        (DataType::Timestamp(_, None), ColumnType::Timestamp) => {
            let micros =
                cast_with_options(array, &DataType::Timestamp(TimeUnit::Microsecond, None), &CastOptions::default());
            match micros {
                Ok(micros) => {
                    let values = micros.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
                    let mut builder = TimestampMicrosecondBuilder::with_capacity(values.len()).with_timezone("UTC");
                    let mut bad = Vec::new();
                    for (index, value) in values.iter().enumerate() {
                        let local = value.and_then(DateTime::from_timestamp_micros).map(|d| d.naive_utc());
                        match local.map(|naive| local_to_utc(naive, timezone)) {
                            Some(Ok(utc)) => builder.append_value(utc.timestamp_micros()),
                            Some(Err(reason)) => {
                                bad.push((index, reason));
                                builder.append_null();
                            }
                            None => builder.append_null(),
                        }
                    }
                    (Arc::new(builder.finish()), bad)
                }
                Err(error) => all_bad(array, &target, &error.to_string()),
            }
        }
        _ => cast_checked(array, &target),
    }
}

/// Casts, reporting every non-null value that became null.
fn cast_checked(array: &ArrayRef, target: &DataType) -> (ArrayRef, Vec<(usize, String)>) {
    match cast_with_options(array, target, &CastOptions { safe: true, ..Default::default() }) {
        Ok(cast) => {
            let bad = (0..array.len())
                .filter(|&i| array.is_valid(i) && cast.is_null(i))
                .map(|i| (i, format!("cannot convert this {} value to {target}", array.data_type())))
                .collect();
            (cast, bad)
        }
        Err(error) => all_bad(array, target, &error.to_string()),
    }
}

fn all_bad(array: &ArrayRef, target: &DataType, error: &str) -> (ArrayRef, Vec<(usize, String)>) {
    let bad = (0..array.len())
        .filter(|&i| array.is_valid(i))
        .map(|i| (i, format!("cannot convert {} to {target}: {error}", array.data_type())))
        .collect();
    (datafusion::arrow::array::new_null_array(target, array.len()), bad)
}

fn parse_text(text: &StringArray, kind: ColumnType, timezone: Tz) -> (ArrayRef, Vec<(usize, String)>) {
    let mut bad = Vec::new();
    macro_rules! parse_into {
        ($builder:expr, $parse:expr) => {{
            let mut builder = $builder;
            for (index, value) in text.iter().enumerate() {
                match value.map(str::trim).filter(|v| !v.is_empty()).map($parse) {
                    Some(Ok(parsed)) => builder.append_value(parsed),
                    Some(Err(reason)) => {
                        bad.push((index, format!("{reason}: `{}`", value.unwrap_or_default())));
                        builder.append_null();
                    }
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    let array = match kind {
        // gc: the views keep only the text they point to (short strings need none), not
        // the whole buffer of the file's column.
        ColumnType::String => Arc::new(StringViewArray::from(text).gc()) as ArrayRef,
        ColumnType::Integer => parse_into!(Int64Builder::with_capacity(text.len()), |v: &str| v
            .parse::<i64>()
            .map_err(|_| "not an integer".to_string())),
        ColumnType::Float => parse_into!(Float64Builder::with_capacity(text.len()), |v: &str| v
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| "not a number".to_string())),
        ColumnType::Boolean => parse_into!(BooleanBuilder::with_capacity(text.len()), parse_bool),
        ColumnType::Date => parse_into!(Date32Builder::with_capacity(text.len()), |v: &str| {
            plain_date(v)
                .or_else(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
                .map(days_since_epoch)
                .ok_or_else(|| "not a date (YYYY-MM-DD)".to_string())
        }),
        ColumnType::Month => parse_into!(Date32Builder::with_capacity(text.len()), |v: &str| {
            let first_day = format!("{v}-01");
            plain_date(&first_day)
                .or_else(|| NaiveDate::parse_from_str(&first_day, "%Y-%m-%d").ok())
                .map(days_since_epoch)
                .ok_or_else(|| "not a month (YYYY-MM)".to_string())
        }),
        ColumnType::Timestamp => {
            parse_into!(TimestampMicrosecondBuilder::with_capacity(text.len()).with_timezone("UTC"), |v: &str| {
                parse_timestamp(v, timezone)
            })
        }
        ColumnType::Decimal(precision, scale) => parse_into!(
            Decimal128Builder::with_capacity(text.len())
                .with_precision_and_scale(precision, scale)
                .expect("declared precision and scale are validated when the pipeline loads"),
            |v: &str| parse_decimal(v, precision, scale)
        ),
    };
    (array, bad)
}

/// A date written exactly `YYYY-MM-DD`, read digit by digit: chrono's format parser
/// costs more than the rest of loading a column of a million dates. Other spellings
/// chrono accepts (`2024-5-1`) are left to it.
fn plain_date(value: &str) -> Option<NaiveDate> {
    let bytes = value.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number =
        |digits: &[u8]| digits.iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')));
    let year = i32::try_from(number(&bytes[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&bytes[5..7])?, number(&bytes[8..])?)
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "0" => Ok(false),
        _ => Err("not a boolean (true/false)".into()),
    }
}

/// Parses an exact decimal into its unscaled integer; more fractional digits than
/// `scale` is an error rather than a silent rounding of money.
pub fn parse_decimal(value: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = scale.max(0) as usize;
    let valid = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !valid(whole) || !valid(fraction) {
        return Err("not a decimal number".into());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale {
        return Err(format!("more than {scale} decimal places"));
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() + scale > precision as usize {
        return Err(format!("too large for decimal({precision},{scale})"));
    }
    let mut unscaled: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()).chain(std::iter::repeat_n(b'0', scale - fraction.len())) {
        unscaled = unscaled * 10 + i128::from(b - b'0');
    }
    Ok(if negative { -unscaled } else { unscaled })
}

/// Parses an ISO-8601 date-time with or without offset (or a date, at midnight) into
/// UTC microseconds; values without an offset are wall-clock times in `timezone`.
pub fn parse_timestamp(value: &str, timezone: Tz) -> Result<i64, String> {
    const OFFSET_FORMATS: [&str; 4] =
        ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z"];
    const NAIVE_FORMATS: [&str; 4] =
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];
    const ERROR: &str = "not an ISO-8601 timestamp (e.g. 2024-05-01T10:30:00+02:00 or 2024-05-01)";
    let normalized = match value.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => value.to_string(),
    };
    if let Some(parsed) = OFFSET_FORMATS.iter().find_map(|f| DateTime::parse_from_str(&normalized, f).ok()) {
        return Ok(parsed.with_timezone(&Utc).timestamp_micros());
    }
    let naive = NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .ok_or_else(|| ERROR.to_string())?;
    local_to_utc(naive, timezone).map(|utc| utc.timestamp_micros())
}

/// A wall-clock time in `timezone` as an instant. Ambiguous times (the repeated hour
/// when clocks go back) take the earlier instant; times in the gap when clocks go
/// forward do not exist and are moved forward by the gap, as most databases do.
fn local_to_utc(naive: NaiveDateTime, timezone: Tz) -> Result<DateTime<Utc>, String> {
    use chrono::{LocalResult, Offset};
    match timezone.from_local_datetime(&naive) {
        LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => Ok(time.with_timezone(&Utc)),
        LocalResult::None => {
            // Read the time with the offset in force before the gap (as PostgreSQL does).
            let before = timezone
                .from_local_datetime(&(naive - chrono::Duration::hours(3)))
                .earliest()
                .ok_or_else(|| format!("{naive} does not exist in {timezone}"))?;
            let offset = chrono::Duration::seconds(i64::from(before.offset().fix().local_minus_utc()));
            Ok(Utc.from_utc_datetime(&(naive - offset)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_dates_read_as_chrono_reads_them() {
        for text in ["2024-02-29", "2023-02-29", "1999-12-31", "0001-01-01", "2024-13-01", "2024-00-10", "2024-1a-01"] {
            let chrono = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
            assert_eq!(plain_date(text), chrono, "{text}");
        }
        // Spellings with fewer digits are chrono's to read.
        assert_eq!(plain_date("2024-5-01"), None);
        assert!(NaiveDate::parse_from_str("2024-5-01", "%Y-%m-%d").is_ok());
    }

    fn micros(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros()
    }

    #[test]
    fn timestamps_with_offsets_naive_and_dates() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        assert_eq!(parse_timestamp("2024-01-31T23:30:00Z", rome), Ok(micros("2024-01-31T23:30:00Z")));
        assert_eq!(parse_timestamp("2024-01-31 23:30:00-05:00", rome), Ok(micros("2024-02-01T04:30:00Z")));
        assert_eq!(parse_timestamp("2024-01-31T23:30:00.250+0100", rome), Ok(micros("2024-01-31T22:30:00.250Z")));
        // Naive values are Rome wall-clock time (UTC+1 in winter, UTC+2 in summer).
        assert_eq!(parse_timestamp("2024-01-31T00:30:00", rome), Ok(micros("2024-01-30T23:30:00Z")));
        assert_eq!(parse_timestamp("2024-07-01 00:30", rome), Ok(micros("2024-06-30T22:30:00Z")));
        assert_eq!(parse_timestamp("2024-07-01", rome), Ok(micros("2024-06-30T22:00:00Z")));
        assert!(parse_timestamp("31/01/2024", rome).is_err());
    }

    #[test]
    fn daylight_saving_edges_are_resolved() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        // 02:30 does not exist on 2024-03-31 in Rome: moved forward to 03:30 CEST.
        assert_eq!(parse_timestamp("2024-03-31T02:30:00", rome), Ok(micros("2024-03-31T01:30:00Z")));
        // 02:30 happens twice on 2024-10-27: the earlier one (CEST) is taken.
        assert_eq!(parse_timestamp("2024-10-27T02:30:00", rome), Ok(micros("2024-10-27T00:30:00Z")));
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.5", 18, 2), Ok(1250));
        assert_eq!(parse_decimal("-0.07", 18, 2), Ok(-7));
        assert_eq!(parse_decimal("+3", 18, 2), Ok(300));
        assert_eq!(parse_decimal("1.230", 18, 2), Ok(123));
        assert!(parse_decimal("1.234", 18, 2).is_err());
        assert!(parse_decimal("12,50", 18, 2).is_err());
        assert!(parse_decimal("abc", 18, 2).is_err());
        assert!(parse_decimal("1e5", 18, 2).is_err());
        assert!(parse_decimal("1234", 4, 2).is_err());
    }

    #[test]
    fn bad_values_name_row_and_column() {
        let schema = Arc::new(Schema::new(vec![Field::new("Amount", DataType::Utf8, true)]));
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("1.5"), Some("x"), None]));
        let batch = RecordBatch::try_new(schema, vec![values]).unwrap();
        let column = Column {
            name: "amount".into(),
            description: None,
            kind: ColumnType::Decimal(18, 2),
            required: true,
            from: Some("Amount".into()),
        };
        let (typed, bad) = type_batch(&batch, &[column], Tz::UTC);
        assert_eq!(typed.schema().field(0).name(), "amount");
        let found: Vec<(usize, &str)> = bad.iter().map(|b| (b.index, b.reason.as_str())).collect();
        assert_eq!(found, [(1, "not a decimal number: `x`"), (2, "required value is missing")]);
    }

    #[test]
    fn text_of_any_arrow_string_layout_becomes_string_views() {
        use datafusion::arrow::array::{DictionaryArray, LargeStringArray};
        use datafusion::arrow::datatypes::Int32Type;
        let layouts: [ArrayRef; 3] = [
            Arc::new(StringArray::from(vec![Some("C00000001"), None, Some("a customer id longer than twelve bytes")])),
            Arc::new(LargeStringArray::from(vec![
                Some("C00000001"),
                None,
                Some("a customer id longer than twelve bytes"),
            ])),
            Arc::new(
                vec![Some("C00000001"), None, Some("a customer id longer than twelve bytes")]
                    .into_iter()
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
        ];
        for values in layouts {
            let layout = values.data_type().clone();
            let (typed, bad) = convert(&values, ColumnType::String, Tz::UTC);
            assert!(bad.is_empty(), "{layout}: {:?}", bad);
            assert_eq!(typed.data_type(), &DataType::Utf8View, "{layout}");
            let texts: Vec<Option<&str>> = typed.as_string_view().iter().collect();
            assert_eq!(texts, [Some("C00000001"), None, Some("a customer id longer than twelve bytes")], "{layout}");
        }
    }
}
