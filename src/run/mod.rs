//! A run, end to end: bind the pipeline, load sources and run stages in one DataFusion
//! session within the run's memory budget ([`executor`]), stage the output tables,
//! publish them atomically with the manifest. Also `validate`, which goes as far as
//! planning without reading or writing data, and `report`, which renders the reports
//! again from published tables.

mod executor;
mod joins;

use std::sync::Arc;
use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::datasource::MemTable;
use datafusion::execution::config::SessionConfig;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use indexmap::IndexMap;
use serde::Serialize;
use tracing::info;

use crate::config::{ParamValue, Pipeline};
use crate::error::{Error, Result};
use crate::functions;
use crate::lineage::RunLineage;
use crate::memory::{self, MemoryBudget};
use crate::pipeline_version::pipeline_version;
use crate::plan::{Overrides, Plan, bind};
use crate::publish::kept;
use crate::quality;
use crate::report::{self, RenderedFile, ReportRequest, Tables};
use crate::results::Results;
use crate::signals;
use crate::sinks::{Sink, TableReport, output_root};
use crate::sources::{self, SourceReport};
use crate::stages;
use crate::storage::Storage;
use crate::threads;

/// The run manifest, written as `{root}/_runs/as_of={as_of}/manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub pipeline: String,
    pub pipeline_file: String,
    pub fidelis_version: &'static str,
    /// What the pipeline computes with besides parameters and data (`crate::pipeline_version`).
    pub pipeline_version: String,
    pub run_id: String,
    pub as_of: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u128,
    /// The run's memory budget (`--memory-limit`, the container's limit or a share of
    /// physical memory).
    pub memory_limit_bytes: u64,
    /// Peak resident memory of the process, when the platform reports it (Linux).
    pub peak_memory_bytes: Option<u64>,
    /// Bytes written to local disk because the budget could not hold them: operators'
    /// spill files and sources or stage results stored in files.
    pub spilled_bytes: u64,
    pub parameters: IndexMap<String, serde_json::Value>,
    pub sources: IndexMap<String, SourceReport>,
    pub stages: Vec<StageReport>,
    pub tables: IndexMap<String, TableReport>,
    pub quarantine: IndexMap<String, TableReport>,
    /// The reports written, by file name.
    pub reports: IndexMap<String, String>,
    /// Metrics that are null because an optional source they need is absent.
    pub metrics_without_data: Vec<String>,
    /// Every data test run, in stage order (`crate::quality`).
    pub tests: Vec<crate::quality::TestResult>,
    pub warnings: Vec<String>,
    /// Tables, quarantine tables (`_quarantine/{source}`) and reports (`reports/{file}`)
    /// of the partition that a run with `--only` kept from earlier runs, with the run that
    /// wrote each; they are listed in `tables`, `quarantine` and `reports` too.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub kept: IndexMap<String, String>,
}

/// What the manifest records about a stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: String,
    pub rows: u64,
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
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The process's peak resident set size so far (`VmHWM` in `/proc/self/status`).
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A session with fidelis's functions registered, on `runtime` (memory pool and disk)
/// sized for `budget`.
pub fn session_on(runtime: Arc<RuntimeEnv>, budget: &MemoryBudget) -> SessionContext {
    // One partition per query by default; the executor sets each stage's own (see
    // `executor::stage_state`).
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_batch_size(budget.batch_rows())
        .with_target_partitions(1);
    config.options_mut().execution.sort_spill_reservation_bytes = budget.sort_spill_reservation_bytes();
    // Stored results are read whole-file, batch by batch: DataFusion reads a byte range of
    // an Arrow IPC file (what splitting a scan across partitions gives) all at once.
    config.options_mut().optimizer.repartition_file_scans = false;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    functions::register(&ctx);
    ctx
}

/// A session with fidelis's functions registered and no memory limit, for planning.
pub fn session() -> SessionContext {
    session_on(Arc::new(RuntimeEnv::default()), &MemoryBudget::resolve(None))
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
    let run_id = format!("{}-{}", started.format("%Y%m%dT%H%M%S%3fZ"), std::process::id());
    let budget = MemoryBudget::resolve(overrides.memory_limit);
    let spill_dir = overrides.spill_dir.clone().unwrap_or_else(memory::default_spill_dir);
    info!(
        pipeline = %pipeline.name, as_of = %plan.as_of, output = %root, run_id = %run_id,
        memory_limit = %budget, spill_dir = %spill_dir.display(), "run started"
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
        let previous = sources::PreviousRun::read(&plan, &root).await?;
        // A stop signal or the loss of the lease drops the run's work (its queries with it).
        let executed = tokio::select! {
            staged = executor::execute(&plan, &storage, &sink, &results, &run_id, started, previous) => staged,
            error = signals::stopped() => Err(error),
            error = sink.lease_lost() => Err(error),
        };
        results.close();
        let (files, mut stale, mut manifest) = executed?;
        manifest.pipeline_version = version;
        let gone = kept::carry_over(sink.published(), partial, &plan.tables, &mut manifest);
        stale.extend(gone.iter().map(|table| sink.partition(table)));
        manifest.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        manifest.duration_ms = clock.elapsed().as_millis();
        manifest.peak_memory_bytes = peak_memory_bytes();
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::runtime("writing the manifest", e))?;
        sink.publish(&files, &stale, Some(&json)).await?;
        Ok(manifest)
    }
    .await;
    sink.close().await;
    let manifest = match published {
        Ok(manifest) => manifest,
        Err(error) => {
            lineage.fail(&error).await;
            return Err(error);
        }
    };
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
    Ok(manifest)
}

fn render_reports(plan: &Plan<'_>, tables: &Tables, manifest: &serde_json::Value) -> Result<Vec<RenderedFile>> {
    let text = |name: &str, default: &'static str| match plan.params.get(name) {
        Some(ParamValue::String(value)) => value.clone(),
        _ => default.to_string(),
    };
    let (locale, currency) = (text("locale", "en-US"), text("currency", "EUR"));
    report::render(&ReportRequest {
        pipeline_name: &plan.pipeline.name,
        as_of: plan.as_of,
        locale: &locale,
        currency: &currency,
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
            "add `reports: [{template: report.html.tera, path: report.html}]`",
        ));
    }
    let run_id = format!("{}-{}-report", Utc::now().format("%Y%m%dT%H%M%S%3fZ"), std::process::id());
    let (sink, _) = Sink::open(root.clone(), plan.as_of, &run_id, &overrides.lease).await?;
    let written = async {
        let outputs = pipeline.outputs.as_ref().map_or(&[][..], |outputs| &outputs.tables);
        let (tables, manifest) = report::read_published(&root, outputs, plan.as_of).await?;
        if tables.is_empty() {
            return Err(Error::Data(format!(
                "no tables are published for as_of {} under {root}; run the pipeline first",
                plan.as_of
            )));
        }
        let mut staged = Vec::new();
        let mut written = Vec::new();
        for file in render_reports(&plan, &tables, &manifest)? {
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

/// Registers an empty table of `schema` as `name`, for planning.
fn register_empty(ctx: &SessionContext, name: &str, schema: SchemaRef) -> Result<()> {
    let table =
        MemTable::try_new(schema, vec![vec![]]).map_err(|e| Error::runtime(format!("registering `{name}`"), e))?;
    ctx.register_table(name, Arc::new(table)).map_err(|e| Error::runtime(format!("registering `{name}`"), e))?;
    Ok(())
}

/// What `validate` found.
#[derive(Debug)]
pub struct Validation {
    /// (source, files found)
    pub sources: Vec<(String, usize)>,
    /// (stage, description, output columns)
    pub stages: Vec<(String, Option<String>, Vec<String>)>,
}

/// Checks `pipeline` without reading data or writing anything: parameters bind,
/// every source is reachable and has files (or is optional), every stage plans
/// against the sources' schemas and the stages before it, and so do its tests.
pub async fn validate(pipeline: &Pipeline, overrides: &Overrides) -> Result<Validation> {
    let plan = bind(pipeline, overrides)?;
    let storage = Storage::new();
    if let Some(outputs) = &pipeline.outputs {
        storage.resolve(&plan.fill(&outputs.root))?;
    }
    let ctx = session();
    let mut validation = Validation { sources: Vec::new(), stages: Vec::new() };
    // Every declared source, read by a stage or not.
    for source in pipeline.sources.values() {
        let location = storage.resolve(&plan.fill(&source.url))?;
        let found = sources::list_files(source, &location).await?;
        let schema = sources::schema(source, &location).await?;
        let columns = DFSchema::try_from(Arc::clone(&schema)).map_err(|e| Error::runtime("reading a schema", e))?;
        for check in &source.checks {
            ctx.parse_sql_expr(&check.condition, &columns).map_err(|error| {
                Error::config(
                    &source.name,
                    format!("check `{}`: cannot plan `{}`: {error}", check.name, check.condition),
                    "the condition may use the source's declared columns and SQL functions",
                )
            })?;
        }
        register_empty(&ctx, &source.name, schema)?;
        validation.sources.push((source.name.clone(), found.len()));
    }
    // Every test that does not plan is reported, all together.
    let mut tests = Vec::new();
    for stage in &plan.stages {
        let logical = stages::plan(&ctx.state(), stage, &plan.params).await?;
        let schema: SchemaRef = Arc::new(logical.schema().as_arrow().clone());
        validation.stages.push((
            stage.name.clone(),
            stage.description.clone(),
            schema.fields().iter().map(|f| f.name().clone()).collect(),
        ));
        register_empty(&ctx, &stage.name, schema)?;
        match quality::plan(&ctx, stage).await {
            Err(Error::Config(diagnostics)) => tests.extend(diagnostics),
            planned => drop(planned?),
        }
    }
    match tests.is_empty() {
        true => Ok(validation),
        false => Err(Error::Config(tests)),
    }
}
