//! Bad rows: what a load found wrong, where, and the raw record. With
//! `on_bad_rows: fail` the load keeps the first few for its error and counts the rest;
//! with `on_bad_rows: quarantine` they become the rows of the source's quarantine
//! table, stored as they are found (in memory or on disk, like any result).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::files::InputFile;
use crate::config::{Format, OnBadRows, Source};
use crate::error::{Error, Result};
use crate::results::{ResultWriter, Results, Stored};

/// How many bad rows an error message lists before summarising the rest.
const ERRORS_SHOWN: usize = 10;

/// Quarantine rows built into one batch.
const QUARANTINE_BATCH_ROWS: usize = 4096;

/// The schema of every `_quarantine/{source}` table.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source_file", DataType::Utf8, false),
        Field::new("row_number", DataType::UInt64, true),
        Field::new("column_name", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("record", DataType::Utf8, false),
    ]))
}

/// A problem with an input row (or with a part of a file): where, what, and the raw values.
#[derive(Debug, Clone)]
pub struct BadRow {
    /// The file's index among the source's files.
    pub file: usize,
    /// The row (line) number; `None` for a whole file.
    pub row: Option<u64>,
    /// How many input rows it stands for: 1, or more for a part of a file that cannot be read.
    pub rows: u64,
    pub column: Option<String>,
    pub reason: String,
    /// The raw record as JSON (or the raw text), for people fixing the data.
    pub record: String,
}

/// The bad rows of one load.
pub struct BadRows<'a> {
    source: &'a Source,
    files: &'a [InputFile],
    /// Input rows the bad rows stand for.
    rows: u64,
    /// Problems found (several problems of one row count once in `rows`).
    problems: u64,
    /// With `fail`: the first problems, by file and row.
    shown: Vec<BadRow>,
    /// With `quarantine`: the quarantine table being stored, and rows not yet in a batch.
    quarantine: Option<(ResultWriter, Vec<BadRow>)>,
}

impl<'a> BadRows<'a> {
    pub fn new(source: &'a Source, files: &'a [InputFile], results: &Results) -> Self {
        let quarantine = (source.on_bad_rows == OnBadRows::Quarantine)
            .then(|| (results.writer(&format!("_quarantine/{}", source.name), quarantine_schema()), Vec::new()));
        BadRows { source, files, rows: 0, problems: 0, shown: Vec::new(), quarantine }
    }

    /// Input rows the bad rows found so far stand for.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds the problems of one input row (or part of a file).
    pub async fn add(&mut self, problems: Vec<BadRow>) -> Result<()> {
        let Some(first) = problems.first() else { return Ok(()) };
        self.rows += first.rows;
        self.problems += problems.len() as u64;
        match &mut self.quarantine {
            Some((writer, pending)) => {
                pending.push(merged(problems));
                if pending.len() >= QUARANTINE_BATCH_ROWS {
                    let batch = quarantine_batch(self.files, &std::mem::take(pending));
                    writer.push(batch).await.map_err(|e| Error::runtime("storing quarantined rows", e))?;
                }
            }
            None => {
                self.shown.extend(problems);
                self.shown.sort_by_key(|b| (b.file, b.row));
                self.shown.truncate(ERRORS_SHOWN);
            }
        }
        Ok(())
    }

    /// The quarantine table (quarantine mode, when there are bad rows), or the error
    /// naming the bad rows (fail mode, when there are any). `row_groups` are the row
    /// group starts of each Parquet file, to name a row's group.
    pub async fn finish(self, row_groups: &[Vec<u64>]) -> Result<Option<Stored>> {
        match self.quarantine {
            Some((mut writer, pending)) => {
                if !pending.is_empty() {
                    let batch = quarantine_batch(self.files, &pending);
                    writer.push(batch).await.map_err(|e| Error::runtime("storing quarantined rows", e))?;
                }
                let stored = writer.finish().await.map_err(|e| Error::runtime("storing quarantined rows", e))?;
                Ok((stored.rows > 0).then_some(stored))
            }
            None if self.problems == 0 => Ok(None),
            None => Err(self.error(row_groups)),
        }
    }

    fn error(&self, row_groups: &[Vec<u64>]) -> Error {
        let (source, rows) = (&self.source.name, self.rows);
        let mut message = format!("source `{source}`: {rows} bad row{} (on_bad_rows: fail):", plural(rows));
        for problem in &self.shown {
            let column = problem.column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default();
            message.push_str(&format!("\n  {}{column}: {}", where_is(self.files, row_groups, problem), problem.reason));
        }
        if self.problems > ERRORS_SHOWN as u64 {
            message.push_str(&format!("\n  … and {} more problems", self.problems - ERRORS_SHOWN as u64));
        }
        message.push_str(&format!(
            "\nFix the data, or set `on_bad_rows: quarantine` on source `{source}` to set such rows aside in `_quarantine/{source}` and go on without them."
        ));
        Error::Data(message)
    }
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Every problem of one row as one quarantine row: columns and reasons joined.
fn merged(mut problems: Vec<BadRow>) -> BadRow {
    if problems.len() == 1 {
        return problems.remove(0);
    }
    let columns: Vec<&str> = problems.iter().filter_map(|p| p.column.as_deref()).collect();
    let reasons: Vec<&str> = problems.iter().map(|p| p.reason.as_str()).collect();
    BadRow {
        column: (!columns.is_empty()).then(|| columns.join(",")),
        reason: reasons.join("; "),
        ..problems[0].clone()
    }
}

fn quarantine_batch(files: &[InputFile], rows: &[BadRow]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| files[r.file].url.as_str()))),
        Arc::new(rows.iter().map(|r| r.row).collect::<UInt64Array>()),
        Arc::new(rows.iter().map(|r| r.column.as_deref()).collect::<StringArray>()),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.reason.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.record.as_str()))),
    ];
    RecordBatch::try_new(quarantine_schema(), columns).expect("quarantine columns match the quarantine schema")
}

/// Where a problem is: the file, and the line or row (with its row group, for Parquet
/// files of several).
pub fn where_is(files: &[InputFile], row_groups: &[Vec<u64>], bad: &BadRow) -> String {
    let file = &files[bad.file];
    let Some(row) = bad.row else {
        return file.url.clone();
    };
    let label = if file.kind == Format::Parquet { "row" } else { "line" };
    let group = row_groups
        .get(bad.file)
        .filter(|starts| starts.len() > 1)
        .map(|starts| format!(" (row group {})", starts.partition_point(|&s| s <= row) - 1))
        .unwrap_or_default();
    format!("{} {label} {row}{group}", file.url)
}

/// A row's raw values as a JSON object, as read from the file.
pub fn record_json(batch: &RecordBatch, index: usize) -> String {
    let options = FormatOptions::default();
    let mut object = serde_json::Map::new();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let value = match ArrayFormatter::try_new(array.as_ref(), &options) {
            Ok(formatter) if array.is_valid(index) => serde_json::Value::String(formatter.value(index).to_string()),
            _ => serde_json::Value::Null,
        };
        object.insert(field.name().clone(), value);
    }
    serde_json::Value::Object(object).to_string()
}
