//! The run summary for schedulers: `--result-json PATH` writes it when the command
//! ends, whether the run published or failed. Point it at `/airflow/xcom/return.json`
//! and Airflow's KubernetesPodOperator (`do_xcom_push=True`) hands it to later tasks.
//!
//! A run gives one [`RunSummary`]; a backfill (`--from`/`--to`) a [`BackfillSummary`]
//! with one per date.

use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use indexmap::IndexMap;
use serde::Serialize;

use crate::error::{Error, Result, exit_code};
use crate::manifest::Manifest;

/// What became of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// `published`, `skipped` (`--skip-existing`), `failed`, or `not_run` (a backfill stopped first).
    pub status: &'static str,
    pub exit_code: i32,
    pub pipeline: Option<String>,
    pub as_of: Option<String>,
    pub run_id: Option<String>,
    /// Published tables (kept ones included): rows and partition folder.
    pub tables: IndexMap<String, TableSummary>,
    /// Published reports: file name → URL.
    pub reports: IndexMap<String, String>,
    pub warnings: Vec<String>,
    /// The error of a failed run, as printed.
    pub error: Option<String>,
}

/// A published table, as the summary shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TableSummary {
    pub rows: u64,
    pub url: String,
}

impl RunSummary {
    fn empty(status: &'static str, exit_code: i32, pipeline: Option<&str>, as_of: Option<NaiveDate>) -> Self {
        RunSummary {
            status,
            exit_code,
            pipeline: pipeline.map(str::to_string),
            as_of: as_of.map(|date| date.to_string()),
            run_id: None,
            tables: IndexMap::new(),
            reports: IndexMap::new(),
            warnings: Vec::new(),
            error: None,
        }
    }

    /// A run that published `manifest`.
    pub fn published(manifest: &Manifest) -> Self {
        RunSummary {
            run_id: Some(manifest.run_id.clone()),
            as_of: Some(manifest.as_of.clone()),
            tables: manifest
                .tables
                .iter()
                .map(|(name, table)| (name.clone(), TableSummary { rows: table.rows, url: table.url.clone() }))
                .collect(),
            reports: manifest.reports.clone(),
            warnings: manifest.warnings.clone(),
            ..Self::empty("published", exit_code::OK, Some(&manifest.pipeline), None)
        }
    }

    /// A date of a backfill skipped because run `run_id` published it already.
    pub fn skipped(pipeline: &str, as_of: NaiveDate, run_id: &str) -> Self {
        RunSummary {
            run_id: Some(run_id.to_string()),
            ..Self::empty("skipped", exit_code::OK, Some(pipeline), Some(as_of))
        }
    }

    /// A run that failed with `error` (`as_of` when known: the pipeline may not have loaded).
    pub fn failed(pipeline: Option<&str>, as_of: Option<NaiveDate>, error: &Error) -> Self {
        RunSummary { error: Some(error.to_string()), ..Self::empty("failed", error.exit_code(), pipeline, as_of) }
    }

    /// A date of a backfill that was not run because the backfill was stopped first.
    pub fn not_run(pipeline: &str, as_of: NaiveDate) -> Self {
        Self::empty("not_run", exit_code::OK, Some(pipeline), Some(as_of))
    }
}

/// What became of a backfill.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillSummary {
    /// `succeeded` when every date was published or skipped, else `failed`.
    pub status: &'static str,
    /// The worst exit code of the dates (`crate::error::exit_code::worst`).
    pub exit_code: i32,
    pub pipeline: String,
    pub runs: Vec<RunSummary>,
}

impl BackfillSummary {
    /// The summary of the runs of a backfill, in date order.
    pub fn new(pipeline: &str, runs: Vec<RunSummary>) -> Self {
        let exit_code = exit_code::worst(runs.iter().map(|run| run.exit_code));
        let status = match exit_code == exit_code::OK && runs.iter().all(|run| run.status != "not_run") {
            true => "succeeded",
            false => "failed",
        };
        BackfillSummary { status, exit_code, pipeline: pipeline.to_string(), runs }
    }
}

impl fmt::Display for BackfillSummary {
    /// The per-date summary printed at the end of a backfill.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |status: &str| self.runs.iter().filter(|run| run.status == status).count();
        writeln!(
            f,
            "backfill of {}: {} published, {} skipped, {} failed, {} not run (exit code {})",
            self.pipeline,
            count("published"),
            count("skipped"),
            count("failed"),
            count("not_run"),
            self.exit_code
        )?;
        for run in &self.runs {
            let run_id = run.run_id.as_deref().unwrap_or_default();
            let detail = match run.status {
                "published" => {
                    let tables = run.tables.len();
                    format!("{tables} table{}, run {run_id}", if tables == 1 { "" } else { "s" })
                }
                "skipped" => format!("published by run {run_id} with the same pipeline version and parameters"),
                "failed" => {
                    let error = run.error.as_deref().and_then(|error| error.lines().next()).unwrap_or_default();
                    format!("exit {}: {error}", run.exit_code)
                }
                _ => "the backfill was stopped before this date".to_string(),
            };
            writeln!(f, "  {}  {:<9}  {detail}", run.as_of.as_deref().unwrap_or_default(), run.status)?;
        }
        Ok(())
    }
}

/// Writes `summary` as JSON to the local file `path`.
pub fn write(path: &Path, summary: &impl Serialize) -> Result<()> {
    let failed = |e: &dyn std::fmt::Display| Error::runtime(format!("writing the result JSON {}", path.display()), e);
    let json = serde_json::to_vec_pretty(summary).map_err(|e| failed(&e))?;
    if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| failed(&e))?;
    }
    std::fs::write(path, json).map_err(|e| failed(&e))
}
