//! The small vocabularies of the pipeline file: parameter and column types, file
//! formats, the bad-row policy, and typed parameter values.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use serde::Deserialize;

/// The type of a pipeline parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Float,
    Boolean,
    Date,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Float => "float",
            ParamType::Boolean => "boolean",
            ParamType::Date => "date",
        })
    }
}

/// A parameter's value, typed as declared.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Date(NaiveDate),
}

impl ParamType {
    /// Parses a value given as text (`--set`, environment variables).
    pub fn parse(self, text: &str) -> Result<ParamValue, String> {
        let trimmed = text.trim();
        match self {
            ParamType::String => Ok(ParamValue::String(text.to_string())),
            ParamType::Integer => {
                trimmed.parse().map(ParamValue::Integer).map_err(|_| format!("`{text}` is not an integer"))
            }
            ParamType::Float => trimmed
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite())
                .map(ParamValue::Float)
                .ok_or_else(|| format!("`{text}` is not a number")),
            ParamType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(ParamValue::Boolean(true)),
                "false" | "no" | "0" => Ok(ParamValue::Boolean(false)),
                _ => Err(format!("`{text}` is not a boolean (use true or false)")),
            },
            ParamType::Date => NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
                .map(ParamValue::Date)
                .map_err(|_| format!("`{text}` is not a date in the form YYYY-MM-DD")),
        }
    }

    /// Converts a value written in YAML.
    pub fn from_yaml(self, value: &serde_yaml::Value) -> Result<ParamValue, String> {
        match (self, value) {
            (ParamType::Integer, serde_yaml::Value::Number(n)) if n.is_i64() => {
                Ok(ParamValue::Integer(n.as_i64().unwrap_or_default()))
            }
            (ParamType::Float, serde_yaml::Value::Number(n)) => {
                n.as_f64().map(ParamValue::Float).ok_or_else(|| format!("`{n}` is not a number"))
            }
            (ParamType::Boolean, serde_yaml::Value::Bool(b)) => Ok(ParamValue::Boolean(*b)),
            (_, serde_yaml::Value::String(text)) => self.parse(text),
            (ParamType::String, serde_yaml::Value::Number(n)) => Ok(ParamValue::String(n.to_string())),
            (_, other) => {
                Err(format!("expected a {self}, found `{}`", serde_yaml::to_string(other).unwrap_or_default().trim()))
            }
        }
    }
}

impl ParamValue {
    /// The value as JSON, for the manifest and the report context: as recorded, so
    /// without the credentials of a URL in it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::String(s) => crate::storage::redact(s).into(),
            ParamValue::Integer(i) => (*i).into(),
            ParamValue::Float(x) => (*x).into(),
            ParamValue::Boolean(b) => (*b).into(),
            ParamValue::Date(d) => d.to_string().into(),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::String(s) => f.write_str(s),
            ParamValue::Integer(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Boolean(b) => write!(f, "{b}"),
            ParamValue::Date(d) => write!(f, "{d}"),
        }
    }
}

/// Days since 1970-01-01, Arrow's `Date32` representation.
pub fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date");
    (date - epoch).num_days() as i32
}

/// The file format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Parquet,
    Ndjson,
}

impl Format {
    /// The format a file name's extension says, if any.
    pub fn from_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        let extension = lower.rsplit('.').next()?;
        match extension {
            "csv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Ndjson => "ndjson",
        })
    }
}

/// What to do with rows that break the declared schema or checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRows {
    /// Stop the run before anything is published, naming file, row and column.
    #[default]
    Fail,
    /// Set the rows aside in `_quarantine/{source}`, count them, and go on without them.
    Quarantine,
}

/// What a data error in a stage does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop the run; nothing is published.
    #[default]
    Fail,
    /// Warn, skip the stage and what depends on it, publish the rest.
    Warn,
}

/// The declared type of a source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ColumnType {
    String,
    Integer,
    Float,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// ISO-8601 date-time with or without offset, or a date (midnight); naive values are
    /// wall-clock times in the pipeline's timezone. Stored as UTC microseconds.
    Timestamp,
    /// `YYYY-MM`, stored as the month's first day.
    Month,
    /// Exact decimal with precision and scale, e.g. `decimal(18,2)`.
    Decimal(u8, i8),
}

impl ColumnType {
    /// The Arrow type a column of this type is stored as.
    pub fn data_type(self) -> DataType {
        match self {
            // Views: short keys (customer ids) compare and hash in place, without
            // reading a separate data buffer; outputs are written as plain strings.
            ColumnType::String => DataType::Utf8View,
            ColumnType::Integer => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date | ColumnType::Month => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::Decimal(precision, scale) => DataType::Decimal128(precision, scale),
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::String => f.write_str("string"),
            ColumnType::Integer => f.write_str("integer"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::Month => f.write_str("month"),
            ColumnType::Decimal(p, s) => write!(f, "decimal({p},{s})"),
        }
    }
}

const COLUMN_TYPES: &str = "string, integer, float, boolean, date, timestamp, month, decimal(P,S)";

impl FromStr for ColumnType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let simple = match lower.as_str() {
            "string" => Some(ColumnType::String),
            "integer" => Some(ColumnType::Integer),
            "float" => Some(ColumnType::Float),
            "boolean" => Some(ColumnType::Boolean),
            "date" => Some(ColumnType::Date),
            "timestamp" => Some(ColumnType::Timestamp),
            "month" => Some(ColumnType::Month),
            _ => None,
        };
        if let Some(kind) = simple {
            return Ok(kind);
        }
        let decimal = lower
            .strip_prefix("decimal(")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|args| args.split_once(','))
            .and_then(|(p, s)| Some((p.trim().parse::<u8>().ok()?, s.trim().parse::<i8>().ok()?)))
            .filter(|(p, s)| (1..=38).contains(p) && (0..=*p as i8).contains(s));
        decimal.map(|(p, s)| ColumnType::Decimal(p, s)).ok_or_else(|| {
            if lower.starts_with("decimal(") && !lower.contains(',') {
                // `{type: decimal(18,2)}` is split at the comma by YAML's flow syntax.
                format!("incomplete column type `{text}`; inside `{{...}}` quote it: \"decimal(18,2)\"")
            } else {
                format!("unknown column type `{text}`; expected one of {COLUMN_TYPES}")
            }
        })
    }
}

impl TryFrom<String> for ColumnType {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}
