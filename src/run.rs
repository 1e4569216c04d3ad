//! A run, end to end: bind the pipeline, load sources, run stages in one DataFusion
//! session, stage the output tables, publish them atomically with the manifest.
//! Also `validate`, which goes as far as planning without reading or writing data.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::execution::config::SessionConfig;
use datafusion::prelude::SessionContext;
use indexmap::IndexMap;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::{OnError, ParamValue, Pipeline, Source, Stage};
use crate::error::{Error, Result};
use crate::functions;
use crate::logging::Step;
use crate::manifest::{Manifest, StageReport};
use crate::plan::{Overrides, Plan, bind};
use crate::report::{self, RenderedFile, ReportRequest, Tables};
use crate::schedule::{Job, Schedule};
use crate::sinks::{self, Sink, StagedFile, TableReport};
use crate::sources::{self, LoadedSource, quarantine_schema};
use crate::stages;
use crate::storage::{Location, Storage};

/// The process's peak resident set size so far (`VmHWM` in `/proc/self/status`).
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A session with fidelis's functions registered.
pub fn session() -> SessionContext {
    // Larger batches than the default 8192 rows: fewer, cheaper steps through the window
    // and aggregate operators on tables of millions of rows. One partition per query:
    // a run keeps the cores busy with several stages at once (see `execute`), and a
    // query on one partition skips the repartitioning, the two-phase aggregations and
    // the sorted merges that spreading it over the cores costs (a fifth of the CPU time
    // of the benchmark).
    let config =
        SessionConfig::new().with_information_schema(false).with_batch_size(32 * 1024).with_target_partitions(1);
    let ctx = SessionContext::new_with_config(config);
    functions::register(&ctx);
    ctx
}

/// Runs `pipeline` and publishes its outputs; returns the manifest written.
pub async fn run(pipeline: &Pipeline, overrides: &Overrides) -> Result<Manifest> {
    let started = Utc::now();
    let clock = Instant::now();
    let plan = bind(pipeline, overrides)?;
    let Some(outputs) = &pipeline.outputs else {
        return Err(Error::config(
            pipeline.file.display().to_string(),
            "the pipeline has no `outputs`, so a run would write nothing",
            "add `outputs: {root: …, tables: [...]}`, or use `fidelis validate` to only check it",
        ));
    };
    let storage = Storage::new();
    let root = storage.resolve(&plan.fill(&outputs.root))?;
    let run_id = format!("{}-{}", started.format("%Y%m%dT%H%M%S%3fZ"), std::process::id());
    info!(pipeline = %pipeline.name, as_of = %plan.as_of, output = %root, run_id = %run_id, "run started");
    let sink = Sink::new(root.clone(), plan.as_of, &run_id);
    match execute(&plan, &storage, &sink, &run_id, started).await {
        Ok((files, stale, mut manifest)) => {
            manifest.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
            manifest.duration_ms = clock.elapsed().as_millis();
            manifest.peak_memory_bytes = peak_memory_bytes();
            let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::runtime("writing the manifest", e))?;
            let published = sink.publish(files, &stale, &json).await;
            if published.is_err() {
                sink.abort().await;
            }
            published?;
            info!(
                tables = manifest.tables.len(),
                duration_ms = manifest.duration_ms as u64,
                peak_memory_mb = manifest.peak_memory_bytes.map(|b| b / (1 << 20)),
                output = %root,
                "run published"
            );
            Ok(manifest)
        }
        Err(error) => {
            sink.abort().await;
            Err(error)
        }
    }
}

type Staged = (Vec<StagedFile>, Vec<Location>, Manifest);

async fn execute(
    plan: &Plan<'_>,
    storage: &Storage,
    sink: &Sink,
    run_id: &str,
    started: chrono::DateTime<Utc>,
) -> Result<Staged> {
    let ctx = session();
    let mut manifest = Manifest::new(plan, run_id, started);
    let mut files = Vec::new();
    let mut stale = Vec::new();
    let renders_reports = plan.runs_everything() && !plan.pipeline.reports.is_empty();

    // Sources load and stages run as soon as what they need is done, one job per core
    // (a stage runs on one core, see `session`). Output tables are written while later
    // stages run.
    let mut writes: JoinSet<Result<(usize, StagedFile, TableReport)>> = JoinSet::new();
    let mut skipped: Vec<&str> = Vec::new();
    let jobs_at_once = std::thread::available_parallelism().map_or(2, usize::from);
    let stages_run: Result<()> = async {
        let mut readers = Readers::new(&plan.stages);
        let mut schedule = Schedule::new(&plan.stages, plan.sources.iter().map(|s| s.name.as_str()));
        let mut running: JoinSet<Done> = JoinSet::new();
        let mut reports: Vec<(usize, StageReport)> = Vec::new();
        loop {
            while running.len() < jobs_at_once {
                let Some(job) = schedule.next_job() else { break };
                match job {
                    Job::Load(name) => {
                        let source =
                            plan.sources.iter().find(|s| s.name == name).expect("scheduled sources are the plan's");
                        let location = storage.resolve(&plan.fill(&source.url))?;
                        let (ctx, source, timezone) = (ctx.clone(), (*source).clone(), plan.timezone);
                        running.spawn(async move {
                            let clock = Instant::now();
                            let step = Step::start(format!("loading source {}", source.name));
                            let loaded = sources::load(&ctx, &source, &location, timezone).await;
                            drop(step);
                            Done::Loaded(source.name, loaded.map(Box::new), clock.elapsed().as_millis())
                        });
                    }
                    Job::Run(order) => {
                        let (ctx, stage, params) = (ctx.clone(), plan.stages[order].clone(), plan.params.clone());
                        running.spawn(
                            async move { Done::Ran(order, run_stage(&ctx, &stage, &params).await.map(Box::new)) },
                        );
                    }
                    Job::Skip { stage: order, missing } => {
                        let stage = plan.stages[order];
                        let message =
                            format!("stage `{}` skipped: it reads `{missing}`, which was skipped", stage.name);
                        warn!("{message}");
                        manifest.warnings.push(message);
                        skipped.push(&stage.name);
                        schedule.finished(order, true);
                        readers.done(&ctx, &stage.depends_on);
                    }
                }
            }
            let Some(joined) = running.join_next().await else {
                // Stages come in dependency order, so nothing can be left waiting.
                debug_assert!(schedule.waiting().is_empty(), "stages left waiting: {:?}", schedule.waiting());
                break;
            };
            let (order, outcome) = match joined.map_err(|e| Error::runtime("running a stage", e))? {
                Done::Loaded(name, loaded, duration_ms) => {
                    let source = plan.sources.iter().find(|s| s.name == name).expect("loaded sources are the plan's");
                    record_source(&ctx, sink, source, *loaded?, duration_ms, &mut manifest, &mut files, &mut stale)
                        .await?;
                    schedule.loaded(&source.name);
                    continue;
                }
                Done::Ran(order, outcome) => (order, outcome),
            };
            let stage = plan.stages[order];
            let finished = match outcome {
                Ok(finished) => finished,
                Err(Error::Data(reason)) if stage.on_error == OnError::Warn => {
                    let message = format!("stage `{}` skipped (on_error: warn): {reason}", stage.name);
                    warn!("{message}");
                    manifest.warnings.push(message);
                    skipped.push(&stage.name);
                    schedule.finished(order, true);
                    readers.done(&ctx, &stage.depends_on);
                    continue;
                }
                Err(error) => return Err(error),
            };
            schedule.finished(order, false);
            let Finished { frame, rows, counts, duration_ms } = *finished;
            info!(stage = %stage.name, rows, duration_ms = duration_ms as u64, "stage finished");
            for (name, count) in counts.iter().filter(|(_, count)| **count > 0) {
                let message = format!("stage `{}`: {count} rows are {name}", stage.name);
                warn!("{message}");
                manifest.warnings.push(message);
            }
            reports.push((order, StageReport { name: stage.name.clone(), rows, duration_ms, counts }));
            if plan.tables.contains(&stage.name) {
                let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
                let batches =
                    frame.collect().await.map_err(|e| Error::runtime(format!("reading stage `{}`", stage.name), e))?;
                let (sink, name) = (sink.clone(), stage.name.clone());
                writes.spawn(async move {
                    let (file, report) = sink.stage_table(&name, schema, &batches).await?;
                    Ok((order, file, report))
                });
            }
            readers.done(&ctx, &stage.depends_on);
            if !readers.is_read(&stage.name) {
                let _ = ctx.deregister_table(stage.name.as_str());
            }
        }
        reports.sort_by_key(|(order, _)| *order);
        manifest.stages.extend(reports.into_iter().map(|(_, report)| report));
        Ok(())
    }
    .await;
    if let Err(error) = stages_run {
        // Nothing may still be writing to staging when the run cleans it up.
        writes.shutdown().await;
        return Err(error);
    }
    let mut written = writes.join_all().await.into_iter().collect::<Result<Vec<_>>>()?;
    written.sort_by_key(|(order, _, _)| *order);
    for (order, file, table) in written {
        files.push(file);
        manifest.tables.insert(plan.stages[order].name.clone(), table);
    }
    // A skipped table's partition from an earlier run would claim to be this run's.
    stale.extend(skipped.iter().filter(|s| plan.tables.iter().any(|t| t == *s)).map(|s| sink.partition(s)));
    if renders_reports {
        files.extend(stage_reports(plan, sink, &mut manifest).await?);
    } else if !plan.pipeline.reports.is_empty() {
        info!("reports are rendered by full runs only (not with --only)");
    }
    Ok((files, stale, manifest))
}

/// A finished job: a source loaded (with the milliseconds it took) or a stage run.
enum Done {
    Loaded(String, Result<Box<LoadedSource>>, u128),
    Ran(usize, Result<Box<Finished>>),
}

/// A stage's result, materialised and registered, with what the manifest records.
struct Finished {
    frame: DataFrame,
    rows: u64,
    counts: IndexMap<String, u64>,
    duration_ms: u128,
}

async fn run_stage(ctx: &SessionContext, stage: &Stage, params: &IndexMap<String, ParamValue>) -> Result<Finished> {
    let clock = Instant::now();
    let step = Step::start(format!("running stage {}", stage.name));
    let frame = stages::run(ctx, stage, params).await?;
    let rows =
        frame.clone().count().await.map_err(|e| Error::runtime(format!("counting stage `{}`", stage.name), e))? as u64;
    let counts = stages::count(&frame, stage).await?;
    drop(step);
    Ok(Finished { frame, rows, counts, duration_ms: clock.elapsed().as_millis() })
}

/// Registers a loaded source for the stages, records it in the manifest and stages
/// its quarantine table (or marks an earlier run's as stale).
#[allow(clippy::too_many_arguments)] // the run's shared state, passed explicitly
async fn record_source(
    ctx: &SessionContext,
    sink: &Sink,
    source: &Source,
    loaded: LoadedSource,
    duration_ms: u128,
    manifest: &mut Manifest,
    files: &mut Vec<StagedFile>,
    stale: &mut Vec<Location>,
) -> Result<()> {
    let report = &loaded.report;
    info!(
        source = %source.name,
        files = report.files.len(),
        rows_read = report.rows_read,
        rows_loaded = report.rows_loaded,
        rows_quarantined = report.rows_quarantined,
        duration_ms = duration_ms as u64,
        "source loaded"
    );
    if report.status == "absent" {
        for metric in &source.metrics {
            if !manifest.metrics_without_data.contains(metric) {
                manifest.metrics_without_data.push(metric.clone());
            }
        }
        let metrics = match source.metrics.is_empty() {
            true => "the metrics that need it".to_string(),
            false => source.metrics.join(", "),
        };
        let message =
            format!("optional source `{}` has no files at {}: {metrics} have no data", source.name, report.url);
        warn!("{message}");
        manifest.warnings.push(message);
    }
    if report.rows_quarantined > 0 {
        let message = format!("source `{}`: {} rows quarantined", source.name, report.rows_quarantined);
        warn!("{message}");
        manifest.warnings.push(message);
    }
    let quarantine_table = format!("_quarantine/{}", source.name);
    match &loaded.quarantine {
        Some(batch) => {
            let (file, table) =
                sink.stage_table(&quarantine_table, quarantine_schema(), std::slice::from_ref(batch)).await?;
            files.push(file);
            manifest.quarantine.insert(source.name.clone(), table);
        }
        None => stale.push(sink.partition(&quarantine_table)),
    }
    register(ctx, &source.name, loaded.schema, vec![loaded.batches])?;
    manifest.sources.insert(source.name.clone(), loaded.report);
    Ok(())
}

/// Renders the pipeline's reports into the sink's staging area, to be published with the
/// tables, from the tables they declare as this run staged them.
async fn stage_reports(plan: &Plan<'_>, sink: &Sink, manifest: &mut Manifest) -> Result<Vec<StagedFile>> {
    let clock = Instant::now();
    let tables = report::read_tables(&plan.pipeline.reports, |table| sink.staged_table(table)).await?;
    let rendered = render_reports(plan, &tables, manifest)?;
    let mut staged = Vec::with_capacity(rendered.len());
    for file in rendered {
        let report = sink.stage_report(&file.path, file.bytes).await?;
        manifest.reports.insert(file.path, report.url());
        staged.push(report);
    }
    info!(reports = staged.len(), duration_ms = clock.elapsed().as_millis() as u64, "reports rendered");
    Ok(staged)
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
/// without recomputing them, and replaces the published reports.
pub async fn report(pipeline: &Pipeline, overrides: &Overrides) -> Result<Vec<String>> {
    let plan = bind(pipeline, overrides)?;
    let Some(outputs) = &pipeline.outputs else {
        return Err(Error::config(
            pipeline.file.display().to_string(),
            "the pipeline has no `outputs`",
            "add `outputs`",
        ));
    };
    if pipeline.reports.is_empty() {
        return Err(Error::config(
            pipeline.file.display().to_string(),
            "the pipeline has no `reports`",
            "add `reports: [{template: report.html.tera, path: report.html, tables: [...]}]`",
        ));
    }
    let storage = Storage::new();
    let root = storage.resolve(&plan.fill(&outputs.root))?;
    let manifest = Manifest::read(&root, plan.as_of).await?;
    let tables = report::read_tables(&pipeline.reports, |table| sinks::table_file(&root, table, plan.as_of)).await?;
    if tables.is_empty() {
        return Err(Error::Data(format!(
            "none of the tables the reports read is published for as_of {} under {root}; run the pipeline for \
             that day (fidelis run PIPELINE --as-of {})",
            plan.as_of, plan.as_of
        )));
    }
    let run_id = format!("{}-{}-report", Utc::now().format("%Y%m%dT%H%M%S%3fZ"), std::process::id());
    let sink = Sink::new(root, plan.as_of, &run_id);
    let mut staged = Vec::new();
    let mut written = Vec::new();
    for file in render_reports(&plan, &tables, &manifest)? {
        let report = sink.stage_report(&file.path, file.bytes).await?;
        written.push(report.url());
        staged.push(report);
    }
    let moved = sink.move_into_place(&staged, &[]).await;
    sink.abort().await;
    moved?;
    Ok(written)
}

/// How many stages still have to read each table. At zero the table is released, so a
/// run holds only what later stages need, not every intermediate result.
struct Readers<'p>(HashMap<&'p str, usize>);

impl<'p> Readers<'p> {
    fn new(stages: &[&'p Stage]) -> Self {
        let mut readers = HashMap::new();
        for dependency in stages.iter().flat_map(|s| &s.depends_on) {
            *readers.entry(dependency.as_str()).or_default() += 1;
        }
        Readers(readers)
    }

    /// A stage that read `tables` is done (run or skipped).
    fn done(&mut self, ctx: &SessionContext, tables: &[String]) {
        for table in tables {
            if let Some(count) = self.0.get_mut(table.as_str()) {
                *count -= 1;
                if *count == 0 {
                    let _ = ctx.deregister_table(table.as_str());
                }
            }
        }
    }

    /// Whether any stage reads `table`.
    fn is_read(&self, table: &str) -> bool {
        self.0.contains_key(table)
    }
}

fn register(
    ctx: &SessionContext,
    name: &str,
    schema: SchemaRef,
    partitions: Vec<Vec<datafusion::arrow::array::RecordBatch>>,
) -> Result<()> {
    let table =
        MemTable::try_new(schema, partitions).map_err(|e| Error::runtime(format!("registering `{name}`"), e))?;
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

/// Checks `pipeline` without reading data or writing anything: parameters bind, the
/// report templates parse and read only the tables their report declares, every source
/// is reachable and has files (or is optional), every stage plans against the sources'
/// schemas and the stages before it.
pub async fn validate(pipeline: &Pipeline, overrides: &Overrides) -> Result<Validation> {
    let plan = bind(pipeline, overrides)?;
    report::check(&pipeline.reports, &pipeline.templates_dir, &plan.params, &pipeline.file)?;
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
        register(&ctx, &source.name, schema, vec![vec![]])?;
        validation.sources.push((source.name.clone(), found.len()));
    }
    for stage in &plan.stages {
        let logical = stages::plan(&ctx, stage, &plan.params).await?;
        let schema: SchemaRef = Arc::new(logical.schema().as_arrow().clone());
        validation.stages.push((
            stage.name.clone(),
            stage.description.clone(),
            schema.fields().iter().map(|f| f.name().clone()).collect(),
        ));
        register(&ctx, &stage.name, schema, vec![vec![]])?;
    }
    Ok(validation)
}
