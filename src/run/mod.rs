//! The entry points that run a pipeline, in parts a reader can name: [`run`] binds the
//! pipeline, takes the partition's lease, has the [`executor`] walk the schedule (load
//! sources, run stages in one DataFusion [`session`] within the run's memory budget,
//! stage the output tables and render the reports) and publishes what it staged
//! atomically with the manifest (`crate::manifest`); [`report`] renders the reports
//! again from a published partition; [`validate`] goes as far as planning without
//! reading or writing data.

mod executor;
mod joins;
mod session;
mod validate;

use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use tracing::info;

use crate::cluster;
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::lineage::RunLineage;
use crate::manifest::{Manifest, run_id};
use crate::memory::{self, MemoryBudget};
use crate::pipeline_version::pipeline_version;
use crate::plan::{Overrides, Plan, bind};
use crate::publish::{kept, layout};
use crate::report::{self, RenderedFile, ReportRequest, Tables};
use crate::results::Results;
use crate::signals;
use crate::sinks::{Sink, output_root};
use crate::sources;
use crate::storage::{Location, Storage};
use crate::threads;

pub use session::{session, session_on};
pub use validate::{Validation, validate};

/// The process's peak resident set size so far (`VmHWM` in `/proc/self/status`).
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs `pipeline` and publishes its outputs, holding the partition's lease throughout;
/// returns the manifest written.
pub async fn run(pipeline: &Pipeline, overrides: &Overrides) -> Result<Manifest> {
    let started = Utc::now();
    let clock = Instant::now();
    let plan = bind(pipeline, overrides)?;
    let storage = Storage::new();
    let root = output_root(&plan, &storage)?;
    let version = pipeline_version(&plan)?;
    let run_id = run_id(started, None);
    let budget = MemoryBudget::resolve(overrides.memory_limit);
    let spill_dir = overrides.spill_dir.clone().unwrap_or_else(memory::default_spill_dir);
    let cluster = overrides.cluster.as_ref().map(|run| run.url.to_string());
    info!(
        pipeline = %pipeline.name, as_of = %plan.as_of, output = %root, run_id = %run_id,
        memory_limit = %budget, spill_dir = %spill_dir.display(), cluster, "run started"
    );
    let (sink, _) = Sink::open(root.clone(), plan.as_of, &run_id, &overrides.lease).await?;
    let lineage = RunLineage::start(&plan, &storage, &run_id).await;
    let published = async {
        let partial = !plan.runs_everything();
        if partial {
            kept::check(sink.published(), &plan, &version)?;
        }
        // The run's spill folder (DataFusion's spill files, stored results, spooled inputs)
        // is removed once the stages are done, on success and failure alike.
        let results = Results::new(budget, &spill_dir, threads::budget(overrides.threads))?;
        // On a cluster, sources and stage results live in the run's work location, which
        // goes with its staging area.
        let results = match &overrides.cluster {
            Some(run) => results.on_cluster(cluster::connect(run, sink.work()).await?),
            None => results,
        };
        let previous = sources::PreviousRun::read(&plan, &root).await?;
        // A stop signal or the loss of the lease drops the run's work (its queries with it).
        let executed = tokio::select! {
            staged = executor::execute(&plan, &storage, &sink, &results, &run_id, started, previous) => staged,
            error = signals::stopped() => Err(error),
            error = sink.lease_lost() => Err(error),
        };
        results.close().await;
        let (files, mut stale, mut manifest) = executed?;
        manifest.pipeline_version = version;
        let gone = kept::carry_over(sink.published(), partial, &plan.tables, &mut manifest);
        stale.extend(gone.iter().map(|table| sink.partition(table)));
        manifest.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        manifest.duration_ms = clock.elapsed().as_millis();
        manifest.peak_memory_bytes = peak_memory_bytes();
        sink.publish(&files, &stale, Some(&manifest)).await?;
        Ok(manifest)
    }
    .await;
    sink.close().await;
    match published {
        Ok(manifest) => {
            completed(&manifest, lineage, &root).await;
            Ok(manifest)
        }
        Err(error) => {
            lineage.fail(&error).await;
            Err(error)
        }
    }
}

/// Sends the lineage event and logs that the run of `manifest` published under `root`.
async fn completed(manifest: &Manifest, lineage: RunLineage, root: &Location) {
    // Kept tables (`--only`) are not this run's outputs.
    let kept = |name: String| manifest.kept.contains_key(&name);
    let tables = manifest.tables.iter().filter(|(table, _)| !kept(table.to_string()));
    let quarantine = manifest.quarantine.iter().filter(|(source, _)| !kept(format!("_quarantine/{source}")));
    lineage.complete(&manifest.sources, tables.chain(quarantine).map(|(_, written)| written)).await;
    info!(
        tables = manifest.tables.len(),
        duration_ms = manifest.duration_ms as u64,
        memory_limit_mb = manifest.memory_limit_bytes >> 20,
        peak_memory_mb = manifest.peak_memory_bytes.map(|b| b >> 20),
        spilled_mb = manifest.spilled_bytes >> 20,
        output = %root,
        "run published"
    );
}

fn render_reports(plan: &Plan<'_>, tables: &Tables, manifest: &Manifest) -> Result<Vec<RenderedFile>> {
    report::render(&ReportRequest {
        params: &plan.params,
        manifest,
        tables,
        templates_dir: &plan.pipeline.templates_dir,
        reports: &plan.pipeline.reports,
    })
}

/// `fidelis report`: renders the reports again from the tables published for as_of,
/// without recomputing them, and replaces the published reports, holding the
/// partition's lease.
pub async fn report(pipeline: &Pipeline, overrides: &Overrides) -> Result<Vec<String>> {
    let plan = bind(pipeline, overrides)?;
    let storage = Storage::new();
    let root = output_root(&plan, &storage)?;
    if pipeline.reports.is_empty() {
        return Err(Error::config(
            pipeline.file.display().to_string(),
            "the pipeline has no `reports`",
            "add `reports: [{template: report.html.tera, path: report.html, tables: [...]}]`",
        ));
    }
    let run_id = run_id(Utc::now(), Some("report"));
    let (sink, _) = Sink::open(root.clone(), plan.as_of, &run_id, &overrides.lease).await?;
    let written = async {
        let Some(manifest) = sink.published() else {
            return Err(Error::Data(format!(
                "no run is published for as_of {} under {root}: run the pipeline for that day first (fidelis run \
                 PIPELINE --as-of {})",
                plan.as_of, plan.as_of
            )));
        };
        let tables =
            report::read_tables(&pipeline.reports, |table| layout::table_file(&root, table, plan.as_of)).await?;
        if tables.is_empty() {
            return Err(Error::Data(format!(
                "none of the tables the reports read is published for as_of {} under {root}; run the pipeline \
                 for that day (fidelis run PIPELINE --as-of {})",
                plan.as_of, plan.as_of
            )));
        }
        let mut staged = Vec::new();
        let mut written = Vec::new();
        for file in render_reports(&plan, &tables, manifest)? {
            let report = sink.stage_report(&file.path, file.bytes).await?;
            written.push(report.url());
            staged.push(report);
        }
        sink.publish(&staged, &[], None).await?;
        Ok(written)
    }
    .await;
    sink.close().await;
    written
}
