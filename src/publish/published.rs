//! What fidelis reads back of a published partition: the manifest of the run that
//! published it, when `_SUCCESS` says the partition is complete.

use chrono::NaiveDate;
use indexmap::IndexMap;
use object_store::ObjectStoreExt;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::publish::journal;
use crate::sinks::TableReport;
use crate::storage::{Location, redact};

/// `{root}/_runs/as_of={as_of}`: the partition's manifest, `_SUCCESS`, lease and journals.
pub fn runs_folder(root: &Location, as_of: NaiveDate) -> Location {
    root.child("_runs").child(&format!("as_of={as_of}"))
}

/// The manifest's name in the runs folder.
pub const MANIFEST: &str = "manifest.json";

/// The parts of a published manifest that later runs act on.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishedRun {
    pub run_id: String,
    /// Absent in manifests of fidelis versions before the pipeline version was recorded.
    #[serde(default)]
    pub pipeline_version: Option<String>,
    #[serde(default)]
    pub parameters: IndexMap<String, serde_json::Value>,
    #[serde(default)]
    pub tables: IndexMap<String, TableReport>,
    #[serde(default)]
    pub quarantine: IndexMap<String, TableReport>,
    #[serde(default)]
    pub reports: IndexMap<String, String>,
    #[serde(default)]
    pub kept: IndexMap<String, String>,
    /// What the run loaded of each source.
    #[serde(default)]
    pub sources: IndexMap<String, PublishedSource>,
}

/// What a published manifest says about a source.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishedSource {
    pub rows_loaded: u64,
}

impl PublishedRun {
    /// The run published for `as_of` under `root`, if the partition is complete.
    pub async fn read(root: &Location, as_of: NaiveDate) -> Result<Option<PublishedRun>> {
        let runs = runs_folder(root, as_of);
        let success = journal::success(&runs);
        match success.store.head(&success.path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(Error::runtime(format!("looking for {success}"), error)),
        }
        let manifest = runs.child(MANIFEST);
        let bytes = match manifest.store.get(&manifest.path).await {
            Ok(found) => found.bytes().await,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => Err(error),
        }
        .map_err(|e| Error::runtime(format!("reading {manifest}"), e))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Runtime(format!("{manifest} is not a run manifest fidelis wrote: {e}")))
    }

    /// The latest complete partition under `root` dated before `as_of`: its as_of and the
    /// run published there.
    pub async fn latest_before(root: &Location, as_of: NaiveDate) -> Result<Option<(NaiveDate, PublishedRun)>> {
        let runs = root.child("_runs");
        let listed = match runs.store.list_with_delimiter(Some(&runs.path)).await {
            Ok(listed) => listed.common_prefixes,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(error) => return Err(Error::runtime(format!("listing {runs}"), error)),
        };
        let mut earlier: Vec<NaiveDate> = listed
            .iter()
            .filter_map(|folder| folder.filename()?.strip_prefix("as_of=")?.parse().ok())
            .filter(|date| *date < as_of)
            .collect();
        earlier.sort_unstable_by(|a, b| b.cmp(a));
        for date in earlier {
            if let Some(run) = PublishedRun::read(root, date).await? {
                return Ok(Some((date, run)));
            }
        }
        Ok(None)
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
        match &self.pipeline_version {
            Some(published) if published == version => {}
            Some(published) => differences.push(format!("pipeline version {published}, now {version}")),
            None => differences.push("no pipeline version recorded (an older fidelis)".to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn published(version: Option<&str>, parameters: serde_json::Value) -> PublishedRun {
        serde_json::from_value(serde_json::json!({
            "run_id": "r1",
            "pipeline_version": version,
            "parameters": parameters,
        }))
        .unwrap()
    }

    fn parameters(value: serde_json::Value) -> IndexMap<String, serde_json::Value> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_same_version_and_parameters_have_no_differences_credentials_aside() {
        let run = published(Some("abc"), serde_json::json!({"input": "s3://bucket/raw", "margin": 1.0}));
        let now = parameters(serde_json::json!({"input": "s3://key:secret@bucket/raw", "margin": 1.0}));
        assert_eq!(run.compare("abc", &now), Vec::<String>::new());
    }

    #[test]
    fn differences_name_the_version_and_each_parameter() {
        let run = published(Some("abc"), serde_json::json!({"margin": 1.0, "old": "x"}));
        let now = parameters(serde_json::json!({"margin": 0.5, "new": 3}));
        assert_eq!(
            run.compare("def", &now),
            ["pipeline version abc, now def", "`margin` 1.0, now 0.5", "`old` x, now (none)", "`new` (none), now 3"]
        );
        assert_eq!(
            published(None, serde_json::json!({})).compare("def", &IndexMap::new()),
            ["no pipeline version recorded (an older fidelis)"]
        );
    }
}
