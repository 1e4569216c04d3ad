//! Pipeline configuration: the YAML file as written ([`raw`]), and the compiled,
//! validated [`Pipeline`] every later step works from ([`compile`]).

mod compile;
mod layers;
mod locate;
pub mod quality;
mod raw;
mod schema_file;
pub mod types;

use std::path::PathBuf;

use indexmap::IndexMap;

pub use compile::load;
pub use layers::Layer;
pub use quality::{DataTest, Freshness, Severity, Status, TestKind, Threshold, Volume};
pub use schema_file::{ColumnDoc, SchemaFile};
pub use types::{ColumnType, Format, OnBadRows, OnError, ParamType, ParamValue};

/// The parameter every run has: the date the run computes everything as of.
pub const AS_OF: &str = "as_of";
/// The parameter every run has: the IANA timezone in which timestamps become days.
pub const TIMEZONE: &str = "timezone";

/// A validated pipeline: names resolved, stages in dependency order, SQL loaded.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The pipeline's name.
    pub name: String,
    pub description: Option<String>,
    /// The pipeline file it was loaded from.
    pub file: PathBuf,
    /// Declared parameters, `as_of` and `timezone` always among them.
    pub params: IndexMap<String, Param>,
    /// Input tables by name.
    pub sources: IndexMap<String, Source>,
    /// SQL stages in dependency order (each after every stage it reads).
    pub stages: Vec<Stage>,
    /// Which stage tables to write, and where.
    pub outputs: Option<Outputs>,
    /// Reports to render after publishing.
    pub reports: Vec<Report>,
    /// Folder holding the report templates.
    pub templates_dir: PathBuf,
}

/// A declared parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub kind: ParamType,
    /// `None` for `as_of`, whose default (yesterday) depends on the clock and timezone.
    pub default: Option<ParamValue>,
    /// When not empty, the only values accepted.
    pub allowed: Vec<ParamValue>,
    pub description: Option<String>,
}

/// An input table.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub description: Option<String>,
    /// Location with `${param}` placeholders still in it.
    pub url: String,
    pub glob: Option<String>,
    pub format: Option<Format>,
    pub optional: bool,
    pub on_bad_rows: OnBadRows,
    /// The declared schema; `None` reads columns as found (CSV and NDJSON as strings).
    pub columns: Option<Vec<Column>>,
    pub unique: Vec<String>,
    pub checks: Vec<Check>,
    /// Metrics that have no data when this (optional) source is absent.
    pub metrics: Vec<String>,
    /// How recent its newest row must be (and which column dates its rows).
    pub freshness: Option<Freshness>,
    /// How many rows it must have, and how much that may change between runs.
    pub volume: Option<Volume>,
}

impl Source {
    /// Whether its freshness or volume can stop the run: such a source is loaded and
    /// checked before any stage runs.
    pub fn checked_first(&self) -> bool {
        self.freshness.as_ref().is_some_and(Freshness::can_fail) || self.volume.as_ref().is_some_and(Volume::can_fail)
    }
}

/// A declared source column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub description: Option<String>,
    pub kind: ColumnType,
    pub required: bool,
    /// The column's name in the files, when it differs.
    pub from: Option<String>,
}

impl Column {
    /// The column's name as written in the input files.
    pub fn file_name(&self) -> &str {
        self.from.as_deref().unwrap_or(&self.name)
    }
}

/// A row-level data test.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub condition: String,
    pub column: Option<String>,
}

/// A SQL stage, ready to plan.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    /// From the stage's schema file, or else the pipeline file.
    pub description: Option<String>,
    /// The SQL text; parameters appear as `$name` placeholders.
    pub sql: String,
    /// Where the SQL came from, for error messages.
    pub origin: String,
    /// The SQL file, for stages not written inline (`query:`).
    pub file: Option<SqlFile>,
    /// Sources and stages the stage reads: its SQL, and its tests (which run when it
    /// finishes, so what they read must be done and kept until then).
    pub depends_on: Vec<String>,
    /// Sources and stages its SQL reads (the layers concern these).
    pub sql_reads: Vec<String>,
    /// Named conditions counted into the manifest.
    pub counts: IndexMap<String, String>,
    /// Named aggregate expressions evaluated over the stage's result into the manifest.
    pub facts: Vec<Fact>,
    /// What a data error in this stage does.
    pub on_error: OnError,
    /// Data tests on the stage's result.
    pub tests: Vec<DataTest>,
}

/// A stage's SQL file: where it is, its layer, and its documentation.
#[derive(Debug, Clone)]
pub struct SqlFile {
    /// Relative to `sql_dir`, e.g. `marts/rfm.sql`.
    pub path: PathBuf,
    /// The layer its folder puts the stage in; `None` outside `staging/`,
    /// `intermediate/` and `marts/`.
    pub layer: Option<Layer>,
    /// The schema file beside it (`marts/rfm.yml`), when there is one.
    pub schema: Option<SchemaFile>,
}

/// Where the run writes its tables.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// Output root with `${param}` placeholders still in it.
    pub root: String,
    pub tables: Vec<String>,
}

/// A report to render.
#[derive(Debug, Clone)]
pub struct Report {
    /// Template name, relative to `templates_dir`.
    pub template: String,
    /// File name under `{root}/reports/as_of={as_of}/`: a relative path without `.` or
    /// `..` segments.
    pub path: String,
    /// The output tables the template reads (as `tables.<name>`), each one a stage
    /// among `outputs.tables`.
    pub tables: Vec<String>,
}

impl Pipeline {
    /// The stage of that name.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.name == name)
    }
}

/// A stage's `facts:` entry: one value of the stage's result, recorded in the manifest.
#[derive(Debug, Clone)]
pub struct Fact {
    pub name: String,
    /// A SQL aggregate expression over the stage's columns (one value whatever the rows).
    pub expression: String,
    /// Where it is written, for errors found when it is planned.
    pub declared: quality::Declared,
}

impl Stage {
    /// The layer of the stage's SQL file, if it has one.
    pub fn layer(&self) -> Option<Layer> {
        self.file.as_ref().and_then(|file| file.layer)
    }

    /// The stage's schema file, if it has one.
    pub fn schema(&self) -> Option<&SchemaFile> {
        self.file.as_ref().and_then(|file| file.schema.as_ref())
    }
}
