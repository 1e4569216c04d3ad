//! The run manifest: what a run read, computed and published, published by the sink as
//! `{root}/_runs/as_of={as_of}/manifest.json` and read back, typed
//! (`crate::publish::published`), by the runs that follow in the partition and by
//! `fidelis report`.
//!
//! A manifest written by an earlier fidelis may lack a field added since: every field
//! has a default when reading, so old runs stay readable.

use chrono::{DateTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::config::{Severity, Status};
use crate::plan::Plan;
use crate::sources::SourceReport;
use crate::storage::redact;

/// The run manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// The pipeline's name.
    pub pipeline: String,
    /// The pipeline file the run loaded.
    pub pipeline_file: String,
    /// The fidelis version that ran it.
    pub fidelis_version: String,
    /// What the pipeline computes with besides parameters and data (`crate::pipeline_version`);
    /// empty in manifests of fidelis versions before it was recorded.
    pub pipeline_version: String,
    /// The run's id: its start time and process id.
    pub run_id: String,
    /// The run's as_of, `YYYY-MM-DD`.
    pub as_of: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished (RFC 3339, UTC).
    pub finished_at: String,
    /// How long it took.
    pub duration_ms: u128,
    /// The run's memory budget (`--memory-limit`, the container's limit or a share of
    /// physical memory).
    pub memory_limit_bytes: u64,
    /// Peak resident memory of the process, when the platform reports it (Linux).
    pub peak_memory_bytes: Option<u64>,
    /// Bytes written to local disk because the budget could not hold them: operators'
    /// spill files and sources or stage results stored in files.
    pub spilled_bytes: u64,
    /// Every parameter's value, by name.
    pub parameters: IndexMap<String, serde_json::Value>,
    /// What was read from each source, by name.
    pub sources: IndexMap<String, SourceReport>,
    /// The stages run, in pipeline order.
    pub stages: Vec<StageReport>,
    /// The output tables published, by name.
    pub tables: IndexMap<String, TableReport>,
    /// The quarantine tables published, by source.
    pub quarantine: IndexMap<String, TableReport>,
    /// The reports written, by file name.
    pub reports: IndexMap<String, String>,
    /// Metrics that are null because an optional source they need is absent.
    pub metrics_without_data: Vec<String>,
    /// Every data test run, in stage order (`crate::quality`).
    pub tests: Vec<TestResult>,
    /// The run's warnings: the sources' in the pipeline's order, then the stages' in
    /// pipeline order (each one's in the order raised), whatever order jobs finished in.
    pub warnings: Vec<String>,
    /// Tables, quarantine tables (`_quarantine/{source}`) and reports (`reports/{file}`)
    /// of the partition that a run with `--only` kept from earlier runs, with the run that
    /// wrote each; they are listed in `tables`, `quarantine` and `reports` too.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub kept: IndexMap<String, String>,
}

/// What the manifest records about a stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StageReport {
    /// The stage's name.
    pub name: String,
    /// Rows of its result.
    pub rows: u64,
    /// How long it took, counting included.
    pub duration_ms: u128,
    /// Bytes the stage wrote to local disk: its operators' spill files, and its result
    /// when stored in files.
    #[serde(skip_serializing_if = "is_zero")]
    pub spilled_bytes: u64,
    /// Partitions the stage ran on (one by default; more when cores are idle).
    pub partitions: usize,
    /// The stage ran in its memory-frugal form: sort-merge joins and streaming windows,
    /// because what it reads is on disk or large for the budget, or its fast form ran out
    /// of memory.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub memory_frugal: bool,
    /// The stage's declared `counts`: rows matching each named condition.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub counts: IndexMap<String, u64>,
    /// The stage's declared `facts`: each aggregate expression's value over its result
    /// (a number, text, boolean, date as `YYYY-MM-DD`; null for no value).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub facts: IndexMap<String, serde_json::Value>,
}

/// A run's id, recorded in its manifest and the partition's lease: when it started (UTC,
/// to the millisecond) and its process id, then `-{kind}` for what only publishes reports
/// or repairs (`report`, `repair`), e.g. `20261121T101500123Z-4242-report`.
pub fn run_id(started: DateTime<Utc>, kind: Option<&str>) -> String {
    let id = format!("{}-{}", started.format("%Y%m%dT%H%M%S%3fZ"), std::process::id());
    match kind {
        None => id,
        Some(kind) => format!("{id}-{kind}"),
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Manifest {
    /// The manifest of a run of `plan` that started at `started`, before anything ran.
    pub fn new(plan: &Plan<'_>, run_id: &str, started: DateTime<Utc>) -> Self {
        Manifest {
            pipeline: plan.pipeline.name.clone(),
            pipeline_file: plan.pipeline.file.display().to_string(),
            fidelis_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id: run_id.to_string(),
            as_of: plan.as_of.to_string(),
            started_at: started.to_rfc3339_opts(SecondsFormat::Millis, true),
            parameters: plan.params.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ..Manifest::default()
        }
    }

    /// How this run's pipeline version and parameters differ from those of `plan` (whose
    /// pipeline version is `version`); empty when they are the same. Credentials in URLs
    /// are not compared: they do not change what a run computes, and manifests may not
    /// record them.
    pub fn differences(&self, plan: &Plan<'_>, version: &str) -> Vec<String> {
        let parameters: IndexMap<String, serde_json::Value> =
            plan.params.iter().map(|(name, value)| (name.clone(), value.to_json())).collect();
        self.compare(version, &parameters)
    }

    fn compare(&self, version: &str, parameters: &IndexMap<String, serde_json::Value>) -> Vec<String> {
        let mut differences = Vec::new();
        match self.pipeline_version.as_str() {
            "" => differences.push("no pipeline version recorded (an older fidelis)".to_string()),
            published if published == version => {}
            published => differences.push(format!("pipeline version {published}, now {version}")),
        }
        let shown = |value: Option<&serde_json::Value>| match value {
            Some(serde_json::Value::String(text)) => redact(text),
            Some(other) => other.to_string(),
            None => "(none)".to_string(),
        };
        let names = self.parameters.keys().chain(parameters.keys().filter(|name| !self.parameters.contains_key(*name)));
        for name in names {
            let (published, now) = (shown(self.parameters.get(name)), shown(parameters.get(name)));
            if published != now {
                differences.push(format!("`{name}` {published}, now {now}"));
            }
        }
        differences
    }
}

/// What the manifest records about a written table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableReport {
    /// The partition's folder.
    pub url: String,
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
}

/// What the manifest records about a test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    pub stage: String,
    /// `unique`, `not_null`, `accepted_values`, `relationships`, `accepted_range` or `expression`.
    pub kind: String,
    /// The stage's columns it checks (none for an `expression`).
    pub columns: Vec<String>,
    pub severity: Severity,
    pub status: Status,
    /// Rows that fail the test; for `unique`, every row whose key another row has too.
    pub failing_rows: u64,
    /// Rows of the stage's result, what percentages are of.
    pub rows: u64,
    /// The thresholds applied: `error_if` with severity `error` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_if: Option<String>,
    pub warn_if: String,
    /// The folder of the sample of failing rows, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<String>,
    /// Why a test did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_written_and_missing_fields_take_defaults() {
        let mut manifest = Manifest { pipeline: "loyalty".into(), duration_ms: 9_500, ..Manifest::default() };
        manifest.stages.push(StageReport { name: "rfm".into(), rows: 12, ..StageReport::default() });
        let json = serde_json::to_string(&manifest).expect("JSON");
        let read: Manifest = serde_json::from_str(&json).expect("reads back");
        assert_eq!((read.pipeline.as_str(), read.duration_ms, read.stages[0].rows), ("loyalty", 9_500, 12));
        let old: Manifest = serde_json::from_str(r#"{"pipeline": "loyalty", "run_id": "r1"}"#).expect("reads");
        assert_eq!((old.run_id.as_str(), old.warnings.len(), old.peak_memory_bytes), ("r1", 0, None));
    }

    fn published(version: &str, parameters: serde_json::Value) -> Manifest {
        Manifest { pipeline_version: version.into(), parameters: parameters_of(parameters), ..Manifest::default() }
    }

    fn parameters_of(value: serde_json::Value) -> IndexMap<String, serde_json::Value> {
        serde_json::from_value(value).expect("parameters")
    }

    #[test]
    fn the_same_version_and_parameters_have_no_differences_credentials_aside() {
        let run = published("abc", serde_json::json!({"input": "s3://bucket/raw", "margin": 1.0}));
        let now = parameters_of(serde_json::json!({"input": "s3://key:secret@bucket/raw", "margin": 1.0}));
        assert_eq!(run.compare("abc", &now), Vec::<String>::new());
    }

    #[test]
    fn differences_name_the_version_and_each_parameter() {
        let run = published("abc", serde_json::json!({"margin": 1.0, "old": "x"}));
        let now = parameters_of(serde_json::json!({"margin": 0.5, "new": 3}));
        assert_eq!(
            run.compare("def", &now),
            ["pipeline version abc, now def", "`margin` 1.0, now 0.5", "`old` x, now (none)", "`new` (none), now 3"]
        );
        assert_eq!(
            published("", serde_json::json!({})).compare("def", &IndexMap::new()),
            ["no pipeline version recorded (an older fidelis)"]
        );
    }
}
