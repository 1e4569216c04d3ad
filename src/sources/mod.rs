//! Sources: finding a source's files, reading them, typing them as declared and
//! enforcing its checks, so that every row either reaches the pipeline or is
//! accounted for — in an error that names file, row and column, or in the
//! source's quarantine table. Rows read = rows loaded + rows quarantined, always.
//! Once loaded, a source's freshness and volume are checked ([`assess`]) before any
//! stage reads it.

mod bad;
mod checks;
mod files;
mod freshness;
mod load;
mod read;
mod repeats;
mod typing;
mod volume;

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

pub use bad::quarantine_schema;
pub use files::InputFile;
pub use freshness::FreshnessReport;
pub use load::load;
pub use volume::{PreviousRun, VolumeReport};

use crate::config::Source;
use crate::error::{Error, Result};
use crate::results::Stored;
use crate::storage::Location;

/// A source read, typed and checked: its rows stored where the memory budget allows.
pub struct LoadedSource {
    pub rows: Stored,
    /// Rows set aside (quarantine mode only), in the quarantine table's schema, by file and row.
    pub quarantine: Option<Stored>,
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
    /// Bytes of the loaded rows stored in a local file because the memory budget could
    /// not hold them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spilled_bytes: u64,
    /// Its `freshness`, measured as of the end of as_of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freshness: Option<FreshnessReport>,
    /// Its `volume`: rows loaded, against `min_rows` and the previous as_of's run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeReport>,
}

/// What a run measures its sources against.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub as_of: NaiveDate,
    pub timezone: Tz,
    /// The previous as_of's run, when a source compares its volume with it.
    pub previous: Option<PreviousRun>,
}

/// What checking a source found: warnings for the manifest, errors that stop the run.
#[derive(Debug, Default)]
struct Findings {
    warnings: Vec<String>,
    errors: Vec<String>,
}

/// Checks the `freshness` and `volume` of `source`, loaded as `rows` and described by
/// `report` (where the measurements go). Returns the warnings; fails with a data error
/// naming every check past its error threshold. An optional source without files is not
/// checked: its absence is already a warning.
pub async fn assess(
    ctx: &SessionContext,
    source: &Source,
    rows: &Arc<Stored>,
    report: &mut SourceReport,
    baseline: &Baseline,
) -> Result<Vec<String>> {
    let mut findings = Findings::default();
    if report.status == "absent" {
        return Ok(findings.warnings);
    }
    if let Some(freshness) = &source.freshness {
        let measured =
            freshness::measure(ctx, source, freshness, rows.table(), report.rows_loaded, baseline, &mut findings)
                .await?;
        report.freshness = Some(measured);
    }
    if let Some(volume) = &source.volume {
        report.volume = Some(volume::check(source, volume, report.rows_loaded, baseline, &mut findings));
    }
    match findings.errors.is_empty() {
        true => Ok(findings.warnings),
        false => Err(Error::Data(findings.errors.join("\n"))),
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The typed schema of a source: its declared columns, or (undeclared) the first file's.
pub async fn schema(source: &Source, location: &Location) -> Result<SchemaRef> {
    if let Some(schema) = declared_schema(source) {
        return Ok(schema);
    }
    let files = files::list(source, location).await?;
    let Some(first) = files.first() else {
        return Err(no_files(source, location));
    };
    let options = read::ReadOptions { batch_rows: 1024, spool_dir: std::env::temp_dir(), decoders: 1 };
    let mut reader = read::open(location, first, source, &options);
    while let Some(piece) = reader.next().await {
        if let read::Piece::Rows(chunk) = piece {
            return Ok(chunk.batch.schema());
        }
    }
    reader.finish().await?;
    Err(Error::Data(format!(
        "source `{}`: {} has no rows to take a schema from; declare `columns`",
        source.name, first.url
    )))
}

/// The schema of a source's declared columns, typed.
fn declared_schema(source: &Source) -> Option<SchemaRef> {
    let columns = source.columns.as_ref()?;
    let fields: Vec<Field> = columns.iter().map(|c| Field::new(&c.name, c.kind.data_type(), true)).collect();
    Some(Arc::new(Schema::new(fields)))
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
