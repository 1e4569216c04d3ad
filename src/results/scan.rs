//! Reading a stored result's IPC files back, as the scan a later stage's query starts
//! from. DataFusion's Arrow file scan checks every batch it reads as it would a file from
//! anywhere, every string's UTF-8 included: checking UTF-8 took 5 % of the CPU of a run
//! of 10 M customers under 4 GiB (perf), about half of it re-checking stored results,
//! text this run had checked when it first read it. These files are written by this run,
//! from arrays it built, in its own folder, so this scan reads them without checking
//! again (at 1 M customers under 300 MiB: 23 s of CPU instead of 26).

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::ipc::reader::FileReader;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::execution::spill_file::SpillFile;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::coop::cooperative;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, SchedulingType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, SplitMetrics};
use datafusion::physical_plan::stream::{BatchSplitStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, StatisticsArgs,
};

use super::{Place, Stored};

/// The scan of a result stored in files: one partition per file (or, for rows in no
/// known order, per run of a file's batches), its rows in the order the result keeps,
/// `projection` of its columns, at most `limit` rows in all.
pub(super) struct StoredScan {
    /// What each partition reads, holding its file for as long as the scan may read it.
    parts: Vec<Part>,
    /// The result's rows and bytes.
    rows: u64,
    bytes: u64,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl StoredScan {
    /// The scan of `stored` on (up to) `partitions` partitions. Rows in no known order are
    /// split, as DataFusion's file scans split files, into runs of each file's batches read
    /// in parallel: a stage on several partitions then reads and filters on all of them,
    /// without a round-robin exchange behind one reader (which held batches back for the
    /// slower partition and, at 10 M customers under 4 GiB, spilled 1 GB of
    /// `stg_transactions`' input). Rows in order keep one partition per file.
    pub(super) fn new(
        stored: &Stored,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
        partitions: usize,
    ) -> Result<Self> {
        let Place::Files(files) = &stored.place else {
            return Err(DataFusionError::Internal("a stored scan reads a result stored in files".into()));
        };
        let schema = match &projection {
            Some(columns) => Arc::new(stored.schema.project(columns)?),
            None => Arc::clone(&stored.schema),
        };
        let ordering = stored.ordering.as_ref().and_then(|ordering| projected(ordering, projection.as_deref()));
        let parts = match ordering.is_none() && limit.is_none() && files.len() < partitions {
            true => split(files, partitions.div_ceil(files.len()))?,
            false => files.iter().map(|file| Part { file: Arc::clone(file), batches: None }).collect(),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new_with_orderings(schema, ordering),
            Partitioning::UnknownPartitioning(parts.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        .with_scheduling_type(SchedulingType::Cooperative);
        Ok(StoredScan {
            parts,
            rows: stored.rows,
            bytes: stored.bytes,
            projection,
            limit,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

/// Each of `files` as (up to) `runs` runs of its batches, of about the same length (a
/// file without batches, a partition that produced no rows, gives none).
fn split(files: &[Arc<dyn SpillFile>], runs: usize) -> Result<Vec<Part>> {
    let mut parts = Vec::with_capacity(files.len() * runs);
    for file in files {
        let batches = read(file.as_ref(), Some(Vec::new()))?.num_batches();
        let length = batches.div_ceil(runs).max(1);
        let starts = (0..batches).step_by(length);
        parts.extend(
            starts.map(|start| Part { file: Arc::clone(file), batches: Some(start..(start + length).min(batches)) }),
        );
    }
    Ok(parts)
}

/// A partition of a stored scan: a file's batches, all or a run of them.
struct Part {
    file: Arc<dyn SpillFile>,
    batches: Option<Range<usize>>,
}

/// The leading terms of `ordering` (over plain columns of the whole result) whose columns
/// `projection` keeps, renumbered: the order the projected rows are known to be in.
fn projected(ordering: &LexOrdering, projection: Option<&[usize]>) -> Option<LexOrdering> {
    let Some(projection) = projection else { return Some(ordering.clone()) };
    let kept = ordering.iter().map_while(|sort| {
        let column = sort.expr.downcast_ref::<Column>()?;
        let position = projection.iter().position(|&index| index == column.index())?;
        let expr: Arc<dyn PhysicalExpr> = Arc::new(Column::new(column.name(), position));
        Some(PhysicalSortExpr { expr, options: sort.options })
    });
    LexOrdering::new(kept)
}

/// The batches of a stored `file`, `projection` of their columns, one at a time.
pub(super) fn read(file: &dyn SpillFile, projection: Option<Vec<usize>>) -> Result<FileReader<BufReader<File>>> {
    let path = file.path().ok_or_else(|| DataFusionError::Internal("stored results are local files".into()))?;
    let reader = FileReader::try_new(BufReader::new(File::open(path)?), projection)?;
    // SAFETY: the file was written by this run (`IpcFile`) from valid arrays, in the run's
    // own folder, and is deleted only with the result that holds it.
    Ok(unsafe { reader.with_skip_validation(true) })
}

impl fmt::Debug for StoredScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredScan({} rows, {:?})", self.rows, self.projection)
    }
}

impl DisplayAs for StoredScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let schema = self.schema();
        let columns: Vec<&str> = schema.fields().iter().map(|field| field.name().as_str()).collect();
        write!(f, "StoredScan: {} partitions, {} rows, columns=[{}]", self.parts.len(), self.rows, columns.join(", "))?;
        if let Some(ordering) = self.properties.output_ordering() {
            write!(f, ", output_ordering=[{ordering}]")?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StoredScan {
    fn name(&self) -> &'static str {
        "StoredScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    /// Like DataFusion's file scans: batches of at most the session's batch size, the
    /// stream yielding to other tasks as a scan should.
    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let part = self
            .parts
            .get(partition)
            .ok_or_else(|| DataFusionError::Internal(format!("no stored file for partition {partition}")))?;
        let mut reader = read(part.file.as_ref(), self.projection.clone())?;
        let wanted = match &part.batches {
            Some(batches) => {
                reader.set_index(batches.start)?;
                batches.len()
            }
            None => usize::MAX,
        };
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let mut left = self.limit.unwrap_or(usize::MAX);
        let batches = reader.take(wanted).map_while(move |batch| {
            if left == 0 {
                return None;
            }
            let batch = match batch {
                Ok(batch) if batch.num_rows() > left => batch.slice(0, left),
                Ok(batch) => batch,
                Err(error) => return Some(Err(error.into())),
            };
            left -= batch.num_rows();
            metrics.record_output(batch.num_rows());
            Some(Ok(batch))
        });
        let stream = Box::pin(RecordBatchStreamAdapter::new(self.schema(), futures::stream::iter(batches)));
        let batch_size = context.session_config().batch_size();
        let split = BatchSplitStream::new(stream, batch_size, SplitMetrics::new(&self.metrics, partition));
        Ok(Box::pin(cooperative(split)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    /// The row count is exact; the bytes are as DataFusion's file scan estimates them (exact
    /// for columns of fixed width), so that join sides are chosen as they were.
    fn statistics_from_inputs(&self, _: &[Arc<Statistics>], args: &StatisticsArgs) -> Result<Arc<Statistics>> {
        let schema = self.schema();
        let mut statistics = Statistics::new_unknown(&schema);
        if args.partition().is_some() {
            return Ok(Arc::new(statistics));
        }
        statistics.num_rows = Precision::Exact(self.rows as usize);
        statistics.total_byte_size = Precision::Inexact(self.bytes as usize);
        if self.projection.is_some() {
            statistics.calculate_total_byte_size(&schema);
        }
        Ok(Arc::new(statistics.with_fetch(self.limit, 0, 1)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBudget;
    use crate::results::Results;
    use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, StringViewArray};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::physical_plan::{StatisticsContext, collect};
    use datafusion::prelude::{SessionConfig, SessionContext};
    use futures::TryStreamExt;

    /// A result of (n, text) rows 0..1000 * `batches`, stored in files (the results' share
    /// holds nothing), known to be sorted by n and text; and the results holding its folder.
    async fn stored(batches: i64) -> (Stored, Results, tempfile::TempDir) {
        let spill = tempfile::tempdir().unwrap();
        let mut results = Results::new(MemoryBudget::resolve(Some(1 << 30)), spill.path(), 2).unwrap();
        results.capacity = 0;
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("text", DataType::Utf8View, false),
        ]));
        let mut writer = results.writer("numbers", Arc::clone(&schema));
        for from in (0..batches).map(|b| b * 1000) {
            let numbers: Int64Array = (from..from + 1000).collect();
            let texts: StringViewArray =
                (from..from + 1000).map(|n| Some(format!("a text of more than twelve bytes {n}"))).collect();
            writer
                .push(RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(numbers), Arc::new(texts)]).unwrap())
                .await
                .unwrap();
        }
        let ordering = LexOrdering::new(["n", "text"].into_iter().enumerate().map(|(index, name)| {
            PhysicalSortExpr::new_default(Arc::new(Column::new(name, index)) as Arc<dyn PhysicalExpr>)
        }));
        let stored = writer.finish().await.unwrap().ordered(ordering.as_ref());
        assert!(stored.on_disk());
        (stored, results, spill)
    }

    async fn read(scan: StoredScan, batch_size: usize) -> Vec<RecordBatch> {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(batch_size));
        collect(Arc::new(scan), ctx.task_ctx()).await.unwrap()
    }

    fn ordering(scan: &StoredScan) -> String {
        scan.properties().output_ordering().map(ToString::to_string).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_stored_scan_reads_the_rows_back_in_the_order_of_the_columns_it_keeps() {
        let (stored, _results, _spill) = stored(3).await;
        let whole = StoredScan::new(&stored, None, None, 1).unwrap();
        assert_eq!(ordering(&whole), "n@0 ASC, text@1 ASC");
        let batches = read(whole, 8192).await;
        let rows = concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(rows.num_rows(), 3000);
        let numbers: Vec<i64> = rows.column(0).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(numbers, (0..3000).collect::<Vec<_>>());
        assert_eq!(rows.column(1).as_string_view().value(2999), "a text of more than twelve bytes 2999");

        let swapped = StoredScan::new(&stored, Some(vec![1, 0]), None, 1).unwrap();
        assert_eq!(ordering(&swapped), "n@1 ASC, text@0 ASC", "both columns kept, renumbered");
        let batches = read(swapped, 8192).await;
        assert_eq!(batches[0].schema().field(0).name(), "text");
        assert_eq!(batches[0].column(0).as_string_view().value(0), "a text of more than twelve bytes 0");
        let text_only = StoredScan::new(&stored, Some(vec![1]), None, 1).unwrap();
        assert_eq!(ordering(&text_only), "", "without n the texts are in no known order");
    }

    #[tokio::test]
    async fn rows_in_no_known_order_are_read_on_every_partition_each_once() {
        let (stored, _results, _spill) = stored(7).await;
        let unordered = stored.ordered(None);
        let ctx = SessionContext::new();
        let mut numbers = Vec::new();
        for partitions in [1, 2, 3, 7, 9] {
            let scan = StoredScan::new(&unordered, None, None, partitions).unwrap();
            let expected = partitions.min(7);
            assert_eq!(scan.properties().output_partitioning().partition_count(), expected);
            numbers.clear();
            for partition in 0..expected {
                let batches: Vec<RecordBatch> =
                    scan.execute(partition, ctx.task_ctx()).unwrap().try_collect().await.unwrap();
                assert!(!batches.is_empty(), "{partitions} partitions: partition {partition} reads batches");
                numbers.extend(batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()));
            }
            assert_eq!(numbers, (0..7000).collect::<Vec<_>>(), "{partitions} partitions: runs in order, each once");
        }
    }

    #[tokio::test]
    async fn rows_in_order_keep_one_partition_per_file_and_a_limit_one_reader() {
        let (stored, _results, _spill) = stored(4).await;
        let scan = StoredScan::new(&stored, None, None, 4).unwrap();
        assert_eq!(scan.properties().output_partitioning().partition_count(), 1, "splitting would lose the order");
        let unordered = stored.ordered(None);
        let limited = StoredScan::new(&unordered, None, Some(10), 4).unwrap();
        assert_eq!(limited.properties().output_partitioning().partition_count(), 1);
    }

    #[tokio::test]
    async fn a_stored_scan_yields_batches_of_the_session_size_and_stops_at_its_limit() {
        let (stored, _results, _spill) = stored(3).await;
        let batches = read(StoredScan::new(&stored, None, None, 1).unwrap(), 256).await;
        assert!(batches.iter().all(|batch| batch.num_rows() <= 256));
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3000);
        let batches = read(StoredScan::new(&stored, None, Some(1500), 1).unwrap(), 8192).await;
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1500);
        assert_eq!(batches.last().unwrap().column(0).as_primitive::<Int64Type>().values().last(), Some(&1499));
    }

    #[tokio::test]
    async fn a_stored_scan_knows_its_rows_exactly_and_its_bytes_as_file_scans_estimate_them() {
        let (stored, _results, _spill) = stored(2).await;
        let statistics = |projection| {
            let scan = StoredScan::new(&stored, projection, None, 1).unwrap();
            StatisticsContext::new().compute(&scan, &StatisticsArgs::new()).unwrap()
        };
        let whole = statistics(None);
        assert_eq!(whole.num_rows, Precision::Exact(2000));
        assert_eq!(whole.total_byte_size, Precision::Inexact(stored.bytes as usize));
        assert_eq!(statistics(Some(vec![0])).total_byte_size, Precision::Exact(2000 * 8), "fixed-width columns");
        assert!(!statistics(Some(vec![1])).total_byte_size.is_exact().unwrap_or(false), "text is estimated");
    }
}
