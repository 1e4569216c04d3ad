//! What a run with `--only` keeps of the partition it republishes, and what a full run
//! removes of it: either way the partition published holds exactly what its manifest
//! lists.
//!
//! A partial run publishes its tables beside those of the run published in the
//! partition, which it keeps: they stay listed in the new manifest's `tables`,
//! `quarantine` and `reports`, and `kept` names the run that wrote each. They must have
//! been computed with the same pipeline version and parameters, or one manifest would
//! describe two configurations: [`check`] refuses such a run before it computes
//! anything. With no complete partition published, a partial run's partition holds its
//! own tables only. A full run keeps nothing: partitions of the published run that it
//! does not write again (a table no longer in `outputs`, the quarantine of a source
//! that has none now) are removed.

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::plan::Plan;

/// Fails, before a partial run of `plan` computes anything, if the run published in its
/// partition used another pipeline version (`version` is this run's) or other parameters.
pub fn check(published: Option<&Manifest>, plan: &Plan<'_>, version: &str) -> Result<()> {
    let Some(published) = published else { return Ok(()) };
    let differences = published.differences(plan, version);
    if differences.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "--only would publish its tables into partition as_of={} beside the tables of run {}, which was \
         computed differently ({}); run the whole pipeline, or write this run elsewhere (--set output=…)",
        plan.as_of,
        published.run_id,
        differences.join("; ")
    )))
}

/// Completes `manifest` with what a partial run keeps of `published` (`planned`: the
/// tables the run set out to write), or, for a full run, returns the partitions of
/// `published` it leaves behind, to be removed (table paths such as `rfm`,
/// `_quarantine/transactions`, `reports`).
pub fn carry_over(
    published: Option<&Manifest>,
    partial: bool,
    planned: &[String],
    manifest: &mut Manifest,
) -> Vec<String> {
    let Some(published) = published else { return Vec::new() };
    let written_by = |name: &str| published.kept.get(name).cloned().unwrap_or_else(|| published.run_id.clone());
    if !partial {
        let mut gone: Vec<String> =
            published.tables.keys().filter(|t| !manifest.tables.contains_key(*t)).cloned().collect();
        gone.extend(
            published
                .quarantine
                .keys()
                .filter(|s| !manifest.quarantine.contains_key(*s))
                .map(|s| format!("_quarantine/{s}")),
        );
        if manifest.reports.is_empty() && !published.reports.is_empty() {
            gone.push("reports".to_string());
        }
        return gone;
    }
    for (table, report) in published.tables.iter().filter(|(t, _)| !planned.contains(t)) {
        manifest.kept.insert(table.clone(), written_by(table));
        manifest.tables.insert(table.clone(), report.clone());
    }
    // Sources this run did not load keep their quarantine.
    for (source, report) in published.quarantine.iter().filter(|(s, _)| !manifest.sources.contains_key(*s)) {
        let name = format!("_quarantine/{source}");
        manifest.kept.insert(name.clone(), written_by(&name));
        manifest.quarantine.insert(source.clone(), report.clone());
    }
    // Reports are rendered by full runs only.
    if manifest.reports.is_empty() {
        for (path, url) in &published.reports {
            let name = format!("reports/{path}");
            manifest.kept.insert(name.clone(), written_by(&name));
            manifest.reports.insert(path.clone(), url.clone());
        }
    }
    Vec::new()
}
