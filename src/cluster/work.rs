//! A run on a cluster, from the client's side: its sources and stage results live as
//! Parquet files in the run's work location (a folder of its staging area on the output
//! store, which every node reaches, removed with the staging area after the run), and
//! its stages run as the cluster's jobs, which write their results there themselves.
//! This is the cluster's side of [`crate::results::Cluster`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ballista::extension::SessionStateExt;
use ballista_core::config::BALLISTA_JOB_NAME;
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::CancelJobParams;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::LogicalPlanNode;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::task::JoinSet;
use tracing::warn;

use super::ClusterUrl;
use super::forms;
use super::node::Node;
use super::write::{WriteResult, WrittenFile};
use crate::config::Stage;
use crate::error::{Error, Result};
use crate::functions;
use crate::results::{Cluster, SharedRows, Stored};
use crate::sinks::ParquetFile;
use crate::sources::StoreReader;
use crate::storage::Location;

/// Rows of the row groups of the files the client writes (see `super::write`).
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// How long the client waits for the scheduler to answer before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A run's connection to a cluster.
pub struct Connection {
    url: ClusterUrl,
    /// The run's work location.
    work: Location,
    /// Partitions of each stage's query (`--cluster-partitions`).
    partitions: usize,
    node: Node,
    /// Results stored so far: the next result's folder number.
    stored: AtomicUsize,
    /// Jobs started and not finished, by number: cancelled when the run closes.
    running: std::sync::Mutex<HashMap<usize, Arc<dyn ExecutionPlan>>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection({}, work {})", self.url, self.work)
    }
}

impl Connection {
    /// Connects to the scheduler at `url` for a run whose work location is `work`, its
    /// stages on `partitions` partitions; fails at once if the scheduler does not answer.
    pub async fn open(url: &ClusterUrl, work: Location, partitions: usize) -> Result<Self> {
        let unreachable = |reason: String| {
            Error::Runtime(format!(
                "cannot reach the cluster scheduler at {url}: {reason}; check that `fidelis cluster scheduler` runs there \
                 and that this host can connect to it"
            ))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, SchedulerGrpcClient::connect(url.endpoint())).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(unreachable(error.to_string())),
            Err(_) => return Err(unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
        Ok(Connection {
            url: url.clone(),
            work,
            partitions,
            node: Node::new(),
            stored: AtomicUsize::new(0),
            running: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// A new folder of the work location for result `name`, and its number.
    fn folder(&self, name: &str) -> (usize, Location) {
        let number = self.stored.fetch_add(1, Ordering::Relaxed);
        (number, self.work.child(&format!("{number:04}-{}", name.replace('/', "__"))))
    }

    /// Runs `plan` on the cluster, its result written below a new folder for `name`.
    async fn execute(&self, state: &SessionState, name: &str, plan: LogicalPlan) -> DfResult<Stored> {
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        let (number, folder) = self.folder(name);
        let write = WriteResult::plan(forms::distribute(plan)?, folder.to_string())?;
        // The job is named for the stage in the scheduler's logs and UI. (A state rebuilt
        // with a new configuration would get an empty default catalog: the stage's tables
        // would be gone from the run's session.)
        let mut state = state.clone();
        state.config_mut().options_mut().set(BALLISTA_JOB_NAME, name)?;
        let job = state.create_physical_plan(&write).await?;
        self.running.lock().map_err(poisoned)?.insert(number, Arc::clone(&job));
        let batches = collect(Arc::clone(&job), state.task_ctx()).await;
        self.running.lock().map_err(poisoned)?.remove(&number);
        let files = WrittenFile::read(&batches?)?;
        match files.first() {
            Some(first) => {
                let schema = self.written_schema(first).await?;
                self.stored(schema, &files)
            }
            None => {
                // No partition had rows: one empty file gives the result its columns.
                let location = folder.child("part-00000.parquet");
                let empty = write_file(&location, &schema, futures::stream::empty().boxed()).await?;
                self.stored(schema, &[empty])
            }
        }
    }

    /// The columns of a result as the executors computed them, from the footer of one of
    /// its files. A local run stores what its executed plan says; the client's logical
    /// plan can know more (that `COALESCE(x, false)` has no nulls) and would change what
    /// is published.
    async fn written_schema(&self, file: &WrittenFile) -> DfResult<SchemaRef> {
        let location = self.node.storage().resolve(&file.url).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut reader = StoreReader::new(location, file.bytes);
        let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::default()).await?;
        Ok(Arc::clone(metadata.schema()))
    }

    /// The result made of `files`.
    fn stored(&self, schema: SchemaRef, files: &[WrittenFile]) -> DfResult<Stored> {
        let rows = files.iter().map(|f| f.rows).sum();
        let bytes = files.iter().map(|f| f.bytes).sum();
        let shared = WorkFiles::new(Arc::clone(&schema), files, &self.node)?;
        Ok(Stored::shared(schema, rows, bytes, Box::new(shared)))
    }

    /// Cancels the jobs still running (a failed or stopped run's).
    async fn cancel(&self) {
        let jobs: Vec<String> = match self.running.lock() {
            Ok(mut running) => running
                .drain()
                .filter_map(|(_, job)| job.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()?.job_id())
                .map(|id| id.to_string())
                .collect(),
            Err(_) => return,
        };
        if jobs.is_empty() {
            return;
        }
        let mut client = match SchedulerGrpcClient::connect(self.url.endpoint()).await {
            Ok(client) => client,
            Err(error) => {
                warn!("could not cancel the run's jobs on {}: {error}", self.url);
                return;
            }
        };
        for job_id in jobs {
            if let Err(error) = client.cancel_job(CancelJobParams { job_id: job_id.clone() }).await {
                warn!("could not cancel job {job_id} on {}: {error}", self.url);
            }
        }
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> DataFusionError {
    DataFusionError::Internal("the cluster's job list is poisoned".into())
}

#[async_trait]
impl Cluster for Connection {
    fn session(&self, local: SessionContext) -> Result<SessionContext> {
        let state = local.state();
        let config = self.node.configure(state.config().clone());
        let state = SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .build()
            .upgrade_for_ballista(self.url.endpoint())
            .map_err(|e| Error::runtime(format!("connecting to the cluster at {}", self.url), e))?;
        // Ballista's upgrade brings its own function set; fidelis's come back on top.
        let ctx = SessionContext::new_with_state(state);
        functions::register(&ctx);
        Ok(ctx)
    }

    fn partitions(&self) -> usize {
        self.partitions
    }

    async fn store(&self, name: &str, schema: SchemaRef, streams: Vec<SendableRecordBatchStream>) -> DfResult<Stored> {
        let (_, folder) = self.folder(name);
        let mut writes = JoinSet::new();
        for (index, stream) in streams.into_iter().enumerate() {
            let location = folder.child(&format!("part-{index:05}.parquet"));
            let schema = Arc::clone(&schema);
            writes.spawn(async move { write_file(&location, &schema, stream.boxed()).await });
        }
        let mut files = Vec::new();
        while let Some(written) = writes.join_next().await {
            files.push(written.map_err(|e| DataFusionError::External(Box::new(e)))??);
        }
        if files.is_empty() {
            let location = folder.child("part-00000.parquet");
            files.push(write_file(&location, &schema, futures::stream::empty().boxed()).await?);
        }
        files.sort_by(|a, b| a.url.cmp(&b.url));
        self.stored(schema, &files)
    }

    async fn run(&self, state: &SessionState, stage: &Stage, plan: LogicalPlan) -> Result<Stored> {
        self.execute(state, &stage.name, plan).await.map_err(|error| job_error(stage, &self.url, error))
    }

    async fn close(&self) {
        self.cancel().await;
    }
}

/// Writes `batches` as the Parquet file at `location`.
async fn write_file(
    location: &Location,
    schema: &SchemaRef,
    mut batches: BoxStream<'_, DfResult<RecordBatch>>,
) -> DfResult<WrittenFile> {
    let failed = |error: Error| DataFusionError::External(Box::new(error));
    let mut file = ParquetFile::create_as_computed(location, schema, ROW_GROUP_ROWS).map_err(failed)?;
    while let Some(batch) = batches.next().await {
        file.write(&batch?).await.map_err(failed)?;
    }
    let (rows, bytes) = file.finish().await.map_err(failed)?;
    Ok(WrittenFile { url: location.to_string(), rows, bytes })
}

/// What a failed job means for the run. Executors report a task's error as text (its
/// Rust debug form), so a model that cannot be fitted and work that does not fit an
/// executor's memory are recognised by their names in it.
fn job_error(stage: &Stage, url: &ClusterUrl, error: DataFusionError) -> Error {
    let text = error.to_string();
    let origin = format!("stage `{}` ({})", stage.name, stage.origin);
    if ["InvalidInput {", "InsufficientData {", "NotConverged {"].iter().any(|name| text.contains(name)) {
        return Error::Data(format!("{origin}: the model cannot be fitted to the data (on the cluster {url}): {text}"));
    }
    if text.contains("ResourcesExhausted") {
        return Error::Resources(format!(
            "{origin} does not fit in an executor's memory even with spilling: {text}\n  \
             help: give the executors more memory (`fidelis cluster executor --memory-limit`, or their containers' \
             limits), fewer vcores each, or more partitions (`--cluster-partitions`)"
        ));
    }
    Error::runtime(format!("{origin} failed on the cluster {url}"), error)
}

/// A result's Parquet files in the work location.
struct WorkFiles {
    table: Arc<dyn TableProvider>,
    /// What reads them back on the client: a session of one partition, so the files are
    /// read in order, on a runtime reaching the work location.
    reader: SessionContext,
}

impl WorkFiles {
    fn new(schema: SchemaRef, files: &[WrittenFile], node: &Node) -> DfResult<Self> {
        let paths = files.iter().map(|file| ListingTableUrl::parse(&file.url)).collect::<DfResult<Vec<_>>>()?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(paths).with_listing_options(options).with_schema(schema);
        let reader =
            SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(1), node.runtime(None)?);
        Ok(WorkFiles { table: Arc::new(ListingTable::try_new(config)?), reader })
    }
}

impl SharedRows for WorkFiles {
    fn batches(&self) -> BoxStream<'static, DfResult<RecordBatch>> {
        let scan = self.reader.read_table(Arc::clone(&self.table));
        futures::stream::once(async move { scan?.execute_stream().await }).try_flatten().boxed()
    }

    fn table(&self) -> Arc<dyn TableProvider> {
        Arc::clone(&self.table)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::LogicalPlanBuilder;
    use datafusion::prelude::ParquetReadOptions;

    use super::*;
    use crate::cluster::{Standalone, block_on_deep_stack};
    use crate::storage::Storage;

    /// The stage of the shipped pipeline that numbers every customer's purchase days, as
    /// the cluster runs it: Ballista's distributed EXPLAIN, its stages one per line.
    #[test]
    fn purchase_days_numbers_islands_in_every_partition_of_the_cluster() {
        block_on_deep_stack(|| async {
            let dir = tempfile::tempdir().expect("a folder");
            let orders = dir.path().join("stg_transactions.parquet").display().to_string();
            let local = SessionContext::new();
            let values = "SELECT arrow_cast(c, 'Utf8View') AS customer_id, CAST(d AS DATE) AS order_date, \
                 CAST(a AS DECIMAL(18, 2)) AS net_amount, true AS is_purchase \
                 FROM (VALUES ('C1', '2024-01-05', 10), ('C2', '2024-01-06', 20), ('C1', '2024-03-01', 5)) AS t(c, d, a)";
            local
                .sql(values)
                .await
                .expect("orders")
                .write_parquet(&orders, Default::default(), None)
                .await
                .expect("written");

            let cluster = Standalone::start(2, 1).await.expect("an in-process cluster");
            let work = Storage::new().resolve(&dir.path().join("work").display().to_string()).expect("a location");
            let connection = Connection::open(cluster.url(), work, 4).await.expect("connected");
            let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
            let ctx = connection.session(ctx).expect("a cluster session");
            ctx.register_parquet("stg_transactions", &orders, ParquetReadOptions::default()).await.expect("registered");
            let sql =
                std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/intermediate/purchase_days.sql"))
                    .expect("the stage's SQL");
            let plan = ctx
                .sql(&sql)
                .await
                .expect("planned")
                .with_param_values(vec![("active_window_days", ScalarValue::Int64(Some(365)))])
                .expect("bound")
                .into_unoptimized_plan();
            let stages = |plan: LogicalPlan| {
                let ctx = ctx.clone();
                async move {
                    let explain =
                        LogicalPlanBuilder::from(plan).explain(false, false).and_then(LogicalPlanBuilder::build);
                    let frame = ctx.execute_logical_plan(explain.expect("an EXPLAIN")).await.expect("explained");
                    let batches = frame.collect().await.expect("rows");
                    let (kinds, plans) =
                        (batches[0].column(0).as_string::<i32>(), batches[0].column(1).as_string::<i32>());
                    let distributed = (0..batches[0].num_rows()).find(|&i| kinds.value(i) == "distributed_plan");
                    plans.value(distributed.expect("a distributed plan")).to_string()
                }
            };
            // The window's stage reads four partitions of rows shuffled by key bucket,
            // each sorted by bucket, customer and day, and numbers them in four tasks.
            let distributed = stages(forms::distribute(plan.clone()).expect("distributed")).await;
            let window =
                distributed.split("=========").find(|stage| stage.contains("WindowAggExec")).expect("a window");
            assert!(window.contains("ShuffleWriterExec: partitioning: Hash([__fidelis_key_bucket@4], 4)"), "{window}");
            assert!(
                window.contains("SortExec: expr=[__fidelis_key_bucket@4 ASC NULLS LAST, customer_id@0 ASC NULLS LAST, order_date@1 ASC NULLS LAST], preserve_partitioning=[true]"),
                "{window}"
            );
            assert!(
                window.contains("UnresolvedShuffleExec: stage=2, partitioning: Hash([__fidelis_key_bucket@4], 4)"),
                "{window}"
            );
            // As a local run plans it, one task sorts every row and numbers them.
            let local = stages(plan).await;
            let window = local.split("=========").find(|stage| stage.contains("WindowAggExec")).expect("a window");
            assert!(window.contains("ShuffleWriterExec: partitioning: UnknownPartitioning(1)"), "{window}");
            assert!(
                window.contains(
                    "SortExec: expr=[customer_id@0 ASC NULLS LAST, order_date@1 ASC NULLS LAST], preserve_partitioning=[false]\n        CoalescePartitionsExec"
                ),
                "{window}"
            );
        });
    }
}
