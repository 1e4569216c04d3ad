//! What a pipeline expects of its data, compiled: data tests on the stages' results (in
//! dbt's vocabulary), and the freshness and volume expected of sources. Running them is
//! `crate::quality` (tests) and `crate::sources` (freshness and volume).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use datafusion::common::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::error::Diagnostic;

/// A data test on a stage's result, run when the stage finishes.
#[derive(Debug, Clone)]
pub struct DataTest {
    /// Unique within its stage: dbt's generated name (`unique_rfm_customer_id`) or `name:`.
    pub name: String,
    pub kind: TestKind,
    pub severity: Severity,
    /// With `severity: error`: failing rows meeting this fail the run.
    pub error_if: Threshold,
    /// Failing rows meeting this (and not `error_if`) are a warning.
    pub warn_if: Threshold,
    pub description: Option<String>,
    /// Where the test is written, for errors found when it is planned.
    pub declared: Declared,
}

impl DataTest {
    /// The other table the test reads (`relationships`, `accepted_values` from a column).
    pub fn reference(&self) -> Option<&TableColumn> {
        match &self.kind {
            TestKind::Relationships { to, .. }
            | TestKind::AcceptedValues { values: AcceptedValues::Column(to), .. } => Some(to),
            _ => None,
        }
    }
}

/// What a test checks, with dbt's names.
#[derive(Debug, Clone)]
pub enum TestKind {
    /// No two rows have the same values of `columns` (together); rows with a null among
    /// them are not compared.
    Unique { columns: Vec<String> },
    /// `column` is never null.
    NotNull { column: String },
    /// `column` is one of `values` (null passes).
    AcceptedValues { column: String, values: AcceptedValues },
    /// `column` is a value of `to` (null passes).
    Relationships { column: String, to: TableColumn },
    /// `min <= column <= max`, either bound optional (null passes).
    AcceptedRange { column: String, min: Option<ScalarValue>, max: Option<ScalarValue> },
    /// A SQL condition every row meets (a row where it is null passes).
    Expression { condition: String },
}

impl TestKind {
    /// The kind's name, as written in the pipeline file.
    pub fn name(&self) -> &'static str {
        match self {
            TestKind::Unique { .. } => "unique",
            TestKind::NotNull { .. } => "not_null",
            TestKind::AcceptedValues { .. } => "accepted_values",
            TestKind::Relationships { .. } => "relationships",
            TestKind::AcceptedRange { .. } => "accepted_range",
            TestKind::Expression { .. } => "expression",
        }
    }

    /// The stage's columns the test reads (none for an expression: its planning says).
    pub fn columns(&self) -> Vec<&str> {
        match self {
            TestKind::Unique { columns } => columns.iter().map(String::as_str).collect(),
            TestKind::NotNull { column }
            | TestKind::AcceptedValues { column, .. }
            | TestKind::Relationships { column, .. }
            | TestKind::AcceptedRange { column, .. } => vec![column],
            TestKind::Expression { .. } => Vec::new(),
        }
    }
}

/// The values `accepted_values` accepts.
#[derive(Debug, Clone)]
pub enum AcceptedValues {
    /// Written out in the pipeline file.
    List(Vec<ScalarValue>),
    /// Those of a column of another stage or source (`values_from: table.column`).
    Column(TableColumn),
}

/// A column of a stage or source, written `table.column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumn {
    pub table: String,
    pub column: String,
}

impl FromStr for TableColumn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().split_once('.') {
            Some((table, column)) if !table.is_empty() && !column.is_empty() && !column.contains('.') => {
                Ok(TableColumn { table: table.to_string(), column: column.to_string() })
            }
            _ => Err(format!("`{text}` is not `table.column`, e.g. `customer_summary.customer_id`")),
        }
    }
}

impl fmt::Display for TableColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

/// What a failing test does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Past `error_if` the run stops (exit code 3) and publishes nothing; past `warn_if`
    /// it warns.
    #[default]
    Error,
    /// Past `warn_if` the run warns; it never stops.
    Warn,
}

/// How a test or a source's check came out, in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No threshold met (a test may have failing rows below them).
    Pass,
    /// A warning threshold met: a warning in the manifest.
    Warn,
    /// An error threshold met (severity `error`): the run stops.
    Error,
    /// Not run: the table it reads is an optional source without files.
    Skipped,
}

/// A condition on a count of failing rows, as dbt writes it: `> 0`, `>= 10`, `> 1%` (of
/// the rows checked).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    comparison: Comparison,
    value: f64,
    percent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
}

impl Comparison {
    const ALL: [(&'static str, Comparison); 7] = [
        (">=", Comparison::GreaterOrEqual),
        ("<=", Comparison::LessOrEqual),
        ("!=", Comparison::NotEqual),
        ("==", Comparison::Equal),
        (">", Comparison::Greater),
        ("<", Comparison::Less),
        ("=", Comparison::Equal),
    ];

    fn symbol(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Equal => "=",
            Comparison::NotEqual => "!=",
        }
    }
}

impl Threshold {
    /// dbt's default, `> 0`: any failing row.
    pub const ANY: Threshold = Threshold { comparison: Comparison::Greater, value: 0.0, percent: false };

    /// Whether `failing` of `rows` meets the threshold. A percentage of no rows is 0 %.
    pub fn is_met(&self, failing: u64, rows: u64) -> bool {
        let measured = match (self.percent, rows) {
            (false, _) => failing as f64,
            (true, 0) => 0.0,
            (true, rows) => failing as f64 * 100.0 / rows as f64,
        };
        match self.comparison {
            Comparison::Greater => measured > self.value,
            Comparison::GreaterOrEqual => measured >= self.value,
            Comparison::Less => measured < self.value,
            Comparison::LessOrEqual => measured <= self.value,
            Comparison::Equal => measured == self.value,
            Comparison::NotEqual => measured != self.value,
        }
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("`{text}` is not a threshold such as \"> 0\", \">= 10\" or \"> 1%\"");
        let trimmed = text.trim();
        let (comparison, rest) = Comparison::ALL
            .iter()
            .find_map(|(symbol, comparison)| trimmed.strip_prefix(symbol).map(|rest| (*comparison, rest)))
            .ok_or_else(invalid)?;
        let rest = rest.trim();
        let (number, percent) = match rest.strip_suffix('%') {
            Some(number) => (number.trim_end(), true),
            None => (rest, false),
        };
        let value: f64 = number.parse().map_err(|_| invalid())?;
        if !value.is_finite() || value < 0.0 || percent && value > 100.0 {
            return Err(invalid());
        }
        Ok(Threshold { comparison, value, percent })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}{}", self.comparison.symbol(), self.value, if self.percent { "%" } else { "" })
    }
}

/// Where something is written in the pipeline file.
#[derive(Debug, Clone)]
pub struct Declared {
    pub file: String,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
}

impl Declared {
    /// A problem with what is written here.
    pub fn diagnostic(&self, message: impl Into<String>, hint: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            location: self.location,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// How recent a source's newest row must be, measured against as_of.
#[derive(Debug, Clone)]
pub struct Freshness {
    /// A declared `timestamp` or `date` column.
    pub column: String,
    pub warn_after: Option<Age>,
    pub error_after: Option<Age>,
    /// Thresholds on the rows dated after as_of (always counted).
    pub rows_after_as_of_warn_if: Option<Threshold>,
    pub rows_after_as_of_error_if: Option<Threshold>,
}

impl Freshness {
    /// Whether it has a threshold that stops the run.
    pub fn can_fail(&self) -> bool {
        self.error_after.is_some() || self.rows_after_as_of_error_if.is_some()
    }
}

/// A length of time written like `12h`, `2d` or `1w`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Age {
    /// As written.
    pub text: String,
    pub duration: Duration,
}

impl FromStr for Age {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let duration = humantime::parse_duration(text.trim())
            .map_err(|_| format!("`{text}` is not a duration such as 12h, 2d or 1w"))?;
        Ok(Age { text: text.trim().to_string(), duration })
    }
}

/// How many rows a source must have, and how much their number may change from the
/// previous as_of's run.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Fewer rows loaded fail the run.
    pub min_rows: Option<u64>,
    pub warn_if_change_exceeds: Option<Percent>,
    pub error_if_change_exceeds: Option<Percent>,
}

impl Volume {
    /// Whether it has a threshold that stops the run.
    pub fn can_fail(&self) -> bool {
        self.min_rows.is_some() || self.error_if_change_exceeds.is_some()
    }
}

/// A percentage written like `50%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl Percent {
    /// The percentage as a fraction (50% is 0.5).
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

impl FromStr for Percent {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.trim()
            .strip_suffix('%')
            .and_then(|number| number.trim_end().parse::<f64>().ok())
            .filter(|value| value.is_finite() && *value >= 0.0)
            .map(Percent)
            .ok_or_else(|| format!("`{text}` is not a percentage such as 50%"))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_as_dbt_writes_them() {
        let threshold = |text: &str| text.parse::<Threshold>().unwrap();
        assert!(threshold("> 0").is_met(1, 100));
        assert!(!threshold("> 0").is_met(0, 100));
        assert!(!threshold(">10").is_met(10, 100));
        assert!(threshold(">= 10").is_met(10, 100));
        assert!(threshold("!= 0").is_met(3, 100));
        assert!(threshold("= 0").is_met(0, 0));
        assert!(threshold("<5").is_met(4, 100));
        assert!(!threshold("> 1%").is_met(1, 100), "1 of 100 is 1%, not more");
        assert!(threshold("> 1%").is_met(2, 100));
        assert!(threshold(">= 0.5 %").is_met(1, 200));
        assert!(!threshold("> 0%").is_met(5, 0), "a percentage of no rows is 0%");
        assert_eq!(threshold(">10").to_string(), "> 10");
        assert_eq!(threshold(" >= 0.5 % ").to_string(), ">= 0.5%");
        for bad in ["0", "> ", "> x", "> -1", "> 101%", "=> 3", "> 1e999"] {
            assert_eq!(
                bad.parse::<Threshold>(),
                Err(format!("`{bad}` is not a threshold such as \"> 0\", \">= 10\" or \"> 1%\""))
            );
        }
    }

    #[test]
    fn ages_and_percentages() {
        assert_eq!("2d".parse::<Age>().unwrap().duration, Duration::from_secs(2 * 86_400));
        assert_eq!("12h".parse::<Age>().unwrap().duration, Duration::from_secs(12 * 3_600));
        assert_eq!("1w".parse::<Age>().unwrap().duration, Duration::from_secs(7 * 86_400));
        assert_eq!("2 days".parse::<Age>().unwrap().text, "2 days");
        assert_eq!("2".parse::<Age>(), Err("`2` is not a duration such as 12h, 2d or 1w".to_string()));
        assert_eq!("50%".parse::<Percent>().unwrap().fraction(), 0.5);
        assert_eq!("12.5 %".parse::<Percent>().unwrap().to_string(), "12.5%");
        assert_eq!("50".parse::<Percent>(), Err("`50` is not a percentage such as 50%".to_string()));
    }

    #[test]
    fn table_columns() {
        let reference: TableColumn = "rfm_segment_map.segment".parse().unwrap();
        assert_eq!(reference, TableColumn { table: "rfm_segment_map".into(), column: "segment".into() });
        assert_eq!(reference.to_string(), "rfm_segment_map.segment");
        for bad in ["segment", ".segment", "map.", "a.b.c"] {
            assert!(bad.parse::<TableColumn>().is_err(), "{bad}");
        }
    }
}
