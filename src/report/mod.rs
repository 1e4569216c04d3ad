//! The pipeline's `reports:`, rendered over the tables they declare.
//!
//! The report is a renderer, as a BI tool is over dbt marts: SQL computes every figure
//! (the report marts, `sql/marts/report_*.sql`), templates lay the tables out, Rust
//! draws. A report is a Tera template from the pipeline's `templates_dir`, rendered over
//! the rows of the tables its `reports:` entry declares ([`context`], [`rows`]), the
//! run's parameters and its manifest. Templates format values with locale-aware filters
//! ([`filters`], [`format`]) and draw charts as inline SVG by calling chart functions
//! on a table's rows ([`chart_functions`], [`charts`]); the locale and currency are the
//! pipeline parameters `locale` and `currency`.
//!
//! [`render`] only renders: the caller reads the tables ([`read_tables`]) from the run's
//! staged files or from a published partition, and publishes the files.

mod chart_functions;
mod charts;
mod context;
mod escape;
mod filters;
mod format;
mod rows;
mod templates;

use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use indexmap::IndexMap;

use crate::config::{ParamValue, Report};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::sinks::read_if_present;
use crate::storage::Location;
use context::{Context, Formatting};
use format::Locale;
/// A table's rows as JSON values, as the templates (and the manifest's stage facts) see them.
pub(crate) use rows::rows;
use templates::Templates;

/// The parameter that picks the reports' locale (default `en-US`).
const LOCALE: &str = "locale";
/// The parameter that names the reports' currency, an ISO 4217 code (default `EUR`).
const CURRENCY: &str = "currency";

/// Tables by name, as a run staged them or as read back from their partitions.
pub type Tables = IndexMap<String, Vec<RecordBatch>>;

/// Everything a render needs.
pub struct ReportRequest<'a> {
    /// The run's parameters; `locale` and `currency` decide the formatting.
    pub params: &'a IndexMap<String, ParamValue>,
    /// The run manifest: sources, run id, warnings.
    pub manifest: &'a Manifest,
    /// The tables the reports declare; any may be missing (its stage was skipped): the
    /// templates then see it without rows.
    pub tables: &'a Tables,
    /// The folder holding the templates.
    pub templates_dir: &'a Path,
    /// The reports to render: template, output path, tables.
    pub reports: &'a [Report],
}

/// A rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// The path relative to `{root}/reports/as_of={as_of}/`, as given in `reports:`.
    pub path: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// Renders every report of `request`. Template problems (a syntax error, an unknown
/// variable, filter or function) are configuration errors naming the template with
/// Tera's message; a bad `locale` or `currency` is a usage error.
pub fn render(request: &ReportRequest<'_>) -> Result<Vec<RenderedFile>> {
    if request.reports.is_empty() {
        return Ok(Vec::new());
    }
    let (locale, currency) = formatting(request.params)?;
    let templates = Templates::load(request.templates_dir, locale, &currency)?;
    let formatting = Formatting::new(locale, &currency);
    let params = request.params.iter().map(|(name, value)| (name.clone(), value.to_json())).collect();
    let mut rows = IndexMap::new();
    for name in request.reports.iter().flat_map(|r| &r.tables) {
        if let Some(batches) = request.tables.get(name).filter(|_| !rows.contains_key(name)) {
            rows.insert(name.clone(), rows::rows(name, batches)?);
        }
    }
    request
        .reports
        .iter()
        .map(|report| {
            let context = Context::new(report, &formatting, &params, request.manifest, &rows);
            let context = tera::Context::from_serialize(&context)
                .map_err(|e| Error::runtime("building the report context", e))?;
            let text = templates.render(report, &context)?;
            Ok(RenderedFile { path: report.path.clone(), bytes: text.into_bytes() })
        })
        .collect()
}

/// Checks what can be checked of `reports` before a run: the `locale` and `currency`
/// parameters are valid, every template parses, and each report's templates read only
/// the tables it declares. `pipeline_file` is named in the errors.
pub fn check(
    reports: &[Report],
    templates_dir: &Path,
    params: &IndexMap<String, ParamValue>,
    pipeline_file: &Path,
) -> Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let (locale, currency) = formatting(params)?;
    Templates::load(templates_dir, locale, &currency)?.check_tables(reports, pipeline_file)
}

/// The locale and the (upper-case) currency code the parameters ask for.
fn formatting(params: &IndexMap<String, ParamValue>) -> Result<(Locale, String)> {
    let text = |name: &str| match params.get(name) {
        Some(ParamValue::String(value)) => Some(value.as_str()),
        _ => None,
    };
    let locale: Locale = text(LOCALE)
        .unwrap_or("en-US")
        .parse()
        .map_err(|e| Error::Usage(format!("parameter `{LOCALE}`: {e} (--set {LOCALE}=…)")))?;
    let currency = text(CURRENCY).unwrap_or("EUR").trim();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::Usage(format!(
            "parameter `{CURRENCY}`: {currency:?} is not an ISO 4217 code: write three letters, e.g. --set {CURRENCY}=EUR"
        )));
    }
    Ok((locale, currency.to_ascii_uppercase()))
}

/// Reads the tables `reports` declare (each once) from their Parquet files, `file(table)`:
/// the run's staged files, or a published partition. A table without a file (its stage
/// was skipped) is left out.
pub async fn read_tables(reports: &[Report], file: impl Fn(&str) -> Location) -> Result<Tables> {
    let mut tables = Tables::new();
    for name in reports.iter().flat_map(|r| &r.tables) {
        if tables.contains_key(name) {
            continue;
        }
        let location = file(name);
        let Some(bytes) = read_if_present(&location).await? else { continue };
        // Decoding is CPU work: off the async workers, like every other decode.
        let decoded = tokio::task::spawn_blocking(move || decode(bytes))
            .await
            .map_err(|e| Error::runtime(format!("decoding {location}"), e))?;
        let batches = decoded.map_err(|e| Error::Data(format!("{location} is not a readable Parquet file: {e}")))?;
        tables.insert(name.clone(), batches);
    }
    Ok(tables)
}

/// The record batches of a Parquet file's `bytes`.
fn decode(bytes: bytes::Bytes) -> datafusion::parquet::errors::Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}
