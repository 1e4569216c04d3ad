//! The pipeline file exactly as written: serde structs with `deny_unknown_fields`,
//! so a typo in a key is an error with its line, not a silently ignored option.
//! Semantic checks (references, cycles, files) happen in [`super::compile`].

use indexmap::IndexMap;
use serde::Deserialize;

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
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
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
    /// `fail` (default): a data error in this stage fails the run. `warn`: it is logged
    /// and recorded in the manifest, and the stage, the stages reading it and their
    /// tables are skipped (a model that cannot be fitted, for example).
    #[serde(default)]
    pub on_error: OnError,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
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
