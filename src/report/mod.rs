//! The monthly executive KPI report: the pipeline's `reports:` rendered from its
//! output tables.
//!
//! A report is a Tera template from the pipeline's `templates_dir`, rendered over a
//! context computed from the run's output tables and manifest ([`context`]):
//! headline figures of the reported month with their changes, trends, segments,
//! loyalty programme economics, data coverage, and charts drawn in Rust as inline
//! SVG ([`charts`], [`figures`]). Templates format values with locale-aware filters
//! ([`filters`], [`format`]); the locale and currency come from the pipeline's
//! `locale` and `currency` parameters.
//!
//! [`render`] only renders: the caller publishes the files with the run (or from
//! tables already published, read with [`read_published`]).

pub mod charts;
mod columns;
mod context;
mod figures;
pub mod filters;
pub mod format;
mod inputs;
mod published;
mod templates;

use std::path::{Component, Path};

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;

use crate::config::Report;
use crate::error::{Error, Result};
use format::Locale;
use templates::Templates;

/// Output tables by name, as computed by a run or read back from its partitions.
pub type Tables = indexmap::IndexMap<String, Vec<RecordBatch>>;

/// Everything a render needs.
pub struct ReportRequest<'a> {
    /// The pipeline's name, shown in the report.
    pub pipeline_name: &'a str,
    /// The run's as_of.
    pub as_of: NaiveDate,
    /// The pipeline parameter `locale`, e.g. `"en-US"`.
    pub locale: &'a str,
    /// The pipeline parameter `currency`, an ISO 4217 code such as `"EUR"`.
    pub currency: &'a str,
    /// The run manifest (`crate::run::Manifest` as JSON): sources, parameters, run id, warnings.
    pub manifest: &'a serde_json::Value,
    /// The output tables by name; any may be missing or empty (its figures say "no data").
    pub tables: &'a Tables,
    /// The folder holding the templates.
    pub templates_dir: &'a Path,
    /// The reports to render: template and output path.
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
/// variable or filter) are configuration errors naming the template with Tera's
/// message; a bad `locale` or `currency` is a usage error.
pub fn render(request: &ReportRequest<'_>) -> Result<Vec<RenderedFile>> {
    if request.reports.is_empty() {
        return Ok(Vec::new());
    }
    let pipeline_file = request.manifest["pipeline_file"].as_str().unwrap_or(request.pipeline_name);
    for report in request.reports {
        check_output_path(pipeline_file, &report.path)?;
    }
    let locale: Locale =
        request.locale.parse().map_err(|e| Error::Usage(format!("parameter `locale`: {e} (--set locale=…)")))?;
    let currency = request.currency.trim();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::Usage(format!(
            "parameter `currency`: {currency:?} is not an ISO 4217 code: write three letters, e.g. --set currency=EUR"
        )));
    }
    let templates = Templates::load(request.templates_dir, locale, currency)?;
    let context = context::build(request, locale)?;
    let context =
        tera::Context::from_serialize(&context).map_err(|e| Error::runtime("building the report context", e))?;
    request
        .reports
        .iter()
        .map(|report| {
            let text = templates.render(report, &context)?;
            Ok(RenderedFile { path: report.path.clone(), bytes: text.into_bytes() })
        })
        .collect()
}

/// A report's `path` must stay inside the report folder: relative, no `..`.
fn check_output_path(pipeline_file: &str, path: &str) -> Result<()> {
    let relative = Path::new(path);
    let inside = !path.is_empty() && relative.components().all(|c| matches!(c, Component::Normal(_)));
    if inside {
        Ok(())
    } else {
        Err(Error::config(
            pipeline_file,
            format!("report path `{path}` leaves the report folder"),
            "write a file name (or a relative path without `.` or `..` segments) such as `report.html`",
        ))
    }
}

/// What the report needs of output table `name`: `batches` with only the columns it
/// reads (a missing one is left for the report to name), or `None` when it reads
/// nothing of the table.
pub fn needed(name: &str, batches: &[RecordBatch]) -> Option<Vec<RecordBatch>> {
    let (_, columns) = inputs::TABLES_READ.iter().find(|(table, _)| *table == name)?;
    let Some(columns) = columns else {
        return Some(batches.to_vec());
    };
    let projected = batches
        .iter()
        .map(|batch| {
            let schema = batch.schema();
            let indices: Vec<usize> = columns.iter().filter_map(|c| schema.index_of(c).ok()).collect();
            batch.project(&indices).expect("indices come from the batch's schema")
        })
        .collect();
    Some(projected)
}

/// Reads what the report needs of the published partitions
/// `{root}/{table}/as_of={as_of}/part-00000.parquet` of `tables` (missing ones are left
/// out) and the manifest `{root}/_runs/as_of={as_of}/manifest.json`, which must exist.
pub async fn read_published(
    root: &crate::storage::Location,
    tables: &[String],
    as_of: NaiveDate,
) -> Result<(Tables, serde_json::Value)> {
    published::read(root, tables, as_of).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_paths_stay_in_the_report_folder() {
        assert!(check_output_path("p.yaml", "report.html").is_ok());
        assert!(check_output_path("p.yaml", "charts/retention.svg").is_ok());
        for bad in ["", "../report.html", "/tmp/report.html", "a/../../b", "./report.html"] {
            let error = check_output_path("p.yaml", bad).expect_err(bad);
            assert!(error.to_string().contains("leaves the report folder"), "{error}");
        }
    }
}
