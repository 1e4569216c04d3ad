//! Schema files: a model's documentation in a YAML file beside its SQL file, as dbt
//! keeps it (`marts/rfm.yml` beside `marts/rfm.sql`), so the pipeline file stays a
//! list of stages. Every mart has one; `fidelis validate` checks that it describes
//! each column the mart outputs and no other, and `fidelis docs` prints it.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;

use super::locate::locate;

/// A schema file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchemaFile {
    /// What the model is: what one row stands for, and what it is for.
    pub description: String,
    /// Each column the model outputs, by name: what it means (for a contract table, as
    /// the data contract defines it).
    pub columns: IndexMap<String, String>,
}

/// A stage's schema file, loaded.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    /// Where it is, as shown in messages.
    pub path: String,
    /// What the model is (also the stage's description).
    pub description: String,
    /// Where its `columns:` key is written (1-based line and column).
    pub columns_at: Option<(usize, usize)>,
    /// Column descriptions, in the file's order.
    pub columns: IndexMap<String, ColumnDoc>,
}

/// A column's description and where it is written.
#[derive(Debug, Clone)]
pub struct ColumnDoc {
    pub description: String,
    pub at: Option<(usize, usize)>,
}

/// The schema file of the SQL file at `sql`: the same path with `.yml`.
pub fn path_of(sql: &Path) -> std::path::PathBuf {
    sql.with_extension("yml")
}

impl SchemaFile {
    /// The loaded form of `raw`, read from `text` at `path`.
    pub fn new(path: &Path, text: &str, raw: RawSchemaFile) -> SchemaFile {
        let columns = raw
            .columns
            .into_iter()
            .map(|(name, description)| {
                let at = locate(text, &["columns", &name]);
                (name, ColumnDoc { description, at })
            })
            .collect();
        SchemaFile {
            path: path.display().to_string(),
            description: raw.description,
            columns_at: locate(text, &["columns"]),
            columns,
        }
    }
}
