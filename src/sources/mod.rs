//! Sources: finding a source's files, reading them, typing them as declared and
//! enforcing its checks, so that every row either reaches the pipeline or is
//! accounted for — in an error that names file, row and column, or in the
//! source's quarantine table. Rows read = rows loaded + rows quarantined, always.

mod files;
mod read;
mod repeats;
mod typing;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{SessionContext, col};
use serde::{Deserialize, Serialize};

pub use files::InputFile;

use crate::config::{Format, OnBadRows, Source};
use crate::error::{Error, Result};
use crate::storage::Location;

/// How many bad rows an error message lists before summarising the rest.
const ERRORS_SHOWN: usize = 10;

/// Column with each candidate row's position while checks run.
const ROW_INDEX: &str = "__fidelis_row_index";

/// A source read, typed and checked.
pub struct LoadedSource {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Rows set aside (quarantine mode only), in the quarantine table's schema.
    pub quarantine: Option<RecordBatch>,
    pub report: SourceReport,
}

/// What the manifest records about a source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceReport {
    /// The source's location, without credentials.
    pub url: String,
    /// `loaded`, or `absent` for an optional source without files.
    pub status: String,
    pub files: Vec<InputFile>,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_quarantined: u64,
}

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

/// The typed schema of a source: its declared columns, or (undeclared) the first file's.
pub async fn schema(source: &Source, location: &Location) -> Result<SchemaRef> {
    if let Some(columns) = &source.columns {
        let fields: Vec<Field> = columns.iter().map(|c| Field::new(&c.name, c.kind.data_type(), true)).collect();
        return Ok(Arc::new(Schema::new(fields)));
    }
    let files = files::list(source, location).await?;
    let Some(first) = files.first() else {
        return Err(no_files(source, location));
    };
    let raw = read::read(location, first, None).await?;
    raw.chunks.first().map(|chunk| chunk.batch.schema()).ok_or_else(|| {
        Error::Data(format!(
            "source `{}`: {} has no rows to take a schema from; declare `columns`",
            source.name, first.url
        ))
    })
}

/// The files a source would read, without reading them (for `validate`).
pub async fn list_files(source: &Source, location: &Location) -> Result<Vec<InputFile>> {
    let found = files::list(source, location).await?;
    if found.is_empty() && !source.optional {
        return Err(no_files(source, location));
    }
    Ok(found)
}

fn no_files(source: &Source, location: &Location) -> Error {
    let glob = source.glob.as_deref().map(|g| format!(" matching `{g}`")).unwrap_or_default();
    Error::Data(format!(
        "source `{}`: no csv, parquet or ndjson files{glob} at {location}; check `url` and the `input` parameter, or mark the source `optional: true`",
        source.name
    ))
}

/// A bad row: where it is, what is wrong, and its raw values.
struct BadRow {
    /// Position among the rows read into batches; `None` for rows that never were.
    index: Option<usize>,
    file: usize,
    row: Option<u64>,
    column: Option<String>,
    reason: String,
    record: String,
}

/// Loads `source` from `location`.
pub async fn load(ctx: &SessionContext, source: &Source, location: &Location, timezone: Tz) -> Result<LoadedSource> {
    let input_files = list_files(source, location).await?;
    let wanted: Option<Vec<String>> =
        source.columns.as_ref().map(|columns| columns.iter().map(|c| c.file_name().to_string()).collect());
    let mut bad: Vec<BadRow> = Vec::new();
    let mut rows_read = 0;
    let mut typed: Vec<RecordBatch> = Vec::new();
    let mut raw_batches: Vec<RecordBatch> = Vec::new();
    // For each typed row, in order: (file, row number). Global row index = position.
    let mut origin: Vec<(usize, u64)> = Vec::new();
    let mut row_groups: Vec<Vec<u64>> = Vec::new();
    for (file_index, file) in input_files.iter().enumerate() {
        let raw = read::read(location, file, wanted.as_deref()).await?;
        rows_read += raw.rows_read.max(raw.malformed.iter().filter(|m| m.row.is_none()).count() as u64);
        row_groups.push(raw.row_group_starts);
        bad.extend(raw.malformed.into_iter().map(|m| BadRow {
            index: None,
            file: file_index,
            row: m.row,
            column: None,
            reason: m.reason,
            record: m.record,
        }));
        for chunk in raw.chunks {
            if let Some(columns) = &source.columns {
                let schema = chunk.batch.schema();
                let missing: Vec<String> = columns
                    .iter()
                    .filter(|c| c.required && schema.index_of(c.file_name()).is_err())
                    .map(|c| match &c.from {
                        Some(from) => format!("`{}` (from `{from}`)", c.name),
                        None => format!("`{}`", c.name),
                    })
                    .collect();
                if !missing.is_empty() {
                    let found: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                    return Err(Error::Data(format!(
                        "source `{}`: {} lacks required column {}; it has: {}. Map your column names with `from:` in the source's `columns`",
                        source.name,
                        file.url,
                        missing.join(", "),
                        found.join(", ")
                    )));
                }
                let first = origin.len();
                let (batch, problems) = typing::type_batch(&chunk.batch, columns, timezone);
                for problem in problems {
                    bad.push(BadRow {
                        index: Some(first + problem.index),
                        file: file_index,
                        row: Some(chunk.rows[problem.index]),
                        column: Some(problem.column),
                        reason: problem.reason,
                        record: String::new(),
                    });
                }
                typed.push(batch);
            } else {
                if let Some(first) = typed.first()
                    && first.schema() != chunk.batch.schema()
                {
                    return Err(Error::Data(format!(
                        "source `{}`: {} has different columns than earlier files; declare `columns` to read them as one table",
                        source.name, file.url
                    )));
                }
                typed.push(chunk.batch.clone());
            }
            origin.extend(chunk.rows.iter().map(|&row| (file_index, row)));
            raw_batches.push(chunk.batch);
        }
    }
    let schema = match typed.first() {
        Some(batch) => batch.schema(),
        None => schema(source, location).await.unwrap_or_else(|_| Arc::new(Schema::empty())),
    };

    // Rows already bad (unparsable, missing values) are not checked again.
    // Global row index → the first problem found in that row.
    let mut bad_index: BTreeMap<usize, usize> = BTreeMap::new();
    for (at, problem) in bad.iter().enumerate() {
        if let Some(index) = problem.index {
            bad_index.entry(index).or_insert(at);
        }
    }
    let checked = run_checks(ctx, source, &typed, &bad_index.keys().copied().collect()).await?;
    for Failure { index, column, mut reason, first } in checked {
        let (file, row) = origin[index];
        if let Some(first) = first {
            let (first_file, first_row) = origin[first];
            let label = if input_files[first_file].kind == Format::Parquet { "row" } else { "line" };
            reason.push_str(&format!(": the same value is in {} {label} {first_row}", input_files[first_file].url));
        }
        bad_index.entry(index).or_insert(bad.len());
        bad.push(BadRow { index: Some(index), file, row: Some(row), column, reason, record: String::new() });
    }

    // Fill in the raw record of typed rows found bad, for people fixing the data.
    let mut offsets = Vec::with_capacity(raw_batches.len());
    let mut total = 0;
    for batch in &raw_batches {
        offsets.push(total);
        total += batch.num_rows();
    }
    for (&index, &at) in &bad_index {
        let chunk = offsets.partition_point(|&offset| offset <= index) - 1;
        if bad[at].record.is_empty() {
            bad[at].record = record_json(&raw_batches[chunk], index - offsets[chunk]);
        }
    }

    let url = location.to_string();
    let quarantined_rows = {
        let mut rows: HashSet<(usize, Option<u64>)> = HashSet::new();
        bad.iter().filter(|b| rows.insert((b.file, b.row))).count() as u64
    };
    if !bad.is_empty() && source.on_bad_rows == OnBadRows::Fail {
        return Err(bad_rows_error(source, &input_files, &row_groups, &bad, quarantined_rows));
    }

    let batches = drop_rows(typed, &bad_index)?;
    let rows_loaded: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let quarantine = (!bad.is_empty()).then(|| quarantine_batch(&input_files, &bad));
    let status = if input_files.is_empty() { "absent" } else { "loaded" }.to_string();
    let rows_quarantined = rows_read - rows_loaded;
    debug_assert_eq!(rows_quarantined, quarantined_rows, "every bad row is counted once");
    Ok(LoadedSource {
        schema,
        batches,
        quarantine,
        report: SourceReport { url, status, files: input_files, rows_read, rows_loaded, rows_quarantined },
    })
}

/// A row that failed a check or repeated a unique value.
struct Failure {
    index: usize,
    column: Option<String>,
    reason: String,
    /// For duplicates: the global index of the row that had the value first.
    first: Option<usize>,
}

/// The source's `checks` and `unique` columns over rows not already bad.
async fn run_checks(
    ctx: &SessionContext,
    source: &Source,
    typed: &[RecordBatch],
    already_bad: &HashSet<usize>,
) -> Result<Vec<Failure>> {
    if source.checks.is_empty() && source.unique.is_empty() || typed.is_empty() {
        return Ok(Vec::new());
    }
    let mut failures = Vec::new();
    let mut candidates = Vec::with_capacity(typed.len());
    let mut start = 0;
    for batch in typed {
        let rows = start..start + batch.num_rows();
        start += batch.num_rows();
        let indices: UInt64Array = rows.clone().map(|i| i as u64).collect();
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(indices));
        let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(ROW_INDEX, DataType::UInt64, false));
        let with_index = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| Error::runtime("preparing checks", e))?;
        // Filtering copies every column: only pay for it when some row is already bad.
        if already_bad.is_empty() {
            candidates.push(with_index);
            continue;
        }
        let keep: BooleanArray = rows.map(|i| Some(!already_bad.contains(&i))).collect();
        candidates.push(match keep.false_count() {
            0 => with_index,
            _ => filter_record_batch(&with_index, &keep).map_err(|e| Error::runtime("preparing checks", e))?,
        });
    }
    let mut failed: HashSet<usize> = HashSet::new();
    for check in &source.checks {
        let frame = ctx.read_batches(candidates.clone()).map_err(|e| Error::runtime("preparing checks", e))?;
        let condition = frame.parse_sql_expr(&check.condition).map_err(|error| {
            Error::config(
                &source.name,
                format!("check `{}`: cannot plan `{}`: {error}", check.name, check.condition),
                "the condition may use the source's declared columns and SQL functions",
            )
        })?;
        let rows = frame
            .filter(condition.is_not_true())
            .and_then(|f| f.select(vec![col(ROW_INDEX)]))
            .map_err(|e| Error::config(&source.name, format!("check `{}`: {e}", check.name), "fix the condition"))?
            .collect()
            .await
            .map_err(|e| Error::runtime(format!("source `{}`: running check `{}`", source.name, check.name), e))?;
        for batch in rows {
            let indices = batch.column(0).as_any().downcast_ref::<UInt64Array>().expect("row index column is UInt64");
            for index in indices.values().iter().map(|&i| i as usize) {
                if failed.insert(index) {
                    let reason = format!("check `{}` failed: {}", check.name, check.condition);
                    failures.push(Failure { index, column: check.column.clone(), reason, first: None });
                }
            }
        }
    }
    for column in &source.unique {
        let values: Vec<&ArrayRef> = candidates
            .iter()
            .map(|batch| {
                batch.column_by_name(column).expect("unique columns are validated against the declared schema")
            })
            .collect();
        let indices: Vec<&UInt64Array> = candidates
            .iter()
            .map(|batch| {
                let indices = batch.column_by_name(ROW_INDEX).expect("added above");
                indices.as_any().downcast_ref::<UInt64Array>().expect("row index column is UInt64")
            })
            .collect();
        let row_index = |(batch, row): repeats::Row| indices[batch].value(row) as usize;
        let found = repeats::repeats(&values).map_err(|e| Error::runtime("checking uniqueness", e))?;
        for (repeat, first) in found {
            let index = row_index(repeat);
            if failed.insert(index) {
                let (column, reason) = (Some(column.clone()), format!("duplicate `{column}`"));
                failures.push(Failure { index, column, reason, first: Some(row_index(first)) });
            }
        }
    }
    failures.sort_by_key(|failure| failure.index);
    Ok(failures)
}

fn drop_rows(typed: Vec<RecordBatch>, bad: &BTreeMap<usize, usize>) -> Result<Vec<RecordBatch>> {
    if bad.is_empty() {
        return Ok(typed);
    }
    let mut start = 0;
    let mut kept = Vec::with_capacity(typed.len());
    for batch in typed {
        let keep: BooleanArray = (start..start + batch.num_rows()).map(|i| Some(!bad.contains_key(&i))).collect();
        start += batch.num_rows();
        kept.push(filter_record_batch(&batch, &keep).map_err(|e| Error::runtime("removing bad rows", e))?);
    }
    Ok(kept)
}

/// A row's raw values as a JSON object, as read from the file.
fn record_json(batch: &RecordBatch, index: usize) -> String {
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

fn where_is(files: &[InputFile], row_groups: &[Vec<u64>], bad: &BadRow) -> String {
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

fn bad_rows_error(source: &Source, files: &[InputFile], row_groups: &[Vec<u64>], bad: &[BadRow], rows: u64) -> Error {
    let mut sorted: Vec<&BadRow> = bad.iter().collect();
    sorted.sort_by_key(|b| (b.file, b.row));
    let mut message =
        format!("source `{}`: {rows} bad row{} (on_bad_rows: fail):", source.name, if rows == 1 { "" } else { "s" });
    for problem in sorted.iter().take(ERRORS_SHOWN) {
        let column = problem.column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default();
        message.push_str(&format!("\n  {}{column}: {}", where_is(files, row_groups, problem), problem.reason));
    }
    if sorted.len() > ERRORS_SHOWN {
        message.push_str(&format!("\n  … and {} more problems", sorted.len() - ERRORS_SHOWN));
    }
    message.push_str(&format!(
        "\nFix the data, or set `on_bad_rows: quarantine` on source `{}` to set such rows aside in `_quarantine/{}` and go on without them.",
        source.name, source.name
    ));
    Error::Data(message)
}

/// One row of a quarantine table: every problem of one input row, joined.
struct QuarantineRow<'a> {
    first: &'a BadRow,
    columns: Vec<&'a str>,
    reasons: Vec<&'a str>,
}

fn quarantine_batch(files: &[InputFile], bad: &[BadRow]) -> RecordBatch {
    let mut sorted: Vec<&BadRow> = bad.iter().collect();
    sorted.sort_by_key(|b| (b.file, b.row));
    let mut merged: Vec<QuarantineRow> = Vec::new();
    for problem in sorted {
        let same_row = |last: &QuarantineRow| {
            last.first.file == problem.file && last.first.row == problem.row && problem.row.is_some()
        };
        match merged.last_mut() {
            Some(last) if same_row(last) => {
                last.columns.extend(problem.column.as_deref());
                last.reasons.push(&problem.reason);
            }
            _ => merged.push(QuarantineRow {
                first: problem,
                columns: problem.column.as_deref().into_iter().collect(),
                reasons: vec![&problem.reason],
            }),
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(merged.iter().map(|m| files[m.first.file].url.as_str()))),
        Arc::new(merged.iter().map(|m| m.first.row).collect::<UInt64Array>()),
        Arc::new(merged.iter().map(|m| (!m.columns.is_empty()).then(|| m.columns.join(","))).collect::<StringArray>()),
        Arc::new(StringArray::from_iter_values(merged.iter().map(|m| m.reasons.join("; ")))),
        Arc::new(StringArray::from_iter_values(merged.iter().map(|m| m.first.record.as_str()))),
    ];
    RecordBatch::try_new(quarantine_schema(), columns).expect("quarantine columns match the quarantine schema")
}
