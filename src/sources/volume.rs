//! A source's volume, checked when it has loaded: its rows loaded against `min_rows`, and
//! against the rows it loaded in the run of the previous as_of, to catch the half-empty
//! (or doubled) extract that would otherwise give a plausible but wrong report.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Baseline, Findings};
use crate::config::{Source, Status, Volume};
use crate::error::Result;
use crate::plan::Plan;
use crate::publish::published;
use crate::storage::Location;

/// The run of the previous as_of: the latest earlier partition of the output root that is
/// complete (`_SUCCESS` and its manifest).
#[derive(Debug, Clone)]
pub struct PreviousRun {
    pub as_of: NaiveDate,
    /// Rows each source loaded.
    pub rows_loaded: Vec<(String, u64)>,
}

impl PreviousRun {
    /// The previous as_of's run under `root`, read when a source of `plan` compares its
    /// volume with it.
    pub async fn read(plan: &Plan<'_>, root: &Location) -> Result<Option<PreviousRun>> {
        let compares =
            |volume: &Volume| volume.warn_if_change_exceeds.is_some() || volume.error_if_change_exceeds.is_some();
        if !plan.sources.iter().any(|source| source.volume.as_ref().is_some_and(compares)) {
            return Ok(None);
        }
        let previous = published::latest_before(root, plan.as_of).await?;
        Ok(previous.map(|(as_of, run)| PreviousRun {
            as_of,
            rows_loaded: run.sources.into_iter().map(|(name, source)| (name, source.rows_loaded)).collect(),
        }))
    }
}

/// What the manifest records about a source's volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeReport {
    /// Rows loaded.
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u64>,
    /// The as_of of the run compared with, and the rows the source loaded then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_as_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_rows: Option<u64>,
    /// (rows − previous_rows) / previous_rows: -0.5 is half as many rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_if_change_exceeds: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_if_change_exceeds: Option<String>,
    pub status: Status,
}

/// Checks the `volume` of `source`, which loaded `rows` rows.
pub(super) fn check(
    source: &Source,
    volume: &Volume,
    rows: u64,
    baseline: &Baseline,
    findings: &mut Findings,
) -> VolumeReport {
    let name = &source.name;
    let compared = baseline.previous.as_ref().and_then(|previous| {
        let (_, rows) = previous.rows_loaded.iter().find(|(source, _)| source == name)?;
        Some((previous.as_of, *rows))
    });
    // A change from no rows is not a percentage: such a run is not compared.
    let change =
        compared.filter(|(_, before)| *before > 0).map(|(_, before)| (rows as f64 - before as f64) / before as f64);
    let mut report = VolumeReport {
        rows,
        min_rows: volume.min_rows,
        previous_as_of: compared.map(|(as_of, _)| as_of.to_string()),
        previous_rows: compared.map(|(_, before)| before),
        change,
        warn_if_change_exceeds: volume.warn_if_change_exceeds.map(|p| p.to_string()),
        error_if_change_exceeds: volume.error_if_change_exceeds.map(|p| p.to_string()),
        status: Status::Pass,
    };
    if let Some(min_rows) = volume.min_rows.filter(|min_rows| rows < *min_rows) {
        report.status = Status::Error;
        findings.errors.push(format!(
            "source `{name}` loaded {rows} rows, fewer than its `min_rows: {min_rows}`; check that the input files are complete"
        ));
    }
    let (Some(change), Some((as_of, before))) = (change, compared) else { return report };
    let changed = format!(
        "source `{name}` loaded {rows} rows, {:.1}% {} than the {before} of the run as of {as_of}",
        change.abs() * 100.0,
        if change < 0.0 { "fewer" } else { "more" }
    );
    if let Some(limit) = volume.error_if_change_exceeds.filter(|limit| change.abs() > limit.fraction()) {
        report.status = Status::Error;
        findings.errors.push(format!(
            "{changed} (error_if_change_exceeds: {limit}); check that the input is complete and not duplicated, or raise the threshold if the change is real"
        ));
    } else if let Some(limit) = volume.warn_if_change_exceeds.filter(|limit| change.abs() > limit.fraction()) {
        if report.status == Status::Pass {
            report.status = Status::Warn;
        }
        findings.warnings.push(format!("{changed} (warn_if_change_exceeds: {limit})"));
    }
    report
}
