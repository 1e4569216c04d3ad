//! The executor: walks the schedule, loading sources, running stages as soon as what
//! they read is done and their data tests once they have run, one job per core (see
//! `crate::schedule`), stores every result where the memory budget allows
//! (`crate::results`), writes output tables while later stages run, and releases each
//! result after its last reader (its tests included).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use indexmap::IndexMap;
use tokio::task::{AbortHandle, JoinSet};
use tracing::{info, warn};

use super::{joins, render_reports, session_on};
use crate::config::{OnError, Source, Stage};
use crate::error::{Error, Result};
use crate::failpoints;
use crate::functions;
use crate::logging::Step;
use crate::manifest::{Manifest, StageReport, TableReport};
use crate::memory::MemoryBudget;
use crate::plan::Plan;
use crate::quality::{self, Tested};
use crate::report;
use crate::results::{Results, Stored};
use crate::schedule::{Job, Schedule};
use crate::sinks::{Sink, StagedFile};
use crate::sources::{self, Baseline, PreviousRun, SourceReport, quarantine_schema};
use crate::stages;
use crate::storage::{Location, Storage};
use crate::threads;

/// What a run leaves to publish: the staged files, the partitions to remove (earlier
/// runs' tables this run does not produce), and the manifest.
pub(super) type Staged = (Vec<StagedFile>, Vec<Location>, Manifest);

/// Loads, runs and stages everything `plan` asks for; sources are checked against the
/// `previous` as_of's run.
pub(super) async fn execute(
    plan: &Plan<'_>,
    storage: &Storage,
    sink: &Sink,
    results: &Results,
    run_id: &str,
    started: DateTime<Utc>,
    previous: Option<PreviousRun>,
) -> Result<Staged> {
    let ctx = results.stage_session(session_on(Arc::clone(results.runtime()), &results.budget()))?;
    let mut executor = Executor::new(plan, storage, sink, results, ctx, manifest(plan, results, run_id, started));
    executor.baseline.previous = previous;
    let mut running = JoinSet::new();
    if let Err(error) = executor.walk(&mut running).await {
        let error = executor.tests_first(error, &mut running).await;
        // Stop the other jobs before the run cleans up after them.
        running.shutdown().await;
        // Nothing may still be writing to staging when the run cleans it up.
        executor.writes.shutdown().await;
        return Err(error);
    }
    executor.finish().await
}

/// The manifest as known before anything runs.
fn manifest(plan: &Plan<'_>, results: &Results, run_id: &str, started: DateTime<Utc>) -> Manifest {
    Manifest { memory_limit_bytes: results.budget().bytes, ..Manifest::new(plan, run_id, started) }
}

/// A finished job.
enum Done {
    Loaded(String, Result<Box<Loaded>>),
    /// The stage at this index ran (alone, when the flag says so).
    Ran(usize, bool, Result<Box<Ran>>),
    /// The tests of the stage at this index ran (alone, when the flag says so).
    Tested(usize, bool, Result<Tested>),
}

impl Done {
    /// Whether this is `job` finished.
    fn finishes(&self, job: &Job) -> bool {
        match (self, job) {
            (Done::Loaded(name, _), Job::Load(source)) => name == source,
            (Done::Ran(order, ..), Job::Run(run)) => order == run,
            (Done::Tested(order, ..), Job::Test(tested)) => order == tested,
            _ => false,
        }
    }
}

/// Work that ran out of memory beside other jobs, to run again alone.
enum Alone {
    /// The stage at this index.
    Stage(usize),
    /// The tests of the stage at this index.
    Tests(usize),
}

/// A source loaded and stored.
struct Loaded {
    report: SourceReport,
    quarantine: Option<Stored>,
    /// The loaded rows' bytes, and whether they live on disk.
    size: (u64, bool),
    /// What its freshness and volume checks warn of.
    warnings: Vec<String>,
    duration_ms: u128,
}

/// A stage run, its result stored and registered.
struct Ran {
    result: Arc<Stored>,
    form: Form,
    spilled_bytes: u64,
    counts: IndexMap<String, u64>,
    facts: IndexMap<String, serde_json::Value>,
    duration_ms: u128,
}

/// The state of one run while it walks the schedule.
struct Executor<'a> {
    plan: &'a Plan<'a>,
    storage: &'a Storage,
    sink: &'a Sink,
    results: &'a Results,
    ctx: SessionContext,
    manifest: Manifest,
    files: Vec<StagedFile>,
    stale: Vec<Location>,
    /// Output tables being written to staging, by stage order.
    writes: JoinSet<Result<(usize, StagedFile, TableReport)>>,
    /// The loads and stages started (not the tests), to stop them when the run fails.
    computing: Vec<AbortHandle>,
    readers: Readers<'a>,
    skipped: Vec<&'a str>,
    stage_reports: Vec<(usize, StageReport)>,
    /// Each stored source and stage result: its bytes, and whether it lives on disk.
    sizes: HashMap<String, (u64, bool)>,
    /// What loaded sources are checked against.
    baseline: Baseline,
    /// The run's warnings with what raised them, in the order they were raised.
    warnings: Vec<(Origin, String)>,
}

/// What raised a warning. The manifest lists warnings in this order — the sources' in
/// the plan's order, then the stages' in pipeline order — whatever order the jobs
/// finish in, so that runs of the same data publish the same manifest and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    /// The source at this index of the plan's sources.
    Source(usize),
    /// The stage at this index of the plan's stages.
    Stage(usize),
}

impl<'a> Executor<'a> {
    fn new(
        plan: &'a Plan<'a>,
        storage: &'a Storage,
        sink: &'a Sink,
        results: &'a Results,
        ctx: SessionContext,
        manifest: Manifest,
    ) -> Self {
        Executor {
            plan,
            storage,
            sink,
            results,
            ctx,
            manifest,
            files: Vec::new(),
            stale: Vec::new(),
            writes: JoinSet::new(),
            computing: Vec::new(),
            readers: Readers::new(&plan.stages),
            skipped: Vec::new(),
            stage_reports: Vec::new(),
            sizes: HashMap::new(),
            baseline: Baseline { as_of: plan.as_of, timezone: plan.timezone, previous: None },
            warnings: Vec::new(),
        }
    }

    /// Runs every job of the schedule, as many at once as the thread budget allows. A
    /// stage (or a stage's tests) that ran out of memory beside other jobs, even in its
    /// frugal form, runs again alone, with the whole memory pool, once the jobs running
    /// are done, and on one partition: each partition's sorts hold their merge buffers
    /// outside what can spill, so more partitions need more memory (at 10 M customers
    /// under 4 GiB, `clv_segments` on two partitions did not fit where it fits on one).
    async fn walk(&mut self, running: &mut JoinSet<Done>) -> Result<()> {
        let threads = self.results.threads();
        let plan = self.plan;
        let checked_first = plan.sources.iter().filter(|s| s.checked_first()).map(|s| s.name.as_str());
        let mut schedule = Schedule::new(&plan.stages, plan.sources.iter().map(|s| s.name.as_str()), checked_first);
        let mut alone: Vec<Alone> = Vec::new();
        // The jobs started beside each other, with the bytes each reads.
        let mut sharing: Vec<(Job<'a>, threads::Reads)> = Vec::new();
        loop {
            if !alone.is_empty() {
                if running.is_empty() {
                    match alone.remove(0) {
                        Alone::Stage(order) => {
                            self.start_stage(order, Form { partitions: 1, frugal: true }, true, running)
                        }
                        Alone::Tests(order) => self.start_tests(order, 1, true, running),
                    }
                }
            } else {
                // Its threads are shared out among the jobs running, so a stage running
                // alone, or a staging stage reading most of the data, gets several partitions.
                // A skip is recorded at once and takes no thread: counted as a job, skips
                // alone could fill the budget with nothing running, ending the walk with
                // the stages they unblock still waiting.
                let mut starting = Vec::new();
                while running.len() + starting.len() < threads {
                    let Some(job) = schedule.next_job() else { break };
                    match job {
                        Job::Skip { .. } => self.start(job, 1, &mut schedule, running)?,
                        job => starting.push(job),
                    }
                }
                sharing.extend(starting.iter().map(|job| (job.clone(), self.reads(job))));
                let reads: Vec<threads::Reads> = sharing.iter().map(|(_, reads)| *reads).collect();
                let shares = threads::shares(threads, &reads);
                let started = sharing.len() - starting.len();
                for (job, share) in starting.into_iter().zip(&shares[started..]) {
                    let partitions = self.results.cluster().map_or(*share, |cluster| cluster.partitions());
                    self.start(job, partitions, &mut schedule, running)?;
                }
            }
            let Some(joined) = running.join_next().await else {
                // Stages come in dependency order, so nothing can be left waiting.
                debug_assert!(schedule.waiting().is_empty(), "stages left waiting: {:?}", schedule.waiting());
                break;
            };
            let done = joined.map_err(|e| Error::runtime("running a job", e))?;
            sharing.retain(|(job, _)| !done.finishes(job));
            match done {
                Done::Loaded(name, loaded) => {
                    let source = plan.sources.iter().find(|s| s.name == name).expect("loaded sources are the plan's");
                    self.loaded(source, *loaded?).await?;
                    schedule.loaded(&source.name);
                }
                Done::Ran(order, false, Err(Error::Resources(reason))) => {
                    let stage = &plan.stages[order].name;
                    warn!(stage = %stage, "stage ran out of memory beside other work; it runs again alone: {reason}");
                    alone.push(Alone::Stage(order));
                }
                Done::Ran(order, _, ran) => self.ran(order, ran, &mut schedule)?,
                Done::Tested(order, false, Err(Error::Resources(reason))) => {
                    let stage = &plan.stages[order].name;
                    warn!(stage = %stage, "the stage's tests ran out of memory beside other work; they run again alone: {reason}");
                    alone.push(Alone::Tests(order));
                }
                Done::Tested(order, _, tested) => self.tested(order, tested?)?,
            }
        }
        self.stage_reports.sort_by_key(|(order, _)| *order);
        self.manifest.stages.extend(self.stage_reports.drain(..).map(|(_, report)| report));
        self.manifest.tests.sort_by_key(|test| plan.stages.iter().position(|stage| stage.name == test.stage));
        // A stable sort: one origin's warnings stay in the order they were raised.
        self.warnings.sort_by_key(|(origin, _)| *origin);
        self.manifest.warnings.extend(self.warnings.drain(..).map(|(_, message)| message));
        Ok(())
    }

    /// Starts `job` (a stage on `partitions` partitions), or, for a skip, records it.
    fn start(
        &mut self,
        job: Job<'a>,
        partitions: usize,
        schedule: &mut Schedule<'a>,
        running: &mut JoinSet<Done>,
    ) -> Result<()> {
        match job {
            Job::Load(name) => {
                let source =
                    self.plan.sources.iter().find(|s| s.name == name).expect("scheduled sources are the plan's");
                let location = self.storage.resolve(&self.plan.fill(&source.url))?;
                let (ctx, results, baseline) = (self.ctx.clone(), self.results.clone(), self.baseline.clone());
                let source = (*source).clone();
                let handle = running.spawn(async move {
                    let loaded = load(&ctx, &results, &source, &location, &baseline).await;
                    Done::Loaded(source.name, loaded.map(Box::new))
                });
                self.computing.push(handle);
            }
            Job::Run(order) => {
                let form = Form { partitions, frugal: self.frugal(self.plan.stages[order]) };
                self.start_stage(order, form, false, running);
            }
            Job::Test(order) => self.start_tests(order, partitions, false, running),
            Job::Skip { stage: order, missing } => {
                let name = &self.plan.stages[order].name;
                self.skip(order, format!("stage `{name}` skipped: it reads `{missing}`, which was skipped"));
                schedule.finished(order, true);
            }
        }
        Ok(())
    }

    /// Starts the stage at `order` in `form` (`alone`: with no other job running).
    fn start_stage(&mut self, order: usize, form: Form, alone: bool, running: &mut JoinSet<Done>) {
        let (ctx, results) = (self.ctx.clone(), self.results.clone());
        let (stage, params) = (self.plan.stages[order].clone(), self.plan.params.clone());
        let handle = running.spawn(async move {
            let ran = if !alone && failpoints::out_of_memory(&format!("stage:{}", stage.name)) {
                Err(results.exhausted(&format!("stage `{}`", stage.name), "armed by FIDELIS_FAILPOINT"))
            } else {
                run(&ctx, &results, &stage, &params, form).await
            };
            Done::Ran(order, alone, ran.map(Box::new))
        });
        self.computing.push(handle);
    }

    /// The error the run stops with when `error` stopped it: the failure of a stage's data
    /// tests, if the tests still running find one (a stage failing beside them may fail
    /// on the very data they test, and the message should say what is wrong with it),
    /// else `error`. The loads and stages still running are stopped first.
    async fn tests_first(&mut self, error: Error, running: &mut JoinSet<Done>) -> Error {
        for job in self.computing.drain(..) {
            job.abort();
        }
        while let Some(joined) = running.join_next().await {
            if let Ok(Done::Tested(order, _, Ok(tested))) = joined
                && let Some(failure) = tested.failure(&self.plan.stages[order].name)
            {
                return failure;
            }
        }
        error
    }

    /// Starts the tests of the stage at `order`, which has run, on `partitions` partitions
    /// (`alone`: with no other job running, frugally). They run frugally when the stage did.
    fn start_tests(&self, order: usize, partitions: usize, alone: bool, running: &mut JoinSet<Done>) {
        let (ctx, results, sink, absent) =
            (self.ctx.clone(), self.results.clone(), self.sink.clone(), self.absent_sources());
        let stage = self.plan.stages[order].clone();
        let report = self.stage_reports.iter().find(|(ran, _)| *ran == order).map(|(_, report)| report);
        let rows = report.map_or(0, |report| report.rows);
        let form = Form { partitions, frugal: alone || report.is_some_and(|report| report.memory_frugal) };
        running.spawn(async move {
            let tested = async {
                if !alone && failpoints::out_of_memory(&format!("tests:{}", stage.name)) {
                    let work = format!("the tests of stage `{}`", stage.name);
                    return Err(results.exhausted(&work, "armed by FIDELIS_FAILPOINT"));
                }
                let tests_ctx = SessionContext::new_with_state(stage_state(&ctx, form, &results.budget())?);
                quality::run(&tests_ctx, &stage, rows, &absent, &sink, &results).await
            };
            Done::Tested(order, alone, tested.await)
        });
    }

    /// What `job` reads, for its share of the threads: a stage, the tables its query
    /// reads; tests, the stage's result and the tables they refer to; a load, not known
    /// yet (its files are listed when it starts). Only a stage reading sources alone (a
    /// staging stage: filters, projections and sorts of raw rows) takes a share by its
    /// bytes. The others take an equal share: how many partitions a stage runs on changes
    /// its batches, and with them the last bits of floating-point sums (`lttv_curve`'s
    /// running sum of logs); a share by bytes would make that follow which stages happen to
    /// run beside it far more often.
    fn reads(&self, job: &Job) -> threads::Reads {
        let is_source = |table: &String| self.plan.sources.iter().any(|source| &source.name == table);
        let (tables, by_bytes) = match job {
            Job::Run(order) => {
                let reads = &self.plan.stages[*order].sql_reads;
                (reads.clone(), reads.iter().all(is_source))
            }
            Job::Test(order) => (Readers::of_tests(self.plan.stages[*order]), false),
            Job::Load(_) | Job::Skip { .. } => return threads::Reads { bytes: None, by_bytes: false },
        };
        let bytes = tables.iter().filter_map(|table| self.sizes.get(table)).map(|(bytes, _)| bytes).sum();
        threads::Reads { bytes: Some(bytes), by_bytes }
    }

    /// Whether `stage` should run in its memory-frugal form from the start: when what it
    /// reads lives on disk or takes more than a quarter of the memory pool. Not on a
    /// cluster: there the stage runs in the executors' memory, split into their tasks, and
    /// runs again frugally only if that runs out.
    fn frugal(&self, stage: &Stage) -> bool {
        if self.results.cluster().is_some() {
            return false;
        }
        let inputs = stage.depends_on.iter().filter_map(|name| self.sizes.get(name));
        let (bytes, on_disk) = inputs.fold((0, false), |(bytes, on_disk), (b, d)| (bytes + b, on_disk || *d));
        on_disk || bytes > self.results.budget().pool_bytes() as u64 / 4
    }

    /// The optional sources loaded without files (a test reading one is skipped).
    fn absent_sources(&self) -> Vec<String> {
        self.manifest
            .sources
            .iter()
            .filter(|(_, report)| report.status == "absent")
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Logs `message` and keeps it for the manifest.
    fn warn(&mut self, origin: Origin, message: String) {
        warn!("{message}");
        self.warnings.push((origin, message));
    }

    /// Where `source` comes among the plan's sources.
    fn source_origin(&self, source: &Source) -> Origin {
        Origin::Source(self.plan.sources.iter().position(|s| s.name == source.name).unwrap_or(usize::MAX))
    }

    /// Records the stage at `order` skipped for `reason`, and that it no longer reads
    /// anything.
    fn skip(&mut self, order: usize, reason: String) {
        let stage = self.plan.stages[order];
        self.warn(Origin::Stage(order), reason);
        self.skipped.push(&stage.name);
        self.readers.done(&self.ctx, &stage.depends_on);
    }

    /// Records a loaded source in the manifest and stages its quarantine table (or marks
    /// an earlier run's as stale).
    async fn loaded(&mut self, source: &Source, loaded: Loaded) -> Result<()> {
        let Loaded { report, quarantine, size, warnings, duration_ms } = loaded;
        self.sizes.insert(source.name.clone(), size);
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
            self.absent(source, &report.url);
        }
        let origin = self.source_origin(source);
        if report.rows_quarantined > 0 {
            self.warn(origin, format!("source `{}`: {} rows quarantined", source.name, report.rows_quarantined));
        }
        for message in warnings {
            self.warn(origin, message);
        }
        let quarantine_table = format!("_quarantine/{}", source.name);
        match quarantine {
            Some(rows) => {
                let (file, table) =
                    self.sink.stage_table(&quarantine_table, quarantine_schema(), rows.batches()).await?;
                self.files.push(file);
                self.manifest.quarantine.insert(source.name.clone(), table);
            }
            None => self.stale.push(self.sink.partition(&quarantine_table)),
        }
        self.manifest.sources.insert(source.name.clone(), report);
        Ok(())
    }

    /// Records that optional `source` has no files: the metrics needing it have no data.
    fn absent(&mut self, source: &Source, url: &str) {
        for metric in &source.metrics {
            if !self.manifest.metrics_without_data.contains(metric) {
                self.manifest.metrics_without_data.push(metric.clone());
            }
        }
        let metrics = match source.metrics.is_empty() {
            true => "the metrics that need it".to_string(),
            false => source.metrics.join(", "),
        };
        let message = format!("optional source `{}` has no files at {url}: {metrics} have no data", source.name);
        self.warn(self.source_origin(source), message);
    }

    /// Records a finished stage: its report, its output table, the results it released.
    fn ran(&mut self, order: usize, ran: Result<Box<Ran>>, schedule: &mut Schedule<'a>) -> Result<()> {
        let stage = self.plan.stages[order];
        let ran = match ran {
            Ok(ran) => ran,
            Err(Error::Data(reason)) if stage.on_error == OnError::Warn => {
                self.skip(order, format!("stage `{}` skipped (on_error: warn): {reason}", stage.name));
                schedule.finished(order, true);
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let Ran { result, form, spilled_bytes, counts, facts, duration_ms } = *ran;
        schedule.finished(order, false);
        self.sizes.insert(stage.name.clone(), (result.bytes, result.on_disk()));
        let spilled_bytes = spilled_bytes + result.spilled_bytes();
        info!(
            stage = %stage.name,
            rows = result.rows,
            duration_ms = duration_ms as u64,
            partitions = form.partitions,
            frugal = form.frugal,
            spilled_bytes,
            "stage finished"
        );
        for (name, value) in &facts {
            info!(stage = %stage.name, fact = %name, %value, "stage fact");
        }
        for (name, count) in counts.iter().filter(|(_, count)| **count > 0) {
            self.warn(Origin::Stage(order), format!("stage `{}`: {count} rows are {name}", stage.name));
        }
        let report = StageReport {
            name: stage.name.clone(),
            rows: result.rows,
            duration_ms,
            spilled_bytes,
            partitions: form.partitions,
            memory_frugal: form.frugal,
            counts,
            facts,
        };
        self.stage_reports.push((order, report));
        if self.plan.tables.contains(&stage.name) {
            self.write(order, &stage.name, &result);
        }
        // What its tests read besides (its own result, the tables they refer to) is
        // released when they are done.
        self.readers.done(&self.ctx, &stage.sql_reads);
        if !self.readers.is_read(&stage.name) {
            release(&self.ctx, &stage.name);
        }
        Ok(())
    }

    /// Records the tests of the stage at `order`: their results and warnings, or the
    /// failure that stops the run; releases what they read.
    fn tested(&mut self, order: usize, tested: Tested) -> Result<()> {
        let stage = self.plan.stages[order];
        if let Some(failure) = tested.failure(&stage.name) {
            return Err(failure);
        }
        info!(
            stage = %stage.name,
            tests = tested.results.len(),
            duration_ms = tested.duration_ms as u64,
            "stage tested"
        );
        for message in tested.warnings {
            self.warn(Origin::Stage(order), message);
        }
        self.manifest.tests.extend(tested.results);
        self.readers.done(&self.ctx, &Readers::of_tests(stage));
        Ok(())
    }

    /// Writes the output table `name` to staging while later stages run.
    fn write(&mut self, order: usize, name: &str, result: &Arc<Stored>) {
        let (sink, table, stored) = (self.sink.clone(), name.to_string(), Arc::clone(result));
        self.writes.spawn(async move {
            let (file, report) = sink.stage_table(&table, Arc::clone(&stored.schema), stored.batches()).await?;
            // The walk may have released it already: then this is its last holder.
            drop_aside(stored);
            Ok((order, file, report))
        });
    }

    /// Waits for the output tables, renders the reports and completes the manifest.
    async fn finish(mut self) -> Result<Staged> {
        let mut written = self.writes.join_all().await.into_iter().collect::<Result<Vec<_>>>()?;
        written.sort_by_key(|(order, _, _)| *order);
        for (order, file, table) in written {
            self.files.push(file);
            self.manifest.tables.insert(self.plan.stages[order].name.clone(), table);
        }
        // A skipped table's partition from an earlier run would claim to be this run's.
        let skipped_tables = self.skipped.iter().filter(|s| self.plan.tables.iter().any(|t| t == *s));
        self.stale.extend(skipped_tables.map(|s| self.sink.partition(s)));
        self.manifest.spilled_bytes = self.manifest.stages.iter().map(|s| s.spilled_bytes).sum::<u64>()
            + self.manifest.sources.values().map(|s| s.spilled_bytes).sum::<u64>();
        if !self.plan.pipeline.reports.is_empty() {
            if self.plan.runs_everything() {
                let staged = stage_reports(self.plan, self.sink, &mut self.manifest).await?;
                self.files.extend(staged);
            } else {
                info!("reports are rendered by full runs only (not with --only)")
            }
        }
        Ok((self.files, self.stale, self.manifest))
    }
}

/// Loads `source`, stores its rows in `results`, checks its freshness and volume against
/// `baseline`, and registers its rows for the stages.
async fn load(
    ctx: &SessionContext,
    results: &Results,
    source: &Source,
    location: &Location,
    baseline: &Baseline,
) -> Result<Loaded> {
    let clock = Instant::now();
    let step = Step::start(format!("loading source {}", source.name));
    let loaded = sources::load(ctx, source, location, baseline.timezone, results).await?;
    let size = (loaded.rows.bytes, loaded.rows.on_disk());
    let (rows, mut report, quarantine) = (Arc::new(loaded.rows), loaded.report, loaded.quarantine);
    let warnings = sources::assess(ctx, source, &rows, &mut report, baseline).await?;
    ctx.register_table(source.name.as_str(), rows.table())
        .map_err(|e| Error::runtime(format!("registering source `{}`", source.name), e))?;
    drop(step);
    Ok(Loaded { report, quarantine, size, warnings, duration_ms: clock.elapsed().as_millis() })
}

/// A memory-frugal stage keeps a hash join when its build side is estimated at no more
/// than this share (1/n) of the memory pool; larger ones sort and merge.
const SMALL_JOIN_SHARE: usize = 16;

/// How a stage is run: on how many partitions, and whether in its memory-frugal form.
#[derive(Debug, Clone, Copy)]
struct Form {
    partitions: usize,
    frugal: bool,
}

/// Runs `stage`, stores and registers its result and counts its declared `counts` and
/// `facts` (its tests are a job of their own). A stage that runs out of memory in its
/// fast form runs again in its memory-frugal form.
async fn run(
    ctx: &SessionContext,
    results: &Results,
    stage: &Stage,
    params: &IndexMap<String, crate::config::ParamValue>,
    form: Form,
) -> Result<Ran> {
    let clock = Instant::now();
    let step = Step::start(format!("running stage {}", stage.name));
    let (executed, executed_form) = match stages::execute(
        &stage_state(ctx, form, &results.budget())?,
        stage,
        params,
        results,
    )
    .await
    {
        Err(Error::Resources(reason)) if !form.frugal => {
            warn!(stage = %stage.name, "stage ran out of memory; running it again in its memory-frugal form: {reason}");
            let frugal = Form { frugal: true, ..form };
            (stages::execute(&stage_state(ctx, frugal, &results.budget())?, stage, params, results).await?, frugal)
        }
        executed => (executed?, form),
    };
    let result = Arc::new(executed.result);
    ctx.register_table(stage.name.as_str(), result.table())
        .map_err(|e| Error::runtime(format!("registering stage `{}`", stage.name), e))?;
    let counts = stages::count(ctx, stage).await?;
    let facts = stages::facts(ctx, stage).await?;
    drop(step);
    let duration_ms = clock.elapsed().as_millis();
    Ok(Ran { result, form: executed_form, spilled_bytes: executed.spilled_bytes, counts, facts, duration_ms })
}

/// The session state a stage is planned and run in, a copy of the session's (changing
/// it leaves the session and its tables as they are). A stage on one partition is spared
/// repartitioning, two-phase aggregation and sorted merges; several partitions let it use
/// more cores. The memory-frugal form joins by sorting and merging (sorts spill to disk;
/// a hash join's table must fit in memory) and evaluates window functions as rows stream
/// by instead of holding them all.
fn stage_state(ctx: &SessionContext, form: Form, budget: &MemoryBudget) -> Result<SessionState> {
    let mut state = ctx.state();
    // The stage's share of the thread budget: its partitions and its models' threads.
    functions::share_threads(&mut state, form.partitions).map_err(|e| Error::runtime("preparing a stage", e))?;
    let options = state.config_mut().options_mut();
    options.execution.target_partitions = form.partitions;
    if !form.frugal {
        return Ok(state);
    }
    options.optimizer.prefer_hash_join = false;
    functions::stream_windows(&mut state).map_err(|e| Error::runtime("preparing a memory-frugal stage", e))?;
    Ok(joins::sort_merge_large_joins(state, budget.pool_bytes() / SMALL_JOIN_SHARE))
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

/// Takes `table` out of the session and drops its rows on a blocking thread: freeing a
/// result of gigabytes (removing its files, returning its memory) takes a second or more,
/// which the walk would otherwise spend with nothing new started (at 10 M customers,
/// 1-2 s after each of the largest results was released).
fn release(ctx: &SessionContext, table: &str) {
    if let Ok(Some(rows)) = ctx.deregister_table(table) {
        drop_aside(rows);
    }
}

/// Drops `value` on a blocking thread: the last holder of a large result frees it there.
fn drop_aside<T: Send + 'static>(value: T) {
    tokio::task::spawn_blocking(move || drop(value));
}

/// How many stages and stages' tests still have to read each table. At zero the table
/// is released, so a run holds only what later work needs, not every intermediate
/// result. A stage with tests is done with what its query reads when it has run, and with
/// what its tests read (its own result, the tables they refer to) when they have.
struct Readers<'p>(HashMap<&'p str, usize>);

impl<'p> Readers<'p> {
    fn new(stages: &[&'p Stage]) -> Self {
        let mut readers = HashMap::new();
        for stage in stages {
            for dependency in &stage.depends_on {
                *readers.entry(dependency.as_str()).or_default() += 1;
            }
            if !stage.tests.is_empty() {
                *readers.entry(stage.name.as_str()).or_default() += 1;
            }
        }
        Readers(readers)
    }

    /// What the tests of `stage` read and its query does not.
    fn of_tests(stage: &Stage) -> Vec<String> {
        let referred = stage.depends_on.iter().filter(|table| !stage.sql_reads.contains(table));
        referred.cloned().chain([stage.name.clone()]).collect()
    }

    /// A stage that read `tables` is done (run or skipped).
    fn done(&mut self, ctx: &SessionContext, tables: &[String]) {
        for table in tables {
            if let Some(count) = self.0.get_mut(table.as_str()) {
                *count -= 1;
                if *count == 0 {
                    release(ctx, table);
                }
            }
        }
    }

    /// Whether any stage reads `table`.
    fn is_read(&self, table: &str) -> bool {
        self.0.contains_key(table)
    }
}
