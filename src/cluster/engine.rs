//! How an executor runs a task: Ballista's own engine, except that tasks report no
//! operator metrics to the scheduler.
//!
//! Ballista 55's scheduler cuts a stage's plan down to each task's partitions: below a
//! `UNION ALL`, a branch none of whose partitions the task reads becomes an `EmptyExec`,
//! which has no metrics where the branch's file scans had some. The scheduler then finds
//! the task's list of operator metrics shorter than the stage's, rejects the task's
//! status with it ("task metrics array size 7 does not equal … 8"), and the stage never
//! completes: the job hangs (the shipped `clv_segments`, whose customers' and models'
//! rows are a `UNION ALL` of two file scans, did). The metrics only feed the scheduler's
//! logs and UI; a status without them is taken as it is.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ballista_core::JobId;
use ballista_core::serde::protobuf::{RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport};
use ballista_executor::execution_engine::{DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::prelude::SessionConfig;

/// Ballista's default engine, its tasks without operator metrics.
pub struct WithoutMetrics(DefaultExecutionEngine);

impl WithoutMetrics {
    pub fn new() -> Self {
        WithoutMetrics(DefaultExecutionEngine::new())
    }
}

impl ExecutionEngine for WithoutMetrics {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> Result<Arc<dyn QueryStageExecutor>> {
        let stage = self.0.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(Task(stage)))
    }
}

/// A task of Ballista's engine that reports no operator metrics.
struct Task(Arc<dyn QueryStageExecutor>);

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[async_trait]
impl QueryStageExecutor for Task {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        self.0.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        Vec::new()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.0.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> Result<Vec<WindowStateReport>> {
        self.0.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.0.collect_column_stats()
    }
}
