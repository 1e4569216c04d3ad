//! Writing a stage's result where later stages read it, on the executors: the client puts
//! the stage's plan under a [`WriteResult`] node, which the scheduler plans as
//! [`WriteResultExec`]. Each task writes each of its partitions' rows as one Parquet file
//! into the result's folder of the run's work location and returns the file, its rows and
//! bytes; only those few rows come back to the client. A partition without rows writes no
//! file.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;

use crate::sinks::ParquetFile;
use crate::storage::Storage;

/// Rows a work file's row groups hold: few enough that a writing task buffers little,
/// many enough that reading them back stays cheap; and row groups are what scans of
/// one file split into.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// What writing a result returns: one row per file written.
static WRITTEN: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("file", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]))
});

/// A file of a result written by a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Its URL.
    pub url: String,
    pub rows: u64,
    pub bytes: u64,
}

impl WrittenFile {
    /// The files listed in batches of [`WriteResultExec`]'s output.
    pub fn read(batches: &[RecordBatch]) -> Result<Vec<WrittenFile>> {
        let mut files = Vec::new();
        for batch in batches {
            let column = |i: usize| batch.column(i);
            let (urls, rows, bytes) = (
                column(0).as_any().downcast_ref::<StringArray>(),
                column(1).as_any().downcast_ref::<UInt64Array>(),
                column(2).as_any().downcast_ref::<UInt64Array>(),
            );
            let (Some(urls), Some(rows), Some(bytes)) = (urls, rows, bytes) else {
                return Err(DataFusionError::Internal(format!("unexpected written files: {:?}", batch.schema())));
            };
            for row in 0..batch.num_rows() {
                files.push(WrittenFile {
                    url: urls.value(row).to_string(),
                    rows: rows.value(row),
                    bytes: bytes.value(row),
                });
            }
        }
        files.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(files)
    }
}

/// The logical node: write `input`'s rows below `folder` (a URL).
#[derive(Debug, Clone)]
pub struct WriteResult {
    input: LogicalPlan,
    folder: String,
    schema: DFSchemaRef,
}

impl WriteResult {
    /// `input` written below `folder`.
    pub fn new(input: LogicalPlan, folder: String) -> Result<Self> {
        let schema = Arc::new(DFSchema::try_from(Arc::clone(&WRITTEN))?);
        Ok(WriteResult { input, folder, schema })
    }

    /// The folder the result is written to.
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// The plan of `input` written below this node's folder.
    pub fn plan(input: LogicalPlan, folder: String) -> Result<LogicalPlan> {
        let node = WriteResult::new(input, folder)?;
        Ok(LogicalPlan::Extension(datafusion::logical_expr::Extension { node: Arc::new(node) }))
    }
}

impl PartialEq for WriteResult {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input && self.folder == other.folder
    }
}

impl Eq for WriteResult {}

impl PartialOrd for WriteResult {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.folder.cmp(&other.folder) {
            Ordering::Equal => self.input.partial_cmp(&other.input),
            unequal => Some(unequal),
        }
    }
}

impl Hash for WriteResult {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.folder.hash(state);
    }
}

impl UserDefinedLogicalNodeCore for WriteResult {
    fn name(&self) -> &str {
        "WriteResult"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "WriteResult: folder={}", self.folder)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.pop().ok_or_else(|| DataFusionError::Internal("WriteResult has one input".into()))?;
        WriteResult::new(input, self.folder.clone())
    }
}

/// Each partition of `input` written as a Parquet file below `folder`.
pub struct WriteResultExec {
    input: Arc<dyn ExecutionPlan>,
    folder: String,
    storage: Arc<Storage>,
    properties: Arc<PlanProperties>,
}

impl WriteResultExec {
    /// Writes `input`'s partitions below `folder`, opening stores through `storage`.
    pub fn new(input: Arc<dyn ExecutionPlan>, folder: String, storage: Arc<Storage>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&WRITTEN)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        WriteResultExec { input, folder, storage, properties: Arc::new(properties) }
    }

    /// The folder the result is written to.
    pub fn folder(&self) -> &str {
        &self.folder
    }
}

impl fmt::Debug for WriteResultExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriteResultExec({})", self.folder)
    }
}

impl DisplayAs for WriteResultExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "WriteResultExec: folder={}", self.folder)
    }
}

impl ExecutionPlan for WriteResultExec {
    fn name(&self) -> &str {
        "WriteResultExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    // Each partition is written as it comes: repartitioning the input would only cost
    // (and would lose the order of a sorted result, which comes as one partition).
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| DataFusionError::Internal("WriteResultExec has one input".into()))?;
        Ok(Arc::new(WriteResultExec::new(input, self.folder.clone(), Arc::clone(&self.storage))))
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let url = format!("{}/{}", self.folder, file_name(context.task_id().as_deref(), partition));
        let rows = self.input.execute(partition, context)?;
        let storage = Arc::clone(&self.storage);
        let written = futures::stream::once(async move {
            let file = write(rows, &storage, url).await?;
            let files: Vec<WrittenFile> = file.into_iter().collect();
            Ok(RecordBatch::try_new(
                Arc::clone(&WRITTEN),
                vec![
                    Arc::new(StringArray::from_iter_values(files.iter().map(|f| f.url.as_str()))),
                    Arc::new(UInt64Array::from_iter_values(files.iter().map(|f| f.rows))),
                    Arc::new(UInt64Array::from_iter_values(files.iter().map(|f| f.bytes))),
                ],
            )?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&WRITTEN), written)))
    }
}

/// The name of the file partition `partition` of task `task` writes. An executor runs a
/// task on a slice of the stage's partitions, numbered from 0 in every task: the task's
/// identity (Ballista's `TID job/stage.attempt/task.attempt`) tells the files apart, and
/// a task run again writes a file of its own beside what the failed attempt left.
fn file_name(task: Option<&str>, partition: usize) -> String {
    match task {
        Some(task) => {
            let task: String = task.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
            format!("part-{task}-{partition:05}.parquet")
        }
        None => format!("part-{partition:05}.parquet"),
    }
}

/// Writes `rows` as the Parquet file at `url`, if there are any.
async fn write(mut rows: SendableRecordBatchStream, storage: &Storage, url: String) -> Result<Option<WrittenFile>> {
    let failed = |error: crate::Error| DataFusionError::External(Box::new(error));
    let schema = rows.schema();
    let mut file: Option<ParquetFile> = None;
    while let Some(batch) = rows.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let parquet = match &mut file {
            Some(parquet) => parquet,
            None => {
                let location = storage.resolve(&url).map_err(failed)?;
                file.insert(ParquetFile::create_as_computed(&location, &schema, ROW_GROUP_ROWS).map_err(failed)?)
            }
        };
        parquet.write(&batch).await.map_err(failed)?;
    }
    match file {
        Some(parquet) => {
            let (rows, bytes) = parquet.finish().await.map_err(failed)?;
            Ok(Some(WrittenFile { url, rows, bytes }))
        }
        None => Ok(None),
    }
}

/// Plans [`WriteResult`] nodes as [`WriteResultExec`].
struct WritePlanner {
    storage: Arc<Storage>,
}

impl WritePlanner {
    fn new(storage: Arc<Storage>) -> Self {
        WritePlanner { storage }
    }
}

#[async_trait]
impl ExtensionPlanner for WritePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let (Some(write), [input]) = (node.as_any().downcast_ref::<WriteResult>(), physical_inputs) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(WriteResultExec::new(Arc::clone(input), write.folder.clone(), Arc::clone(&self.storage)))))
    }
}

/// The query planner of a cluster's scheduler: DataFusion's, which also plans
/// [`WriteResult`] nodes.
pub struct ClusterPlanner {
    planner: DefaultPhysicalPlanner,
}

impl fmt::Debug for ClusterPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterPlanner")
    }
}

impl ClusterPlanner {
    /// A planner whose writes open stores through `storage`.
    pub fn new(storage: Arc<Storage>) -> Self {
        ClusterPlanner {
            planner: DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(WritePlanner::new(storage))]),
        }
    }
}

#[async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(&self, plan: &LogicalPlan, session: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        self.planner.create_physical_plan(plan, session).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_writes_files_of_its_own() {
        assert_eq!(file_name(Some("TID 038HFSVBVJ000/2.0/7.1"), 0), "part-TID-038HFSVBVJ000-2-0-7-1-00000.parquet");
        assert_ne!(file_name(Some("TID j/2.0/7.0"), 0), file_name(Some("TID j/2.0/8.0"), 0));
        assert_eq!(file_name(None, 3), "part-00003.parquet");
    }
}
