//! Typing raw columns as declared. Each declared type has one rule (`integer`,
//! `decimal`, `timestamp`, …) that decides which values it accepts and what they mean,
//! whatever layout a file brought them in: text (CSV, NDJSON, and Parquet strings of
//! any Arrow layout) or native values (Parquet integers, floats, decimals, dates,
//! timestamps, booleans). A value that does not fit, or would fit only by rounding,
//! is reported with its row, column and the value itself instead of failing the
//! whole file. The README's column-type table states these rules for users.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{
    AnyDictionaryArray, Array, ArrayAccessor, ArrayIter, ArrayRef, AsArray, BooleanBuilder, Date32Builder,
    Decimal128Builder, Float64Builder, Int64Builder, RecordBatch, StringViewArray, StringViewBuilder,
    TimestampMicrosecondBuilder, new_null_array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    Field, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type, i256,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

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
        let (array, problems) = match batch.schema().index_of(column.file_name()) {
            Ok(index) => convert(batch.column(index), column.kind, timezone),
            Err(_) => (new_null_array(&target, batch.num_rows()), Vec::new()),
        };
        let mut missing = Vec::new();
        if column.required && array.null_count() > 0 {
            // A null that is not a bad value (reported already) is a missing one: a null,
            // an empty field, blank text. Problems come in row order.
            let mut reported = problems.iter().map(|(index, _)| *index).peekable();
            for index in (0..array.len()).filter(|&i| array.is_null(i)) {
                while reported.next_if(|&r| r < index).is_some() {}
                if reported.peek() != Some(&index) {
                    missing.push(index);
                }
            }
        }
        let reasons = problems.into_iter().chain(missing.into_iter().map(|i| (i, "required value is missing".into())));
        bad.extend(reasons.map(|(index, reason)| BadValue { index, column: column.name.clone(), reason }));
        fields.push(Field::new(&column.name, target, !column.required));
        arrays.push(array);
    }
    // Required columns are declared non-null; rows with nulls there are removed before use.
    let schema = Arc::new(Schema::new(fields.into_iter().map(|f| f.with_nullable(true)).collect::<Vec<_>>()));
    let typed = RecordBatch::try_new(schema, arrays).expect("typed columns have the batch's length");
    (typed, bad)
}

/// A typed column and the (row index, reason) of each value that did not fit, in row order.
type Typed = (ArrayRef, Vec<(usize, String)>);

/// Types one column: text of every layout and native values go through the same
/// rule of the declared type.
fn convert(array: &ArrayRef, kind: ColumnType, timezone: Tz) -> Typed {
    let target = kind.data_type();
    // A column of the declared type is used as it is, without a copy; but NaN and
    // infinities are no float values, and a month's Date32 is the month's first day.
    let as_is = || match kind {
        ColumnType::Float => !has_non_finite(array),
        ColumnType::Month => false,
        _ => true,
    };
    if array.data_type() == &target && as_is() {
        return (Arc::clone(array), Vec::new());
    }
    match array.data_type() {
        DataType::Null => (new_null_array(&target, array.len()), Vec::new()),
        DataType::Dictionary(_, _) => from_dictionary(array.as_any_dictionary(), kind, timezone),
        // gc: the views keep only the text they point to (short strings need none), not
        // the whole buffer of the file's column.
        DataType::Utf8 if kind == ColumnType::String => {
            (Arc::new(StringViewArray::from(array.as_string::<i32>()).gc()), Vec::new())
        }
        DataType::LargeUtf8 if kind == ColumnType::String => {
            (Arc::new(StringViewArray::from(array.as_string::<i64>()).gc()), Vec::new())
        }
        DataType::Utf8 => from_text(array.as_string::<i32>(), kind, timezone),
        DataType::LargeUtf8 => from_text(array.as_string::<i64>(), kind, timezone),
        DataType::Utf8View => from_text(array.as_string_view(), kind, timezone),
        _ => match native(array.as_ref()) {
            Some(value) => {
                let values = (0..array.len()).map(|i| array.is_valid(i).then(|| value(i)));
                type_values(values, array.len(), kind, timezone)
            }
            None => unsupported(array, kind),
        },
    }
}

fn has_non_finite(array: &ArrayRef) -> bool {
    array.as_primitive::<Float64Type>().iter().flatten().any(|x| !x.is_finite())
}

/// Text of any string layout, read in place.
fn from_text<'a, A: ArrayAccessor<Item = &'a str>>(text: A, kind: ColumnType, timezone: Tz) -> Typed {
    let len = text.len();
    type_values(ArrayIter::new(text).map(|value| value.map(Value::Text)), len, kind, timezone)
}

/// Each distinct value of a dictionary is typed once, then placed at its rows.
fn from_dictionary(dictionary: &dyn AnyDictionaryArray, kind: ColumnType, timezone: Tz) -> Typed {
    let (values, bad_values) = convert(dictionary.values(), kind, timezone);
    let typed = take(values.as_ref(), dictionary.keys(), None).expect("a dictionary's keys index its values");
    if bad_values.is_empty() {
        return (typed, Vec::new());
    }
    let mut reasons: Vec<Option<&str>> = vec![None; values.len()];
    for (index, reason) in &bad_values {
        reasons[*index] = Some(reason);
    }
    let keys = dictionary.keys();
    let bad = dictionary
        .normalized_keys()
        .into_iter()
        .enumerate()
        .filter(|&(row, _)| keys.is_valid(row))
        .filter_map(|(row, key)| reasons[key].map(|reason| (row, reason.to_string())))
        .collect();
    (typed, bad)
}

/// A layout no declared type reads (binary, lists, structs, times of day, durations…).
fn unsupported(array: &ArrayRef, kind: ColumnType) -> Typed {
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).ok();
    let bad = (0..array.len())
        .filter(|&i| array.is_valid(i))
        .map(|i| {
            let value = formatter.as_ref().map_or(String::new(), |f| f.value(i).to_string());
            (i, format!("{kind} values cannot be read from a {} column: `{value}`", array.data_type()))
        })
        .collect();
    (new_null_array(&kind.data_type(), array.len()), bad)
}

/// One input value as the rules see it, whatever the layout it came in.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    /// Every Arrow integer type fits.
    Integer(i128),
    Float(Float),
    /// An unscaled value and its scale (value = unscaled × 10^-scale), of any decimal type.
    Decimal(i256, i8),
    Boolean(bool),
    /// Days since 1970-01-01.
    Date(i64),
    /// Nanoseconds since 1970-01-01: an instant when `zoned` (the Arrow type has a
    /// timezone), a wall-clock time otherwise.
    Timestamp {
        nanos: i128,
        zoned: bool,
    },
}

impl<'a> Value<'a> {
    /// Text without surrounding spaces; blank text is no value, as an empty CSV field is not.
    fn trimmed(self) -> Option<Value<'a>> {
        match self {
            Value::Text(text) => Some(text.trim()).filter(|t| !t.is_empty()).map(Value::Text),
            other => Some(other),
        }
    }
}

/// The value as messages show it (and as `string` columns hold native values).
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Text(text) => f.write_str(text),
            Value::Integer(integer) => write!(f, "{integer}"),
            Value::Float(float) => write!(f, "{float}"),
            Value::Decimal(unscaled, scale) => f.write_str(&decimal_text(unscaled, scale)),
            Value::Boolean(truth) => write!(f, "{truth}"),
            Value::Date(day) => match date_of(day) {
                Some(date) => write!(f, "{date}"),
                None => write!(f, "day {day} from 1970-01-01"),
            },
            Value::Timestamp { nanos, zoned } => match date_time(nanos) {
                Some(time) => write!(f, "{}{}", time.format("%Y-%m-%dT%H:%M:%S%.f"), if zoned { "Z" } else { "" }),
                None => write!(f, "{nanos} nanoseconds from 1970-01-01"),
            },
        }
    }
}

/// The float16 of Arrow (the `half` crate's).
type F16 = <Float16Type as ArrowPrimitiveType>::Native;

/// A float with the width it was stored at: which numbers a float can stand for
/// exactly depends on its precision.
#[derive(Debug, Clone, Copy)]
enum Float {
    Half(F16),
    Single(f32),
    Double(f64),
}

impl Float {
    /// The value as a float64 (exactly: every float16 and float32 is one).
    fn value(self) -> f64 {
        match self {
            Float::Half(x) => f64::from(x.to_f32()),
            Float::Single(x) => f64::from(x),
            Float::Double(x) => x,
        }
    }

    fn width(self) -> &'static str {
        match self {
            Float::Half(_) => "float16",
            Float::Single(_) => "float32",
            Float::Double(_) => "float64",
        }
    }

    /// The gap to the next float of the same width away from zero: numbers closer
    /// together than this may be stored as the same float.
    fn step(self) -> f64 {
        match self {
            Float::Half(x) => {
                let magnitude = x.to_bits() & 0x7fff;
                f64::from(F16::from_bits(magnitude + 1).to_f32()) - f64::from(F16::from_bits(magnitude).to_f32())
            }
            Float::Single(x) => f64::from(f32::from_bits(x.abs().to_bits() + 1)) - f64::from(x.abs()),
            Float::Double(x) => f64::from_bits(x.abs().to_bits() + 1) - x.abs(),
        }
    }
}

/// The shortest text that reads back as the same float (what Rust, Python and JSON
/// print); a float16 prints as the float32 it widens to.
impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Float::Half(x) => write!(f, "{}", x.to_f32()),
            Float::Single(x) => write!(f, "{x}"),
            Float::Double(x) => write!(f, "{x}"),
        }
    }
}

/// Reads one value of a native column; `None` for layouts no declared type reads.
type NativeValue<'a> = Box<dyn Fn(usize) -> Value<'static> + 'a>;

fn native(array: &dyn Array) -> Option<NativeValue<'_>> {
    fn integers<T: ArrowPrimitiveType>(array: &dyn Array) -> NativeValue<'_>
    where
        T::Native: Into<i128>,
    {
        let values = array.as_primitive::<T>();
        Box::new(move |i| Value::Integer(values.value(i).into()))
    }
    fn decimals<T: ArrowPrimitiveType>(array: &dyn Array, scale: i8, wide: fn(T::Native) -> i256) -> NativeValue<'_> {
        let values = array.as_primitive::<T>();
        Box::new(move |i| Value::Decimal(wide(values.value(i)), scale))
    }
    fn timestamps<T: ArrowPrimitiveType<Native = i64>>(array: &dyn Array, nanos: i128, zoned: bool) -> NativeValue<'_> {
        let values = array.as_primitive::<T>();
        Box::new(move |i| Value::Timestamp { nanos: i128::from(values.value(i)) * nanos, zoned })
    }
    Some(match array.data_type() {
        DataType::Boolean => {
            let values = array.as_boolean();
            Box::new(move |i| Value::Boolean(values.value(i)))
        }
        DataType::Int8 => integers::<Int8Type>(array),
        DataType::Int16 => integers::<Int16Type>(array),
        DataType::Int32 => integers::<Int32Type>(array),
        DataType::Int64 => integers::<Int64Type>(array),
        DataType::UInt8 => integers::<UInt8Type>(array),
        DataType::UInt16 => integers::<UInt16Type>(array),
        DataType::UInt32 => integers::<UInt32Type>(array),
        DataType::UInt64 => integers::<UInt64Type>(array),
        DataType::Float16 => {
            let values = array.as_primitive::<Float16Type>();
            Box::new(move |i| Value::Float(Float::Half(values.value(i))))
        }
        DataType::Float32 => {
            let values = array.as_primitive::<Float32Type>();
            Box::new(move |i| Value::Float(Float::Single(values.value(i))))
        }
        DataType::Float64 => {
            let values = array.as_primitive::<Float64Type>();
            Box::new(move |i| Value::Float(Float::Double(values.value(i))))
        }
        DataType::Decimal32(_, scale) => decimals::<Decimal32Type>(array, *scale, |v| i256::from_i128(v.into())),
        DataType::Decimal64(_, scale) => decimals::<Decimal64Type>(array, *scale, |v| i256::from_i128(v.into())),
        DataType::Decimal128(_, scale) => decimals::<Decimal128Type>(array, *scale, i256::from_i128),
        DataType::Decimal256(_, scale) => decimals::<Decimal256Type>(array, *scale, |v| v),
        DataType::Date32 => {
            let values = array.as_primitive::<Date32Type>();
            Box::new(move |i| Value::Date(i64::from(values.value(i))))
        }
        // Milliseconds of a day's midnight; a time of day (not valid Arrow) is dropped.
        DataType::Date64 => {
            let values = array.as_primitive::<Date64Type>();
            Box::new(move |i| Value::Date(values.value(i).div_euclid(MILLIS_PER_DAY)))
        }
        DataType::Timestamp(unit, zone) => {
            let zoned = zone.is_some();
            match unit {
                TimeUnit::Second => timestamps::<TimestampSecondType>(array, 1_000_000_000, zoned),
                TimeUnit::Millisecond => timestamps::<TimestampMillisecondType>(array, 1_000_000, zoned),
                TimeUnit::Microsecond => timestamps::<TimestampMicrosecondType>(array, 1_000, zoned),
                TimeUnit::Nanosecond => timestamps::<TimestampNanosecondType>(array, 1, zoned),
            }
        }
        _ => return None,
    })
}

const MILLIS_PER_DAY: i64 = 86_400_000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Types `values` (one per row, `None` for nulls) with the rule of `kind`.
fn type_values<'a>(
    values: impl Iterator<Item = Option<Value<'a>>>,
    len: usize,
    kind: ColumnType,
    timezone: Tz,
) -> Typed {
    let mut bad = Vec::new();
    macro_rules! build {
        ($builder:expr, $rule:expr) => {{
            let mut builder = $builder;
            for (index, raw) in values.enumerate() {
                let Some(value) = raw.and_then(Value::trimmed) else {
                    builder.append_null();
                    continue;
                };
                match $rule(value) {
                    Ok(typed) => builder.append_value(typed),
                    Err(reason) => {
                        bad.push((index, format!("{reason}: `{}`", raw.unwrap_or(value))));
                        builder.append_null();
                    }
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    let array = match kind {
        ColumnType::String => build!(StringViewBuilder::with_capacity(len), string),
        ColumnType::Integer => build!(Int64Builder::with_capacity(len), integer),
        ColumnType::Float => build!(Float64Builder::with_capacity(len), float),
        ColumnType::Boolean => build!(BooleanBuilder::with_capacity(len), boolean),
        ColumnType::Date => build!(Date32Builder::with_capacity(len), |v| date(v, timezone)),
        ColumnType::Month => build!(Date32Builder::with_capacity(len), |v| month(v, timezone)),
        ColumnType::Timestamp => {
            build!(TimestampMicrosecondBuilder::with_capacity(len).with_timezone("UTC"), |v| timestamp(v, timezone))
        }
        ColumnType::Decimal(precision, scale) => build!(
            Decimal128Builder::with_capacity(len)
                .with_precision_and_scale(precision, scale)
                .expect("declared precision and scale are validated when the pipeline loads"),
            |v| decimal(v, precision, scale)
        ),
    };
    (array, bad)
}

// The rules, one per declared type. Each takes a value of any layout (text already
// trimmed and not blank) and gives the typed value, or why it does not fit; the
// caller adds the value to the reason.

const NOT_A_NUMBER: &str = "not a number";
const NOT_A_BOOLEAN: &str = "not a boolean (true/false, yes/no, 1/0)";
const NOT_A_DATE: &str = "not a date (YYYY-MM-DD)";
const NOT_A_MONTH: &str = "not a month (YYYY-MM)";
const NOT_A_TIMESTAMP: &str = "not an ISO-8601 timestamp (e.g. 2024-05-01T10:30:00+02:00 or 2024-05-01)";
const TOO_LARGE_FOR_INTEGER: &str = "too large for an integer (64 bits)";

/// `string`: text as it is; a native value as its text (see `Value`'s `Display`).
fn string(value: Value) -> Result<String, String> {
    match value {
        Value::Float(float) if !float.value().is_finite() => Err(NOT_A_NUMBER.into()),
        value => Ok(value.to_string()),
    }
}

/// `integer`: whole numbers within 64 bits, exactly.
fn integer(value: Value) -> Result<i64, String> {
    if let Value::Text(text) = value
        && let Ok(integer) = text.parse::<i64>()
    {
        return Ok(integer);
    }
    let whole = exact(value, 19, 0).map_err(|error| match error {
        Inexact::NotANumber => "not an integer".to_string(),
        Inexact::Places => "not a whole number".to_string(),
        Inexact::TooLarge => TOO_LARGE_FOR_INTEGER.to_string(),
        Inexact::Coarse(width) => format!("a {width} this large cannot tell whole numbers apart"),
    })?;
    i64::try_from(whole).map_err(|_| TOO_LARGE_FOR_INTEGER.to_string())
}

/// 2^53: every whole number up to it is a float64; beyond it, some are rounded.
const FLOAT_WHOLE_NUMBERS: f64 = 9_007_199_254_740_992.0;

/// `float`: any finite number, as the nearest float64 (floats of other widths widen
/// exactly) — except a whole number a float64 cannot hold exactly, which is bad.
fn float(value: Value) -> Result<f64, String> {
    let number = match value {
        Value::Text(text) => text.parse::<f64>().ok(),
        Value::Integer(integer) => Some(integer as f64),
        Value::Float(float) => Some(float.value()),
        // Read from its text: the float nearest the decimal, as for the same number in a CSV.
        Value::Decimal(unscaled, scale) => decimal_text(unscaled, scale).parse::<f64>().ok(),
        Value::Boolean(_) | Value::Date(_) | Value::Timestamp { .. } => None,
    };
    let number = number.filter(|n| n.is_finite()).ok_or_else(|| NOT_A_NUMBER.to_string())?;
    if number.abs() >= FLOAT_WHOLE_NUMBERS && !matches!(value, Value::Float(_)) {
        let rounded = match exact(value, 38, 0) {
            Ok(whole) => number as i128 != whole,
            Err(error) => matches!(error, Inexact::TooLarge),
        };
        if rounded {
            return Err("a whole number above 2^53 that a float64 cannot hold exactly".into());
        }
    }
    Ok(number)
}

/// `boolean`: true/false words, and numbers that are exactly 1 or 0.
fn boolean(value: Value) -> Result<bool, String> {
    let truth = match value {
        Value::Text(text) => parse_bool(text),
        Value::Boolean(truth) => Some(truth),
        Value::Date(_) | Value::Timestamp { .. } => None,
        number => match exact(number, 1, 0) {
            Ok(0) => Some(false),
            Ok(1) => Some(true),
            _ => None,
        },
    };
    truth.ok_or_else(|| NOT_A_BOOLEAN.to_string())
}

/// `date`: a calendar day (see `calendar_day`).
fn date(value: Value, timezone: Tz) -> Result<i32, String> {
    calendar_day(value, timezone).map(days_since_epoch).ok_or_else(|| NOT_A_DATE.to_string())
}

/// `month`: `YYYY-MM`, or the month of a calendar day; stored as its first day.
fn month(value: Value, timezone: Tz) -> Result<i32, String> {
    let day = match value {
        Value::Text(text) => plain_month(text)
            .or_else(|| NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").ok())
            .or_else(|| parse_date(text, timezone)),
        other => calendar_day(other, timezone),
    };
    day.and_then(|day| day.with_day(1)).map(days_since_epoch).ok_or_else(|| NOT_A_MONTH.to_string())
}

/// `timestamp`: an instant, in UTC microseconds. Values without a zone (naive
/// timestamps, text without offset, dates at midnight) are wall-clock times in `timezone`.
fn timestamp(value: Value, timezone: Tz) -> Result<i64, String> {
    let instant = match value {
        Value::Text(text) => return parse_timestamp(text, timezone),
        Value::Timestamp { nanos, zoned } => {
            let time = date_time(nanos).ok_or("out of the range of dates")?;
            if zoned { time.and_utc() } else { local_to_utc(time, timezone)? }
        }
        Value::Date(day) => {
            let date = date_of(day).ok_or("out of the range of dates")?;
            local_to_utc(date.and_time(NaiveTime::MIN), timezone)?
        }
        _ => return Err(NOT_A_TIMESTAMP.into()),
    };
    micros(instant)
}

/// `decimal(P,S)`: numbers with at most S decimal places and P digits, exactly.
fn decimal(value: Value, precision: u8, scale: i8) -> Result<i128, String> {
    exact(value, precision, scale).map_err(|error| match error {
        Inexact::NotANumber => "not a decimal number".to_string(),
        Inexact::Places => format!("more than {scale} decimal places"),
        Inexact::TooLarge => format!("too large for decimal({precision},{scale})"),
        Inexact::Coarse(width) => format!("a {width} this large cannot hold {scale} decimal places exactly"),
    })
}

/// Why a value is not exactly a number with a given scale and precision.
#[derive(Debug, PartialEq)]
enum Inexact {
    /// Not a number (NaN and infinities included).
    NotANumber,
    /// Non-zero digits beyond the scale.
    Places,
    /// More digits than the precision.
    TooLarge,
    /// A float of this width, at its size, is the same float for several numbers
    /// with that many places: which one was meant cannot be known.
    Coarse(&'static str),
}

/// `value` as an unscaled decimal of at most `precision` digits, `scale` of them
/// decimal places, without rounding.
fn exact(value: Value, precision: u8, scale: i8) -> Result<i128, Inexact> {
    let (unscaled, from) = match value {
        Value::Text(text) => return parse_decimal(text, precision, scale),
        Value::Float(float) => return float_exact(float, precision, scale),
        Value::Integer(integer) => (i256::from_i128(integer), 0),
        Value::Decimal(unscaled, from) => (unscaled, from),
        Value::Boolean(_) | Value::Date(_) | Value::Timestamp { .. } => return Err(Inexact::NotANumber),
    };
    within_precision(rescale(unscaled, from, scale)?, precision)
}

/// A float is the one number with at most `scale` places stored as it, if there is
/// exactly one: then it is the float's shortest text (12.5 for float64 12.5). There
/// is none when that text has more places (float64 12.345 at scale 2), and more than
/// one when floats of its width are farther apart at its size than a unit of the
/// last place (float32 steps by 0.125 around 1234567.89).
fn float_exact(float: Float, precision: u8, scale: i8) -> Result<i128, Inexact> {
    if !float.value().is_finite() {
        return Err(Inexact::NotANumber);
    }
    let unscaled = parse_decimal(&float.to_string(), precision, scale)?;
    if float.step() > 10f64.powi(-i32::from(scale)) {
        return Err(Inexact::Coarse(float.width()));
    }
    Ok(unscaled)
}

/// `unscaled` at scale `from` as an unscaled value at scale `to`, exactly.
fn rescale(unscaled: i256, from: i8, to: i8) -> Result<i256, Inexact> {
    if unscaled == i256::ZERO {
        return Ok(unscaled);
    }
    let shift = i32::from(to) - i32::from(from);
    let factor = i256::from_i128(10).checked_pow(shift.unsigned_abs());
    if shift >= 0 {
        return factor.and_then(|factor| unscaled.checked_mul(factor)).ok_or(Inexact::TooLarge);
    }
    match factor {
        Some(factor) if unscaled.wrapping_rem(factor) == i256::ZERO => Ok(unscaled.wrapping_div(factor)),
        // Either digits beyond `to`, or more places than 256 bits have digits.
        _ => Err(Inexact::Places),
    }
}

fn within_precision(unscaled: i256, precision: u8) -> Result<i128, Inexact> {
    let limit = i256::from_i128(10).checked_pow(u32::from(precision)).ok_or(Inexact::TooLarge)?;
    match unscaled.checked_abs() {
        Some(magnitude) if magnitude < limit => unscaled.to_i128().ok_or(Inexact::TooLarge),
        _ => Err(Inexact::TooLarge),
    }
}

/// A decimal's text: `unscaled` with `scale` digits after the point.
fn decimal_text(unscaled: i256, scale: i8) -> String {
    let text = unscaled.to_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", text.as_str()),
    };
    if scale <= 0 {
        let zeros = if unscaled == i256::ZERO { 0 } else { scale.unsigned_abs() as usize };
        return format!("{sign}{digits}{}", "0".repeat(zeros));
    }
    let places = scale as usize;
    let digits = format!("{digits:0>width$}", width = places + 1);
    let (whole, fraction) = digits.split_at(digits.len() - places);
    format!("{sign}{whole}.{fraction}")
}

/// The calendar day a value names: date text or a date value; a timestamp's day —
/// the wall-clock day of a naive one, the day in `timezone` of an instant.
fn calendar_day(value: Value, timezone: Tz) -> Option<NaiveDate> {
    match value {
        Value::Text(text) => parse_date(text, timezone),
        Value::Date(day) => date_of(day),
        Value::Timestamp { nanos, zoned } => {
            let time = date_time(nanos)?;
            Some(if zoned { timezone.from_utc_datetime(&time).date_naive() } else { time.date() })
        }
        _ => None,
    }
}

/// The date `day` days from 1970-01-01 (Arrow's Date32).
fn date_of(day: i64) -> Option<NaiveDate> {
    const EPOCH_FROM_CE: i64 = 719_163;
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(day.checked_add(EPOCH_FROM_CE)?).ok()?)
}

/// The date and time `nanos` nanoseconds from 1970-01-01 00:00.
fn date_time(nanos: i128) -> Option<NaiveDateTime> {
    let seconds = i64::try_from(nanos.div_euclid(NANOS_PER_SECOND)).ok()?;
    let subsecond = u32::try_from(nanos.rem_euclid(NANOS_PER_SECOND)).ok()?;
    DateTime::from_timestamp(seconds, subsecond).map(|time| time.naive_utc())
}

/// An instant as UTC microseconds; finer digits would be lost, so they are bad.
fn micros(instant: DateTime<Utc>) -> Result<i64, String> {
    if !instant.timestamp_subsec_nanos().is_multiple_of(1_000) {
        return Err("more precise than a microsecond".into());
    }
    Ok(instant.timestamp_micros())
}

/// Date text: `YYYY-MM-DD`, or a timestamp's day (see `calendar_day`).
fn parse_date(text: &str, timezone: Tz) -> Option<NaiveDate> {
    plain_date(text).or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()).or_else(|| {
        match parse_date_time(text)? {
            DateTimeText::WallClock(time) => Some(time.date()),
            DateTimeText::Instant(time) => Some(time.with_timezone(&timezone).date_naive()),
        }
    })
}

/// A number written in ASCII digits only.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
}

/// A date written exactly `YYYY-MM-DD`, read digit by digit: chrono's format parser
/// costs more than the rest of loading a column of a million dates. Other spellings
/// chrono accepts (`2024-5-1`) are left to it.
fn plain_date(value: &str) -> Option<NaiveDate> {
    let bytes = value.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&bytes[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&bytes[5..7])?, digits(&bytes[8..])?)
}

/// A month written exactly `YYYY-MM`, as its first day, read digit by digit (see `plain_date`).
fn plain_month(value: &str) -> Option<NaiveDate> {
    let bytes = value.as_bytes();
    if bytes.len() != 7 || bytes[4] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&bytes[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&bytes[5..])?, 1)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Parses an exact decimal into its unscaled integer; more fractional digits than
/// `scale` is an error rather than a silent rounding of money.
fn parse_decimal(value: &str, precision: u8, scale: i8) -> Result<i128, Inexact> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = scale.max(0) as usize;
    let valid = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !valid(whole) || !valid(fraction) {
        return Err(Inexact::NotANumber);
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale {
        return Err(Inexact::Places);
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() + scale > precision as usize {
        return Err(Inexact::TooLarge);
    }
    let mut unscaled: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()).chain(std::iter::repeat_n(b'0', scale - fraction.len())) {
        unscaled = unscaled * 10 + i128::from(b - b'0');
    }
    Ok(if negative { -unscaled } else { unscaled })
}

/// A date-time as text says it: an instant when it has an offset, a wall-clock time otherwise.
enum DateTimeText {
    Instant(DateTime<Utc>),
    WallClock(NaiveDateTime),
}

/// An ISO-8601 date-time with or without offset, or a date (midnight).
fn parse_date_time(value: &str) -> Option<DateTimeText> {
    const OFFSET_FORMATS: [&str; 4] =
        ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z"];
    const NAIVE_FORMATS: [&str; 4] =
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];
    let normalized = match value.strip_suffix(['Z', 'z']) {
        Some(rest) => Cow::Owned(format!("{rest}+00:00")),
        None => Cow::Borrowed(value),
    };
    if let Some(parsed) = OFFSET_FORMATS.iter().find_map(|f| DateTime::parse_from_str(&normalized, f).ok()) {
        return Some(DateTimeText::Instant(parsed.with_timezone(&Utc)));
    }
    NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN)))
        .map(DateTimeText::WallClock)
}

/// Parses an ISO-8601 date-time with or without offset (or a date, at midnight) into
/// UTC microseconds; values without an offset are wall-clock times in `timezone`.
fn parse_timestamp(value: &str, timezone: Tz) -> Result<i64, String> {
    let instant = match parse_date_time(value).ok_or(NOT_A_TIMESTAMP)? {
        DateTimeText::Instant(instant) => instant,
        DateTimeText::WallClock(time) => local_to_utc(time, timezone)?,
    };
    micros(instant)
}

/// A wall-clock time in `timezone` as an instant. Ambiguous times (the repeated hour
/// when clocks go back) take the earlier instant; times in the gap when clocks go
/// forward do not exist and are moved forward by the gap, as most databases do.
pub(super) fn local_to_utc(naive: NaiveDateTime, timezone: Tz) -> Result<DateTime<Utc>, String> {
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
    use datafusion::arrow::array::{
        BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal64Array, Decimal128Array, Decimal256Array,
        DictionaryArray, Float16Array, Float32Array, Float64Array, Int8Array, Int16Array, Int64Array, LargeStringArray,
        NullArray, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray, UInt8Array, UInt64Array,
    };

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
        assert_eq!(parse_decimal("1.234", 18, 2), Err(Inexact::Places));
        assert_eq!(parse_decimal("12,50", 18, 2), Err(Inexact::NotANumber));
        assert_eq!(parse_decimal("abc", 18, 2), Err(Inexact::NotANumber));
        assert_eq!(parse_decimal("1e5", 18, 2), Err(Inexact::NotANumber));
        assert_eq!(parse_decimal("1234", 4, 2), Err(Inexact::TooLarge));
    }

    #[test]
    fn decimal_text_places_the_point_by_the_scale() {
        let text = |unscaled: i128, scale: i8| decimal_text(i256::from_i128(unscaled), scale);
        assert_eq!(text(1250, 2), "12.50");
        assert_eq!(text(-7, 2), "-0.07");
        assert_eq!(text(123_450_000_000, 10), "12.3450000000");
        assert_eq!(text(12, 0), "12");
        assert_eq!(text(12, -3), "12000");
        assert_eq!(text(0, -3), "0");
    }

    #[test]
    fn a_float_is_a_decimal_when_exactly_one_decimal_at_the_scale_is_that_float() {
        // float32 steps by 1/128 around 100000: each number with 2 places is its own float32.
        assert_eq!(float_exact(Float::Single(100_000.01), 18, 2), Ok(10_000_001));
        // ...and by 1/8 around 1234567.89, which is stored as 1234567.875 as 1234567.9 is.
        assert_eq!(float_exact(Float::Single(1_234_567.89_f64 as f32), 18, 2), Err(Inexact::Coarse("float32")));
        assert_eq!(float_exact(Float::Single(1_234_567.0), 18, 0), Ok(1_234_567));
        // Whole float64s are told apart up to 2^53, and no further.
        assert_eq!(float_exact(Float::Double(9_007_199_254_740_991.0), 18, 0), Ok(9_007_199_254_740_991));
        assert_eq!(float_exact(Float::Double(9_007_199_254_740_992.0), 18, 0), Err(Inexact::Coarse("float64")));
        assert_eq!(float_exact(Float::Double(-0.0), 18, 2), Ok(0));
        assert_eq!(float_exact(Float::Double(f64::NAN), 18, 2), Err(Inexact::NotANumber));
        let half = F16::from_f32(0.5);
        assert_eq!(float_exact(Float::Half(half), 4, 1), Ok(5));
        assert_eq!(float_exact(Float::Half(F16::from_f32(2048.0)), 9, 0), Err(Inexact::Coarse("float16")));
    }

    #[test]
    fn bad_values_name_row_and_column() {
        let schema = Arc::new(Schema::new(vec![Field::new("Amount", DataType::Utf8, true)]));
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("1.5"), Some("x"), None, Some("  ")]));
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
        assert_eq!(
            found,
            [(1, "not a decimal number: `x`"), (2, "required value is missing"), (3, "required value is missing")]
        );
    }

    #[test]
    fn text_of_any_arrow_string_layout_becomes_string_views() {
        let values = [Some("C00000001"), None, Some("a customer id longer than twelve bytes")];
        for layout in text_layouts(&values) {
            let (typed, bad) = convert(&layout, ColumnType::String, Tz::UTC);
            assert!(bad.is_empty(), "{}: {:?}", layout.data_type(), bad);
            assert_eq!(typed.data_type(), &DataType::Utf8View, "{}", layout.data_type());
            let texts: Vec<Option<&str>> = typed.as_string_view().iter().collect();
            assert_eq!(texts, values, "{}", layout.data_type());
        }
    }

    /// The same text in every string layout a file can bring: plain, large, views, and
    /// dictionaries of each with keys of several widths.
    fn text_layouts(values: &[Option<&str>]) -> Vec<ArrayRef> {
        let plain = StringArray::from(values.to_vec());
        let dictionary: DictionaryArray<Int8Type> = values.iter().copied().collect();
        let dictionary_values = dictionary.values().as_string::<i32>();
        let large_values: ArrayRef = Arc::new(dictionary_values.iter().collect::<LargeStringArray>());
        let view_values: ArrayRef = Arc::new(dictionary_values.iter().collect::<StringViewArray>());
        let wide_keys: DictionaryArray<UInt32Type> = values.iter().copied().collect();
        let widest_keys: DictionaryArray<Int64Type> = values.iter().copied().collect();
        vec![
            Arc::new(plain),
            Arc::new(values.iter().copied().collect::<LargeStringArray>()),
            Arc::new(values.iter().copied().collect::<StringViewArray>()),
            Arc::new(dictionary),
            Arc::new(wide_keys.with_values(large_values)),
            Arc::new(widest_keys.with_values(view_values)),
        ]
    }

    /// How typing one value came out: the typed value as Arrow prints it, `∅` for
    /// none, `!` and the reason for a bad value.
    fn outcomes(input: &ArrayRef, kind: ColumnType, timezone: Tz) -> Vec<String> {
        let (typed, bad) = convert(input, kind, timezone);
        assert_eq!(typed.data_type(), &kind.data_type(), "{kind} from {}", input.data_type());
        assert_eq!(typed.len(), input.len());
        let formatter = ArrayFormatter::try_new(typed.as_ref(), &FormatOptions::default()).unwrap();
        (0..typed.len())
            .map(|i| match bad.iter().find(|(index, _)| *index == i) {
                Some((_, reason)) => {
                    assert!(typed.is_null(i), "a bad value is null");
                    format!("!{reason}")
                }
                None if typed.is_null(i) => "∅".to_string(),
                None => formatter.value(i).to_string(),
            })
            .collect()
    }

    fn decimals(unscaled: &[i128], precision: u8, scale: i8) -> ArrayRef {
        Arc::new(Decimal128Array::from(unscaled.to_vec()).with_precision_and_scale(precision, scale).unwrap())
    }

    fn days(text: &str) -> i32 {
        days_since_epoch(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
    }

    fn nanos(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").unwrap().and_utc().timestamp_nanos_opt().unwrap()
    }

    /// Text cases: (declared type, the text, what every text layout gives).
    fn text_cases() -> Vec<(ColumnType, Vec<&'static str>, Vec<&'static str>)> {
        use ColumnType::*;
        vec![
            (
                Integer,
                vec!["42", "-7", " 12 ", "7.0", "7.5", "abc", "99999999999999999999", ""],
                vec![
                    "42",
                    "-7",
                    "12",
                    "7",
                    "!not a whole number: `7.5`",
                    "!not an integer: `abc`",
                    "!too large for an integer (64 bits): `99999999999999999999`",
                    "∅",
                ],
            ),
            (
                Float,
                vec!["12.5", "-1e3", "NaN", "inf", "abc", "9007199254740993", "9007199254740992"],
                vec![
                    "12.5",
                    "-1000.0",
                    "!not a number: `NaN`",
                    "!not a number: `inf`",
                    "!not a number: `abc`",
                    "!a whole number above 2^53 that a float64 cannot hold exactly: `9007199254740993`",
                    "9007199254740992.0",
                ],
            ),
            (
                Boolean,
                vec!["true", "No", "1", "0", "2", "maybe"],
                vec![
                    "true",
                    "false",
                    "true",
                    "false",
                    "!not a boolean (true/false, yes/no, 1/0): `2`",
                    "!not a boolean (true/false, yes/no, 1/0): `maybe`",
                ],
            ),
            (
                Date,
                vec![
                    "2024-02-29",
                    "2024-2-9",
                    "2023-02-29",
                    "2024-01-05T23:30:00",
                    "2024-01-06T03:30:00Z",
                    "05/01/2024",
                ],
                vec![
                    "2024-02-29",
                    "2024-02-09",
                    "!not a date (YYYY-MM-DD): `2023-02-29`",
                    // The wall-clock day of a naive time; the day in New York of an instant.
                    "2024-01-05",
                    "2024-01-05",
                    "!not a date (YYYY-MM-DD): `05/01/2024`",
                ],
            ),
            (
                Month,
                vec!["2024-04", "2024-4", "2024-04-15", "2024-05-01T03:30:00Z", "2024-13", "April 2024"],
                vec![
                    "2024-04-01",
                    "2024-04-01",
                    "2024-04-01",
                    // 2024-04-30 23:30 in New York.
                    "2024-04-01",
                    "!not a month (YYYY-MM): `2024-13`",
                    "!not a month (YYYY-MM): `April 2024`",
                ],
            ),
            (
                Timestamp,
                vec![
                    "2024-01-05T10:00:00Z",
                    "2024-01-05 10:00:00",
                    "2024-01-05",
                    "2024-03-10T02:30:00",
                    "2024-01-05T10:00:00.123456Z",
                    "2024-01-05T10:00:00.123456789Z",
                    "05/01/2024",
                ],
                vec![
                    "2024-01-05T10:00:00Z",
                    // Naive text and dates are New York wall-clock times (EST, UTC-5).
                    "2024-01-05T15:00:00Z",
                    "2024-01-05T05:00:00Z",
                    // In the gap of the clocks going forward: read with the offset before it.
                    "2024-03-10T07:30:00Z",
                    "2024-01-05T10:00:00.123456Z",
                    "!more precise than a microsecond: `2024-01-05T10:00:00.123456789Z`",
                    "!not an ISO-8601 timestamp (e.g. 2024-05-01T10:30:00+02:00 or 2024-05-01): `05/01/2024`",
                ],
            ),
            (
                Decimal(18, 2),
                vec!["12.5", "1.230", "-0.07", "12.345", "12;50", "NaN", "1234567890123456.78", "12345678901234567.0"],
                vec![
                    "12.50",
                    "1.23",
                    "-0.07",
                    "!more than 2 decimal places: `12.345`",
                    "!not a decimal number: `12;50`",
                    "!not a decimal number: `NaN`",
                    "1234567890123456.78",
                    "!too large for decimal(18,2): `12345678901234567.0`",
                ],
            ),
        ]
    }

    #[test]
    fn text_is_typed_alike_in_every_string_layout() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        for (kind, text, expected) in text_cases() {
            let values: Vec<Option<&str>> = text.iter().map(|t| Some(*t)).collect();
            for layout in text_layouts(&values) {
                assert_eq!(outcomes(&layout, kind, new_york), expected, "{kind} from {}", layout.data_type());
            }
        }
    }

    /// Native cases: (declared type, a column of some Arrow layout, what it gives).
    fn native_cases() -> Vec<(ColumnType, ArrayRef, Vec<&'static str>)> {
        use ColumnType::*;
        let instant = nanos("2024-01-05T10:00:00") / 1_000;
        vec![
            // string: the value's text.
            (String, Arc::new(Int64Array::from(vec![7, -3])), vec!["7", "-3"]),
            (
                String,
                Arc::new(Float64Array::from(vec![1001.0, 12.5, f64::NAN])),
                vec!["1001", "12.5", "!not a number: `NaN`"],
            ),
            (String, decimals(&[1250], 18, 2), vec!["12.50"]),
            (String, Arc::new(BooleanArray::from(vec![true])), vec!["true"]),
            (String, Arc::new(Date32Array::from(vec![days("2024-04-15")])), vec!["2024-04-15"]),
            (
                String,
                Arc::new(TimestampMicrosecondArray::from(vec![instant]).with_timezone("UTC")),
                vec!["2024-01-05T10:00:00Z"],
            ),
            (String, Arc::new(TimestampNanosecondArray::from(vec![instant * 1_000])), vec!["2024-01-05T10:00:00"]),
            (
                String,
                Arc::new(BinaryArray::from(vec![b"C1".as_slice()])),
                vec!["!string values cannot be read from a Binary column: `4331`"],
            ),
            // integer: whole numbers within 64 bits, exactly.
            (Integer, Arc::new(Int8Array::from(vec![-5])), vec!["-5"]),
            (Integer, Arc::new(Int16Array::from(vec![300])), vec!["300"]),
            (Integer, Arc::new(UInt8Array::from(vec![255])), vec!["255"]),
            (
                Integer,
                Arc::new(UInt64Array::from(vec![7, u64::MAX])),
                vec!["7", "!too large for an integer (64 bits): `18446744073709551615`"],
            ),
            (
                // pandas' integers with missing values.
                Integer,
                Arc::new(Float64Array::from(vec![
                    Some(7.0),
                    None,
                    Some(7.5),
                    Some(f64::NAN),
                    Some(f64::INFINITY),
                    Some(1e16),
                ])),
                vec![
                    "7",
                    "∅",
                    "!not a whole number: `7.5`",
                    "!not an integer: `NaN`",
                    "!not an integer: `inf`",
                    "!a float64 this large cannot tell whole numbers apart: `10000000000000000`",
                ],
            ),
            (
                Integer,
                Arc::new(Float32Array::from(vec![1234.0, 16_777_216.0])),
                vec!["1234", "!a float32 this large cannot tell whole numbers apart: `16777216`"],
            ),
            (
                Integer,
                decimals(&[70_000_000_000, 75_000_000_000], 38, 10),
                vec!["7", "!not a whole number: `7.5000000000`"],
            ),
            (Integer, Arc::new(BooleanArray::from(vec![true])), vec!["!not an integer: `true`"]),
            (Integer, Arc::new(Date32Array::from(vec![days("2024-04-15")])), vec!["!not an integer: `2024-04-15`"]),
            // float: the nearest float64; whole numbers exactly.
            (
                Float,
                Arc::new(Int64Array::from(vec![-3, 9_007_199_254_740_992, 9_007_199_254_740_993])),
                vec![
                    "-3.0",
                    "9007199254740992.0",
                    "!a whole number above 2^53 that a float64 cannot hold exactly: `9007199254740993`",
                ],
            ),
            (Float, Arc::new(Float32Array::from(vec![0.1])), vec!["0.10000000149011612"]),
            (Float, Arc::new(Float16Array::from(vec![F16::from_f32(1.5)])), vec!["1.5"]),
            (
                Float,
                Arc::new(Float64Array::from(vec![Some(2.5), None, Some(f64::NAN), Some(f64::NEG_INFINITY)])),
                vec!["2.5", "∅", "!not a number: `NaN`", "!not a number: `-inf`"],
            ),
            (Float, decimals(&[123_450_000_000], 38, 10), vec!["12.345"]),
            (Float, Arc::new(Date32Array::from(vec![0])), vec!["!not a number: `1970-01-01`"]),
            // boolean: true/false, or a number that is exactly 1 or 0.
            (
                Boolean,
                Arc::new(Int8Array::from(vec![1, 0, 2])),
                vec!["true", "false", "!not a boolean (true/false, yes/no, 1/0): `2`"],
            ),
            (
                Boolean,
                decimals(&[100, 0, 50], 10, 2),
                vec!["true", "false", "!not a boolean (true/false, yes/no, 1/0): `0.50`"],
            ),
            (
                Boolean,
                Arc::new(Float64Array::from(vec![1.0, 0.0, 0.5])),
                vec!["true", "false", "!not a boolean (true/false, yes/no, 1/0): `0.5`"],
            ),
            // date: a date's day; a naive timestamp's wall-clock day; an instant's day in New York.
            (Date, Arc::new(Date64Array::from(vec![i64::from(days("2024-04-15")) * 86_400_000])), vec!["2024-04-15"]),
            (Date, Arc::new(TimestampNanosecondArray::from(vec![nanos("2024-01-05T23:30:00")])), vec!["2024-01-05"]),
            (
                Date,
                Arc::new(
                    TimestampMicrosecondArray::from(vec![nanos("2024-01-06T03:30:00") / 1_000]).with_timezone("UTC"),
                ),
                vec!["2024-01-05"],
            ),
            (
                Date,
                Arc::new(
                    TimestampMillisecondArray::from(vec![nanos("2024-01-06T03:30:00") / 1_000_000])
                        .with_timezone("+01:00"),
                ),
                vec!["2024-01-05"],
            ),
            (Date, Arc::new(Int64Array::from(vec![20_240_105])), vec!["!not a date (YYYY-MM-DD): `20240105`"]),
            // month: the month of any of those days, as its first day.
            (Month, Arc::new(Date32Array::from(vec![days("2024-04-15")])), vec!["2024-04-01"]),
            (
                Month,
                Arc::new(
                    TimestampMicrosecondArray::from(vec![nanos("2024-05-01T03:30:00") / 1_000]).with_timezone("UTC"),
                ),
                vec!["2024-04-01"],
            ),
            (Month, Arc::new(TimestampNanosecondArray::from(vec![nanos("2024-05-01T03:30:00")])), vec!["2024-05-01"]),
            (Month, Arc::new(Float64Array::from(vec![202404.0])), vec!["!not a month (YYYY-MM): `202404`"]),
            // timestamp: instants as they are; naive times and dates in New York.
            (
                Timestamp,
                Arc::new(TimestampNanosecondArray::from(vec![
                    nanos("2024-01-05T10:00:00"),
                    nanos("2024-01-05T10:00:00") + 1,
                ])),
                vec!["2024-01-05T15:00:00Z", "!more precise than a microsecond: `2024-01-05T10:00:00.000000001`"],
            ),
            (
                Timestamp,
                Arc::new(TimestampSecondArray::from(vec![instant / 1_000_000]).with_timezone("UTC")),
                vec!["2024-01-05T10:00:00Z"],
            ),
            (
                Timestamp,
                Arc::new(TimestampMillisecondArray::from(vec![instant / 1_000]).with_timezone("Europe/Rome")),
                vec!["2024-01-05T10:00:00Z"],
            ),
            (
                Timestamp,
                Arc::new(TimestampMicrosecondArray::from(vec![instant]).with_timezone("+00:00")),
                vec!["2024-01-05T10:00:00Z"],
            ),
            (Timestamp, Arc::new(Date32Array::from(vec![days("2024-01-05")])), vec!["2024-01-05T05:00:00Z"]),
            (
                Timestamp,
                Arc::new(Date64Array::from(vec![i64::from(days("2024-07-05")) * 86_400_000])),
                vec!["2024-07-05T04:00:00Z"],
            ),
            (
                Timestamp,
                Arc::new(Int64Array::from(vec![1])),
                vec!["!not an ISO-8601 timestamp (e.g. 2024-05-01T10:30:00+02:00 or 2024-05-01): `1`"],
            ),
            // decimal(18,2): exactly, or a bad value.
            (
                Decimal(18, 2),
                Arc::new(Float64Array::from(vec![
                    12.5,
                    12.345,
                    0.1,
                    f64::NAN,
                    f64::INFINITY,
                    1e17,
                    123_456_789_012_345.67,
                ])),
                vec![
                    "12.50",
                    "!more than 2 decimal places: `12.345`",
                    "0.10",
                    "!not a decimal number: `NaN`",
                    "!not a decimal number: `inf`",
                    "!too large for decimal(18,2): `100000000000000000`",
                    "!a float64 this large cannot hold 2 decimal places exactly: `123456789012345.67`",
                ],
            ),
            (
                Decimal(18, 2),
                // What a writer stores for 1234567.89 in a float32 column.
                Arc::new(Float32Array::from(vec![1_234_567.89_f64 as f32, 0.1, 12.34])),
                vec!["!a float32 this large cannot hold 2 decimal places exactly: `1234567.9`", "0.10", "12.34"],
            ),
            (
                // Spark's decimal(38,10).
                Decimal(18, 2),
                decimals(&[123_400_000_000, 123_450_000_000], 38, 10),
                vec!["12.34", "!more than 2 decimal places: `12.3450000000`"],
            ),
            (
                Decimal(18, 2),
                Arc::new(
                    Decimal256Array::from(vec![i256::from_i128(1250), i256::from_i128(10).wrapping_pow(60)])
                        .with_precision_and_scale(76, 2)
                        .unwrap(),
                ),
                vec![
                    "12.50",
                    "!too large for decimal(18,2): `10000000000000000000000000000000000000000000000000000000000.00`",
                ],
            ),
            (
                Decimal(18, 2),
                Arc::new(Decimal64Array::from(vec![12_500]).with_precision_and_scale(9, 3).unwrap()),
                vec!["12.50"],
            ),
            (
                Decimal(18, 2),
                Arc::new(Int64Array::from(vec![12, 100_000_000_000_000_000])),
                vec!["12.00", "!too large for decimal(18,2): `100000000000000000`"],
            ),
            (Decimal(18, 2), Arc::new(BooleanArray::from(vec![true])), vec!["!not a decimal number: `true`"]),
        ]
    }

    #[test]
    fn native_values_are_typed_by_the_same_rules_as_text() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        for (kind, input, expected) in native_cases() {
            assert_eq!(outcomes(&input, kind, new_york), expected, "{kind} from {}", input.data_type());
        }
    }

    #[test]
    fn a_column_of_nulls_is_null_in_every_type() {
        let kinds = [ColumnType::String, ColumnType::Integer, ColumnType::Timestamp, ColumnType::Decimal(18, 2)];
        for kind in kinds {
            let nulls: ArrayRef = Arc::new(NullArray::new(2));
            assert_eq!(outcomes(&nulls, kind, Tz::UTC), ["∅", "∅"], "{kind}");
        }
    }

    #[test]
    fn a_dictionary_reports_every_row_of_a_bad_value() {
        let values: DictionaryArray<Int16Type> =
            vec![Some("12.5"), Some("12.345"), None, Some("12.345")].into_iter().collect();
        let input: ArrayRef = Arc::new(values);
        assert_eq!(
            outcomes(&input, ColumnType::Decimal(18, 2), Tz::UTC),
            ["12.50", "!more than 2 decimal places: `12.345`", "∅", "!more than 2 decimal places: `12.345`"]
        );
    }

    #[test]
    fn columns_of_the_declared_type_are_used_without_a_copy() {
        let amounts = decimals(&[1250], 18, 2);
        let (typed, _) = convert(&amounts, ColumnType::Decimal(18, 2), Tz::UTC);
        assert!(Arc::ptr_eq(&typed, &amounts));
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![1.5]));
        let (typed, _) = convert(&floats, ColumnType::Float, Tz::UTC);
        assert!(Arc::ptr_eq(&typed, &floats));
    }
}
