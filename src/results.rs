//! Where a loaded source and a stage's result live while later stages read them: in
//! memory while they fit the run's share for results (`MemoryBudget::results_bytes`),
//! otherwise in local Arrow IPC files that readers stream batch by batch — or, for a run
//! on a cluster, as files its nodes read (see [`Cluster`]). The executor stores every
//! source and stage result here, so this is the one place that decides.
//!
//! A result is stored partition by partition, as the query produced it, so a stage
//! reading it gets the same partitions back. Memory a result holds is reserved from the
//! run's memory pool (the operators' pool shrinks by as much) and released when the
//! result is dropped; its files are deleted then.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::utils::memory::RecordBatchMemoryCounter;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::spill_file::{SpillFile, SpillWriter};
use datafusion::execution::{SendableRecordBatchStream, SessionState};
use datafusion::logical_expr::{Expr, LogicalPlan, TableType};
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::task::JoinSet;

use crate::config::Stage;
use crate::error::Error;
use crate::memory::MemoryBudget;

mod scan;
use scan::StoredScan;

/// A cluster a run's stages run on (`crate::cluster`): every source and stage result
/// lives as files in the run's work location on a store its nodes read, and a stage is
/// one of its jobs, which writes its result there itself.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The session the run's stages are planned in, from `local` (its configuration,
    /// functions and runtime): its queries run on the cluster.
    fn session(&self, local: SessionContext) -> crate::error::Result<SessionContext>;

    /// Partitions each stage's query runs on.
    fn partitions(&self) -> usize;

    /// Stores the batches of `streams` (one per partition) as `name`'s result.
    async fn store(
        &self,
        name: &str,
        schema: SchemaRef,
        streams: Vec<SendableRecordBatchStream>,
    ) -> datafusion::error::Result<Stored>;

    /// Runs `stage`'s `plan` as a job of the cluster, its result stored as it computes it.
    async fn run(&self, state: &SessionState, stage: &Stage, plan: LogicalPlan) -> crate::error::Result<Stored>;

    /// Ends the run's use of the cluster: jobs still running (a failed or stopped run's)
    /// are cancelled.
    async fn close(&self);
}

/// A result a [`Cluster`] stored, in files its nodes read.
pub trait SharedRows: Send + Sync {
    /// Every batch, file after file.
    fn batches(&self) -> BoxStream<'static, datafusion::error::Result<RecordBatch>>;

    /// The rows as a table the cluster's nodes can read.
    fn table(&self) -> Arc<dyn TableProvider>;
}

/// Stores results for one run.
#[derive(Clone)]
pub struct Results {
    runtime: Arc<RuntimeEnv>,
    budget: MemoryBudget,
    /// The folder spill files go below (`--spill-dir`).
    spill_dir: PathBuf,
    /// The run's own folder in it, holding every local file of the run; removed by
    /// [`Results::close`] (or when the last clone is dropped).
    run_dir: Arc<tempfile::TempDir>,
    /// The run's thread budget: jobs at once and Parquet decoders (see `crate::threads`).
    threads: usize,
    /// Bytes all results together may hold in memory.
    capacity: usize,
    /// Bytes they hold now.
    held: Arc<AtomicUsize>,
    /// The cluster the run's stages run on: then every result is stored there.
    cluster: Option<Arc<dyn Cluster>>,
}

/// A stored result: its rows, in memory or in local files, by partition.
pub struct Stored {
    pub schema: SchemaRef,
    pub rows: u64,
    /// Bytes it holds in memory, or writes to disk.
    pub bytes: u64,
    place: Place,
    /// The order of the rows within each partition, when the query that produced them
    /// guaranteed one: a later stage's plan relies on it instead of sorting again, and
    /// groups or merge-joins rows as they stream by (a stage ending in ORDER BY
    /// customer_id spares its readers a sort of millions of rows each).
    ordering: Option<LexOrdering>,
}

enum Place {
    Memory {
        partitions: Vec<Vec<RecordBatch>>,
        _held: Vec<Held>,
    },
    /// One IPC file per partition.
    Files(Vec<Arc<dyn SpillFile>>),
    /// A cluster's files.
    Shared(Box<dyn SharedRows>),
}

impl Stored {
    /// A result `rows` a cluster stored: `bytes` in files.
    pub fn shared(schema: SchemaRef, rows: u64, bytes: u64, shared: Box<dyn SharedRows>) -> Stored {
        Stored { schema, rows, bytes, place: Place::Shared(shared), ordering: None }
    }

    /// The result with its rows known to be in `ordering` within each partition (the
    /// output ordering of the plan that produced them, over the result's columns). Only
    /// its leading plain columns are kept: what a later stage can name.
    pub fn ordered(self, ordering: Option<&LexOrdering>) -> Stored {
        let columns = ordering.into_iter().flatten().take_while(|sort| sort.expr.downcast_ref::<Column>().is_some());
        Stored { ordering: LexOrdering::new(columns.cloned()), ..self }
    }

    /// Whether the result lives on disk, in local files or a cluster's, not in memory.
    pub fn on_disk(&self) -> bool {
        !matches!(self.place, Place::Memory { .. })
    }

    /// The bytes the result wrote to local disk because memory could not hold it.
    pub fn spilled_bytes(&self) -> u64 {
        match self.place {
            Place::Files(_) => self.bytes,
            Place::Memory { .. } | Place::Shared(_) => 0,
        }
    }

    /// Every batch, partition after partition, read back one at a time.
    pub fn batches(&self) -> BoxStream<'_, datafusion::error::Result<RecordBatch>> {
        match &self.place {
            Place::Memory { partitions, .. } => {
                futures::stream::iter(partitions.iter().flatten().cloned().map(Ok)).boxed()
            }
            Place::Files(files) => {
                futures::stream::iter(files.iter().flat_map(|file| read_file(file.as_ref()))).boxed()
            }
            Place::Shared(shared) => shared.batches(),
        }
    }

    /// The result as a table for later stages.
    pub fn table(self: &Arc<Self>) -> Arc<dyn TableProvider> {
        match &self.place {
            Place::Shared(shared) => shared.table(),
            Place::Memory { .. } | Place::Files(_) => Arc::new(StoredTable(Arc::clone(self))),
        }
    }
}

/// Memory counted against the results' share and the run's pool until dropped.
struct Held {
    reservation: MemoryReservation,
    bytes: usize,
    held: Arc<AtomicUsize>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Results {
    /// Results of a run within `budget`, spilling below `spill_dir`.
    pub fn new(budget: MemoryBudget, spill_dir: &Path, threads: usize) -> crate::error::Result<Self> {
        let run_dir = tempfile::Builder::new()
            .prefix("fidelis-spill-")
            .tempdir_in(spill_dir)
            .map_err(|e| Error::runtime(format!("cannot use spill folder {}", spill_dir.display()), e))?;
        Ok(Results {
            runtime: budget.runtime(run_dir.path())?,
            budget,
            spill_dir: spill_dir.to_path_buf(),
            run_dir: Arc::new(run_dir),
            threads,
            capacity: budget.results_bytes(),
            held: Arc::new(AtomicUsize::new(0)),
            cluster: None,
        })
    }

    /// These results, stored on `cluster`, where the run's stages run.
    pub fn on_cluster(self, cluster: Arc<dyn Cluster>) -> Self {
        Results { cluster: Some(cluster), ..self }
    }

    /// The cluster the run's stages run on, if any.
    pub fn cluster(&self) -> Option<&Arc<dyn Cluster>> {
        self.cluster.as_ref()
    }

    /// The session the run's stages are planned in, from `local`: `local` itself, or
    /// on a cluster, a session whose queries run there.
    pub fn stage_session(&self, local: SessionContext) -> crate::error::Result<SessionContext> {
        match &self.cluster {
            Some(cluster) => cluster.session(local),
            None => Ok(local),
        }
    }

    /// The DataFusion runtime of the run: its memory pool and spill folder.
    pub fn runtime(&self) -> &Arc<RuntimeEnv> {
        &self.runtime
    }

    /// The run's thread budget.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The run's memory budget.
    pub fn budget(&self) -> MemoryBudget {
        self.budget
    }

    /// The error for `work` (e.g. "stage `rfm`") that did not fit the budget even with
    /// spilling, or ran out of spill space (`reason`, DataFusion's words).
    pub fn exhausted(&self, work: &str, reason: &str) -> Error {
        Error::Resources(format!(
            "{work} does not fit in the memory budget of {} even with spilling to {}: {reason}\n  \
             help: raise the budget with --memory-limit (or FIDELIS_MEMORY_LIMIT, or the container's memory limit), \
             or, if the spill folder's disk is full, point --spill-dir at a disk with more free space",
            self.budget,
            self.spill_dir.display()
        ))
    }

    /// The error `work` failed with: if the run's resources caused it, what [`exhaustion`]
    /// says, otherwise a runtime error saying `context`.
    ///
    /// [`exhaustion`]: Results::exhaustion
    pub fn failure(&self, work: &str, context: impl fmt::Display, error: DataFusionError) -> Error {
        self.exhaustion(work, &error).unwrap_or_else(|| Error::runtime(context, error))
    }

    /// The error `error` of `work` is, if the run's resources caused it: work that did not
    /// fit the memory budget even with spilling, or a spill folder whose disk filled up
    /// (the system's "no space left on device", which reaches DataFusion as an I/O error).
    fn exhaustion(&self, work: &str, error: &DataFusionError) -> Option<Error> {
        match error.find_root() {
            DataFusionError::ResourcesExhausted(reason) => Some(self.exhausted(work, reason)),
            _ if disk_full(error) => Some(self.exhausted(work, "no space left on the spill folder's disk")),
            _ => None,
        }
    }

    /// Stores the batches of `streams` (one per partition) as `name`'s result, reading
    /// the partitions concurrently. As soon as one partition no longer fits in memory,
    /// every partition goes to files: a result lives in one place.
    pub async fn store(
        &self,
        name: &str,
        schema: SchemaRef,
        streams: Vec<SendableRecordBatchStream>,
    ) -> datafusion::error::Result<Stored> {
        if let Some(cluster) = &self.cluster {
            return cluster.store(name, schema, streams).await;
        }
        let to_disk = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for (index, stream) in streams.into_iter().enumerate() {
            let writer = PartitionWriter::new(self.clone(), format!("{name}[{index}]"), &schema, Arc::clone(&to_disk));
            tasks.spawn(async move { (index, writer.consume(stream).await) });
        }
        let mut partitions: Vec<(usize, Partition)> = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            let (index, partition) = joined.map_err(|e| DataFusionError::External(Box::new(e)))?;
            partitions.push((index, partition?));
        }
        partitions.sort_by_key(|(index, _)| *index);
        let partitions: Vec<Partition> = partitions.into_iter().map(|(_, partition)| partition).collect();
        if to_disk.load(Ordering::Relaxed) {
            let mut files = Vec::with_capacity(partitions.len());
            let mut rows = 0;
            let mut bytes = 0;
            for (index, partition) in partitions.into_iter().enumerate() {
                let file = match partition {
                    Partition::File { file, rows: r } => {
                        rows += r;
                        file
                    }
                    Partition::Memory { batches, .. } => {
                        let mut writer = IpcFile::create(&self.runtime, &format!("{name}[{index}]"), &schema)?;
                        for batch in &batches {
                            rows += batch.num_rows() as u64;
                            writer.write(batch)?;
                        }
                        writer.finish()?
                    }
                };
                bytes += file.size().unwrap_or(0);
                files.push(file);
            }
            return Ok(Stored { schema, rows, bytes, place: Place::Files(files), ordering: None });
        }
        let mut held = Vec::with_capacity(partitions.len());
        let mut batches = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let Partition::Memory { batches: part, held: h } = partition else {
                unreachable!("no partition went to disk");
            };
            batches.push(part);
            held.push(h);
        }
        let rows = batches.iter().flatten().map(|b| b.num_rows() as u64).sum();
        let bytes = held.iter().map(|h| h.bytes as u64).sum();
        Ok(Stored { schema, rows, bytes, place: Place::Memory { partitions: batches, _held: held }, ordering: None })
    }

    /// A writer storing the batches pushed to it as `name`'s result, as `store` does.
    pub fn writer(&self, name: &str, schema: SchemaRef) -> ResultWriter {
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let batches = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|batch| (Ok(batch), receiver))
        });
        let stream = RecordBatchStreamAdapter::new(Arc::clone(&schema), batches);
        let (results, name) = (self.clone(), name.to_string());
        let task = tokio::spawn(async move { results.store(&name, schema, vec![Box::pin(stream)]).await });
        ResultWriter { sender: Some(sender), task }
    }

    /// The run's own folder, which every local file of the run goes below.
    pub fn spill_dir(&self) -> &Path {
        self.run_dir.path()
    }

    /// Removes the run's local files now, success or failure: work still winding down
    /// (a cancelled task) may hold some open, which the system then frees when it lets go.
    /// Jobs still running on the run's cluster are cancelled.
    pub async fn close(&self) {
        let _ = std::fs::remove_dir_all(self.run_dir.path());
        if let Some(cluster) = &self.cluster {
            cluster.close().await;
        }
    }

    /// Counts `bytes` more against the results' share, if they fit.
    fn try_hold(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held + bytes <= self.capacity).then_some(held + bytes)
            })
            .is_ok()
    }
}

/// Whether `error` is the system saying a disk (or the user's quota on it) is full,
/// wherever it sits in the chain of errors: Arrow's IPC writer, say, wraps the spill
/// file's DataFusion error in an I/O error of its own.
fn disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        next = error.source();
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded) {
                return true;
            }
            // An I/O error's source is its inner error's source, not the inner error.
            next = io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)).or(next);
        }
    }
    false
}

/// Stores batches pushed one at a time (see [`Results::writer`]).
pub struct ResultWriter {
    sender: Option<tokio::sync::mpsc::Sender<RecordBatch>>,
    task: tokio::task::JoinHandle<datafusion::error::Result<Stored>>,
}

impl ResultWriter {
    /// Stores `batch` after the batches pushed before it.
    pub async fn push(&mut self, batch: RecordBatch) -> datafusion::error::Result<()> {
        let Some(sender) = &self.sender else { return Ok(()) };
        if sender.send(batch).await.is_err() {
            // The store stopped: its error is what `finish` returns.
            self.sender = None;
        }
        Ok(())
    }

    /// The stored result (or why storing failed).
    pub async fn finish(mut self) -> datafusion::error::Result<Stored> {
        self.sender = None;
        (&mut self.task).await.map_err(|e| DataFusionError::External(Box::new(e)))?
    }
}

/// One partition of a result being stored.
enum Partition {
    Memory { batches: Vec<RecordBatch>, held: Held },
    File { file: Arc<dyn SpillFile>, rows: u64 },
}

/// Receives one partition's batches, in memory until they no longer fit.
struct PartitionWriter {
    results: Results,
    name: String,
    schema: SchemaRef,
    to_disk: Arc<AtomicBool>,
}

impl PartitionWriter {
    fn new(results: Results, name: String, schema: &SchemaRef, to_disk: Arc<AtomicBool>) -> Self {
        PartitionWriter { results, name, schema: Arc::clone(schema), to_disk }
    }

    async fn consume(self, mut stream: SendableRecordBatchStream) -> datafusion::error::Result<Partition> {
        let reservation =
            MemoryConsumer::new(format!("result {}", self.name)).register(&self.results.runtime.memory_pool);
        let mut held = Held { reservation, bytes: 0, held: Arc::clone(&self.results.held) };
        let mut counter = RecordBatchMemoryCounter::new();
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let bytes = counter.count_batch(&batch);
            if !self.to_disk.load(Ordering::Relaxed) && self.results.try_hold(bytes) {
                if held.reservation.try_grow(bytes).is_ok() {
                    held.bytes += bytes;
                    batches.push(batch);
                    continue;
                }
                // The pool is fuller than the results' share: give the share back.
                self.results.held.fetch_sub(bytes, Ordering::Relaxed);
            }
            self.to_disk.store(true, Ordering::Relaxed);
            let mut file = IpcFile::create(&self.results.runtime, &self.name, &self.schema)?;
            let mut rows = 0;
            for held_batch in batches.iter().chain(std::iter::once(&batch)) {
                rows += held_batch.num_rows() as u64;
                file.write(held_batch)?;
            }
            drop(batches);
            drop(held);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                file.write(&batch)?;
            }
            return Ok(Partition::File { file: file.finish()?, rows });
        }
        Ok(Partition::Memory { batches, held })
    }
}

/// An Arrow IPC file being written in the run's spill folder.
struct IpcFile {
    file: Arc<dyn SpillFile>,
    writer: FileWriter<std::io::BufWriter<Box<dyn SpillWriter>>>,
}

impl IpcFile {
    fn create(runtime: &RuntimeEnv, name: &str, schema: &SchemaRef) -> datafusion::error::Result<Self> {
        let file = runtime.disk_manager.create_tmp_file(&format!("storing {name}"))?;
        // Buffered: IPC writes each of a batch's buffers (and its padding) on its own.
        let writer = FileWriter::try_new(std::io::BufWriter::with_capacity(1 << 20, file.open_writer()?), schema)?;
        Ok(IpcFile { file, writer })
    }

    fn write(&mut self, batch: &RecordBatch) -> datafusion::error::Result<()> {
        Ok(self.writer.write(&compact(batch)?)?)
    }

    fn finish(mut self) -> datafusion::error::Result<Arc<dyn SpillFile>> {
        self.writer.finish()?;
        Ok(self.file)
    }
}

/// `batch` with its string views holding only the text they use: a view column that
/// points into a larger buffer (a slice of a file's column, say) would otherwise write
/// that whole buffer to disk with every batch.
fn compact(batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
    if !batch.schema().fields().iter().any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView)) {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8View => Arc::new(column.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(column.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(column),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// The batches of an IPC file, read one at a time.
fn read_file(file: &dyn SpillFile) -> Box<dyn Iterator<Item = datafusion::error::Result<RecordBatch>> + Send> {
    match scan::read(file, None) {
        Ok(reader) => Box::new(reader.map(|batch| batch.map_err(DataFusionError::from))),
        Err(error) => Box::new(std::iter::once(Err(error))),
    }
}

/// A stored result as a table: a memory table, or a scan of its IPC files with the
/// row count known, so the planner can pick join sides as it does for memory tables.
struct StoredTable(Arc<Stored>);

impl fmt::Debug for StoredTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredTable({} rows, {} bytes)", self.0.rows, self.0.bytes)
    }
}

#[async_trait]
impl TableProvider for StoredTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.0.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        match &self.0.place {
            Place::Memory { partitions, .. } => {
                let source = MemorySourceConfig::try_new(partitions, Arc::clone(&self.0.schema), projection.cloned())?
                    .try_with_sort_information(self.0.ordering.iter().cloned().collect())?;
                Ok(DataSourceExec::from_data_source(source))
            }
            Place::Shared(_) => unreachable!("a cluster's results are tables of their own"),
            Place::Files(_) => {
                let partitions = state.config().target_partitions();
                Ok(Arc::new(StoredScan::new(&self.0, projection.cloned(), limit, partitions)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBudget;
    use datafusion::arrow::array::{Int64Array, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::error::ArrowError;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::{displayable, execute_stream_partitioned};
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("text", DataType::Utf8View, false),
        ]));
        let numbers: Int64Array = (from..from + rows).collect();
        let texts: StringViewArray =
            (from..from + rows).map(|n| Some(format!("a text longer than twelve bytes {n}"))).collect();
        RecordBatch::try_new(schema, vec![Arc::new(numbers), Arc::new(texts)]).unwrap()
    }

    async fn stored_and_read_back(capacity: usize) -> (bool, Vec<RecordBatch>, u64) {
        let spill = tempfile::tempdir().unwrap();
        let mut results = Results::new(MemoryBudget::resolve(Some(1 << 30)), spill.path(), 2).unwrap();
        results.capacity = capacity;
        let runtime = Arc::clone(results.runtime());
        let batches: Vec<RecordBatch> = (0..10).map(|i| batch(i * 1000, 1000)).collect();
        let mut writer = results.writer("numbers", batches[0].schema());
        for batch in batches {
            writer.push(batch).await.unwrap();
        }
        let stored = Arc::new(writer.finish().await.unwrap());
        let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
        ctx.register_table("numbers", stored.table()).unwrap();
        let read = ctx
            .sql("SELECT n, text FROM numbers WHERE n % 1000 = 999 ORDER BY n")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let streamed: usize =
            stored.batches().map(|b| b.unwrap().num_rows()).fold(0, |a, b| async move { a + b }).await;
        assert_eq!(streamed, 10_000, "every row reads back");
        (stored.on_disk(), read, stored.rows)
    }

    #[tokio::test]
    async fn results_that_fit_stay_in_memory_and_others_go_to_files_with_the_same_rows() {
        let (on_disk, in_memory, rows) = stored_and_read_back(64 << 20).await;
        assert!(!on_disk);
        assert_eq!(rows, 10_000);
        let (on_disk, from_files, rows) = stored_and_read_back(100_000).await;
        assert!(on_disk, "a result larger than the share lives in files");
        assert_eq!(rows, 10_000);
        assert_eq!(in_memory, from_files);
        let texts: Vec<&str> = from_files.iter().flat_map(|b| b.column(1).as_string_view().iter().flatten()).collect();
        assert_eq!(texts.len(), 10);
        assert_eq!(texts[0], "a text longer than twelve bytes 999");
    }

    /// The plan of a query grouping and ordering by `n` over a result stored from a sorted
    /// query, in memory or in files (by `capacity`), with its order kept or forgotten.
    async fn plan_over_sorted_result(capacity: usize, keep_order: bool) -> String {
        let spill = tempfile::tempdir().unwrap();
        let mut results = Results::new(MemoryBudget::resolve(Some(1 << 30)), spill.path(), 2).unwrap();
        results.capacity = capacity;
        let config = SessionConfig::new().with_target_partitions(1);
        let ctx = SessionContext::new_with_config_rt(config, Arc::clone(results.runtime()));
        let batches: Vec<RecordBatch> = (0..10).rev().map(|i| batch(i * 1000, 1000)).collect();
        let unsorted = MemTable::try_new(batches[0].schema(), vec![batches]).unwrap();
        ctx.register_table("unsorted", Arc::new(unsorted)).unwrap();
        let sorted = ctx.sql("SELECT n, text FROM unsorted ORDER BY n").await.unwrap();
        let sorted = sorted.create_physical_plan().await.unwrap();
        let ordering = sorted.properties().output_ordering().filter(|_| keep_order);
        let streams = execute_stream_partitioned(Arc::clone(&sorted), ctx.task_ctx()).unwrap();
        let stored = results.store("sorted", sorted.schema(), streams).await.unwrap().ordered(ordering);
        assert_eq!(stored.on_disk(), capacity < 64 << 20);
        ctx.register_table("numbers", Arc::new(stored).table()).unwrap();
        let query = ctx.sql("SELECT n, COUNT(*) FROM numbers GROUP BY n ORDER BY n").await.unwrap();
        displayable(query.create_physical_plan().await.unwrap().as_ref()).indent(true).to_string()
    }

    #[tokio::test]
    async fn a_result_keeps_the_order_its_query_guaranteed_so_its_readers_do_not_sort_again() {
        for capacity in [64 << 20, 100_000] {
            let kept = plan_over_sorted_result(capacity, true).await;
            assert!(!kept.contains("SortExec"), "no sort over a sorted result:\n{kept}");
            assert!(kept.contains("ordering_mode=Sorted"), "the rows are grouped as they stream by:\n{kept}");
            let forgotten = plan_over_sorted_result(capacity, false).await;
            assert!(forgotten.contains("SortExec"), "without its order the result is sorted again:\n{forgotten}");
        }
    }

    #[test]
    fn a_full_spill_disk_is_a_resources_error_that_says_what_to_do() {
        let spill = tempfile::tempdir().unwrap();
        let results = Results::new(MemoryBudget::resolve(Some(1 << 30)), spill.path(), 2).unwrap();
        let full = || std::io::Error::from_raw_os_error(28); // ENOSPC
        // As Arrow's IPC writer reports a spill file's error.
        let wrapped = std::io::Error::other(DataFusionError::IoError(full()));
        let arrow = DataFusionError::ArrowError(Box::new(ArrowError::IoError("writing".into(), wrapped)), None);
        for error in [
            arrow.context("spilling a sort"),
            DataFusionError::IoError(full()),
            DataFusionError::External(Box::new(full())),
            DataFusionError::ResourcesExhausted("the pool is full".into()),
        ] {
            let Some(Error::Resources(message)) = results.exhaustion("stage `rfm`", &error) else {
                panic!("{error} is not a resources error");
            };
            assert!(message.starts_with("stage `rfm` does not fit"), "{message}");
            assert!(message.contains("--spill-dir") && message.contains("--memory-limit"), "{message}");
        }
        let missing = DataFusionError::IoError(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(results.exhaustion("stage `rfm`", &missing).is_none(), "other I/O errors are not about resources");
    }

    #[test]
    fn compacting_views_keeps_their_values() {
        let big = batch(0, 1000);
        let slice = big.slice(10, 5);
        let compacted = compact(&slice).unwrap();
        assert_eq!(compacted, slice);
        let buffers: usize = compacted.column(1).as_string_view().data_buffers().iter().map(|b| b.len()).sum();
        assert!(buffers < 5 * 64, "only the five texts are kept, not the 1000 of the batch ({buffers} bytes)");
    }
}
