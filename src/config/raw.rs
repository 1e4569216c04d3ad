//! The pipeline file exactly as written: serde structs with `deny_unknown_fields`,
//! so a typo in a key is an error with its line, not a silently ignored option.
//! Semantic checks (references, cycles, files) happen in [`super::compile`].

use indexmap::IndexMap;
use serde::Deserialize;

use super::quality::Severity;
use super::types::{ColumnType, Format, OnBadRows, OnError, ParamType};

/// A pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// The pipeline's name, recorded in the manifest and the report.
    pub name: String,
    /// Free text for people reading the file.
    #[serde(default)]
    pub description: Option<String>,
    /// Folder of the SQL files, relative to the pipeline file. Default: the pipeline file's folder.
    #[serde(default)]
    pub sql_dir: Option<String>,
    /// Folder of the report templates, relative to the pipeline file. Default: the pipeline file's folder.
    #[serde(default)]
    pub templates_dir: Option<String>,
    /// Typed parameters, bound into SQL as `$name` and into URLs as `${name}`.
    #[serde(default)]
    pub params: IndexMap<String, RawParam>,
    /// Input tables, by name.
    pub sources: IndexMap<String, RawSource>,
    /// SQL stages, by name; order does not matter, dependencies decide it.
    #[serde(default)]
    pub stages: IndexMap<String, RawStage>,
    /// Which tables to write, and where.
    #[serde(default)]
    pub outputs: Option<RawOutputs>,
    /// Reports rendered from the published tables.
    #[serde(default)]
    pub reports: Vec<RawReport>,
}

/// A declared parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    /// `string`, `integer`, `float`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The value used when neither `--set` nor the environment gives one.
    #[serde(default)]
    pub default: Option<serde_yaml::Value>,
    /// When given, the only values accepted.
    #[serde(default)]
    pub allowed: Option<Vec<serde_yaml::Value>>,
    /// Free text, shown by `fidelis validate`.
    #[serde(default)]
    pub description: Option<String>,
}

/// An input table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// A file or folder: a path or an object-store URL, may contain `${param}`.
    pub url: String,
    /// Only files (below `url`) whose relative path matches this glob.
    #[serde(default)]
    pub glob: Option<String>,
    /// `csv`, `parquet` or `ndjson`; default: from each file's extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// When true, a source with no files is an empty table instead of an error.
    #[serde(default)]
    pub optional: bool,
    /// `fail` (default) or `quarantine`.
    #[serde(default)]
    pub on_bad_rows: OnBadRows,
    /// The declared schema, in order; without it every column is read as found.
    #[serde(default)]
    pub columns: Option<IndexMap<String, RawColumn>>,
    /// Columns whose values must not repeat (later duplicates are bad rows).
    #[serde(default)]
    pub unique: Vec<String>,
    /// Row-level checks: SQL conditions every row must satisfy.
    #[serde(default)]
    pub checks: Vec<RawCheck>,
    /// Metrics that need this source: named in the manifest when an optional source is absent.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// How recent the newest row must be, measured against as_of.
    #[serde(default)]
    pub freshness: Option<RawFreshness>,
    /// How many rows the source must have, and how much that may change between runs.
    #[serde(default)]
    pub volume: Option<RawVolume>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A source's freshness: `{column: order_ts, warn_after: 2d, error_after: 7d}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFreshness {
    /// A declared `timestamp` or `date` column dating each row.
    pub column: String,
    /// A newest row older than this (at the end of as_of) is a warning: `12h`, `2d`, `1w`.
    #[serde(default)]
    pub warn_after: Option<String>,
    /// A newest row older than this stops the run (exit code 3).
    #[serde(default)]
    pub error_after: Option<String>,
    /// Thresholds on the rows dated after as_of, which are always counted.
    #[serde(default)]
    pub rows_after_as_of: Option<RawThresholds>,
}

/// `warn_if` and `error_if` thresholds on a count of rows, e.g. `{warn_if: "> 0"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholds {
    #[serde(default)]
    pub warn_if: Option<String>,
    #[serde(default)]
    pub error_if: Option<String>,
}

/// A source's volume: `{min_rows: 1, warn_if_change_exceeds: 50%}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVolume {
    /// Fewer rows loaded stop the run (exit code 3).
    #[serde(default)]
    pub min_rows: Option<u64>,
    /// A change of the rows loaded, up or down, from the previous as_of's run by more than
    /// this percentage is a warning.
    #[serde(default)]
    pub warn_if_change_exceeds: Option<String>,
    /// A change by more than this percentage stops the run (exit code 3).
    #[serde(default)]
    pub error_if_change_exceeds: Option<String>,
}

/// A declared column: either just its type (`amount: decimal(18,2)`) or a full map.
#[derive(Debug)]
pub struct RawColumn {
    /// The column's type.
    pub kind: ColumnType,
    /// Null (or empty) values are bad rows.
    pub required: bool,
    /// The column's name in the files, when it differs from the declared name.
    pub from: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumnMap {
    #[serde(rename = "type")]
    kind: ColumnType,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl<'de> Deserialize<'de> for RawColumn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawColumn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a column type such as `string`, or a map with `type`, `required`, `from`")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawColumn, E> {
                let kind = value.parse().map_err(E::custom)?;
                Ok(RawColumn { kind, required: false, from: None, description: None })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawColumn, A::Error> {
                let full = RawColumnMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawColumn {
                    kind: full.kind,
                    required: full.required,
                    from: full.from,
                    description: full.description,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A row-level data test on a source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Shown in errors and in the quarantine table's `reason`.
    pub name: String,
    /// A SQL boolean expression over the source's columns; rows where it is false are bad.
    pub condition: String,
    /// The column to name in error messages.
    #[serde(default)]
    pub column: Option<String>,
}

/// A SQL stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    /// A SQL file relative to `sql_dir`; default `{stage name}.sql`.
    #[serde(default)]
    pub sql: Option<String>,
    /// Inline SQL instead of a file.
    #[serde(default)]
    pub query: Option<String>,
    /// Named SQL conditions whose matching rows are counted into the manifest (and
    /// logged as warnings when not zero), e.g. `capped_shares: capped`.
    #[serde(default)]
    pub counts: IndexMap<String, String>,
    /// Named SQL aggregate expressions over the stage's result, recorded in the manifest
    /// (`stages[].facts`) and logged, e.g. `selected_model: max(model) FILTER (WHERE selected)`.
    #[serde(default)]
    pub facts: IndexMap<String, String>,
    /// `fail` (default): a data error in this stage fails the run. `warn`: it is logged
    /// and recorded in the manifest, and the stage, the stages reading it and their
    /// tables are skipped (a model that cannot be fitted, for example).
    #[serde(default)]
    pub on_error: OnError,
    /// Data tests on the stage's result, run when it finishes.
    #[serde(default)]
    pub tests: Vec<RawTest>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A data test: exactly one of the kinds, with optional `name`, `severity` and thresholds,
/// e.g. `{unique: customer_id}` or `{accepted_range: {column: p_alive, min: 0, max: 1}, severity: warn}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    /// A column whose values do not repeat, or a list of columns whose combination does not.
    #[serde(default)]
    pub unique: Option<RawColumns>,
    /// A column that is never null.
    #[serde(default)]
    pub not_null: Option<String>,
    /// A column whose values are among `values`, or among those of `values_from`.
    #[serde(default)]
    pub accepted_values: Option<RawAcceptedValues>,
    /// A column whose values are values of `to` (`table.column`).
    #[serde(default)]
    pub relationships: Option<RawRelationships>,
    /// A column between `min` and `max`, inclusive.
    #[serde(default)]
    pub accepted_range: Option<RawAcceptedRange>,
    /// A SQL condition over the stage's columns that every row meets.
    #[serde(default)]
    pub expression: Option<String>,
    /// The test's name (default: dbt's, e.g. `unique_rfm_customer_id`).
    #[serde(default)]
    pub name: Option<String>,
    /// `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
    /// Failing rows that fail the run (severity `error`), e.g. `"> 10"` or `"> 1%"`; default `"> 0"`.
    #[serde(default)]
    pub error_if: Option<String>,
    /// Failing rows that make a warning; default `"> 0"`.
    #[serde(default)]
    pub warn_if: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// One column name, or a list of them.
#[derive(Debug)]
pub struct RawColumns(pub Vec<String>);

impl<'de> Deserialize<'de> for RawColumns {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawColumns;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a column name, or a list of column names")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawColumns, E> {
                Ok(RawColumns(vec![value.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawColumns, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(RawColumns)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `accepted_values`: `{column: kind, values: [purchase, refund]}` or
/// `{column: segment, values_from: rfm_segment_map.segment}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcceptedValues {
    pub column: String,
    #[serde(default)]
    pub values: Option<Vec<serde_yaml::Value>>,
    /// `table.column` of a stage or source.
    #[serde(default)]
    pub values_from: Option<String>,
}

/// `relationships`: `{column: customer_id, to: customer_summary.customer_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelationships {
    pub column: String,
    /// `table.column` of a stage or source.
    pub to: String,
}

/// `accepted_range`: `{column: p_alive, min: 0, max: 1}`; bounds are inclusive, either optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcceptedRange {
    pub column: String,
    #[serde(default)]
    pub min: Option<serde_yaml::Value>,
    #[serde(default)]
    pub max: Option<serde_yaml::Value>,
}

/// Where the run writes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutputs {
    /// Output root: a path or object-store URL, may contain `${param}`.
    pub root: String,
    /// Stage tables to write as Parquet under `{root}/{table}/as_of={as_of}/`.
    pub tables: Vec<String>,
}

/// A report rendered after the tables are published.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    /// A Tera template relative to `templates_dir`.
    pub template: String,
    /// The file name written under `{root}/reports/as_of={as_of}/`.
    pub path: String,
    /// The output tables the template reads, as `tables.<name>`.
    #[serde(default)]
    pub tables: Vec<String>,
}
