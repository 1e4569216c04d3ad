//! What every process of a cluster knows of fidelis: its SQL functions, its object stores
//! (through [`Storage`], credentials from the process's environment), how plans with
//! fidelis's nodes cross processes ([`super::codec`]), and how the scheduler plans them
//! ([`ClusterPlanner`]).

use std::path::Path;
use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::optimizer::ballista_default_optimizer_rules;
use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::codec::{LogicalCodec, PhysicalCodec};
use super::stores::StoreRegistry;
use super::write::ClusterPlanner;
use crate::functions;
use crate::storage::Storage;

/// The fidelis side of one cluster process.
#[derive(Clone)]
pub struct Node {
    storage: Arc<Storage>,
}

impl Node {
    /// A node opening stores through its own [`Storage`].
    pub fn new() -> Self {
        Node { storage: Arc::new(Storage::new()) }
    }

    /// How the node opens stores.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// How logical plans are encoded, from the client to the scheduler.
    pub fn logical_codec(&self) -> Arc<LogicalCodec> {
        Arc::new(LogicalCodec::new())
    }

    /// How physical plans are encoded, from the scheduler to the executors.
    pub fn physical_codec(&self) -> Arc<PhysicalCodec> {
        Arc::new(PhysicalCodec::new(Arc::clone(&self.storage)))
    }

    /// A runtime reaching the node's object stores, spilling below `spill_dir` (the system's
    /// temporary folder when `None`).
    pub fn runtime(&self, spill_dir: Option<&Path>) -> Result<Arc<RuntimeEnv>> {
        let builder = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::new(StoreRegistry::new(Arc::clone(&self.storage))));
        let builder = match spill_dir {
            Some(dir) => builder.with_temp_file_path(dir),
            None => builder,
        };
        builder.build_arc()
    }

    /// The session configuration a cluster process starts from: Ballista's, configured
    /// as [`Node::configure`] says.
    pub fn config(&self) -> SessionConfig {
        self.configure(SessionConfig::new_with_ballista())
    }

    /// `config` with fidelis's codecs, and without the Ballista 55 features that gave wrong
    /// results or jobs that never end on the shipped pipeline:
    /// - the adaptive planner: it put a shuffle between a sort and the merge needing its
    ///   order (the scheduler then failed the plan's sanity check and the job hung). The
    ///   static planner plans a job whole before it runs; each stage's partitions are
    ///   still spread over the executors.
    /// - broadcast joins (`CollectLeft`, the small side sent whole to every task): an outer
    ///   join of `loyalty_types` lost three quarters of its rows. Every join is a
    ///   partitioned one, both sides shuffled by the join key.
    /// - dynamic filters: the scheduler chooses a stage's join sides again once its inputs
    ///   are measured, which DataFusion refuses for a join whose filter is built (the
    ///   task's status was lost and the job hung). Their common switch is off too, as
    ///   processes that receive the settings one by one apply it last.
    /// - sorting partitions apart and merging them after (`repartition_sorts`): the
    ///   running sums of `monthly_sales`, a window over a join whose sorted partitions
    ///   were merged, saw the months out of order. A sort that needs one order sorts
    ///   all its rows in one task; windows partitioned by a key (`crate::cluster::forms`)
    ///   still sort each partition.
    /// - uncorrelated scalar subqueries run once inside the plan (DataFusion 55's
    ///   `ScalarSubqueryExec`, which `rfm` and `clv` use to keep their customers' order):
    ///   the executors rejected the tasks holding one. As before DataFusion 55, such a
    ///   subquery is joined on instead (its one row to every row).
    pub fn configure(&self, config: SessionConfig) -> SessionConfig {
        let mut config = config
            .with_ballista_logical_extension_codec(self.logical_codec())
            .with_ballista_physical_extension_codec(self.physical_codec())
            .with_ballista_adaptive_query_planner(false)
            .with_ballista_broadcast_join_threshold_bytes(0)
            .with_ballista_broadcast_join_threshold_rows(0);
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.repartition_sorts = false;
        optimizer.enable_physical_uncorrelated_scalar_subquery = false;
        optimizer.hash_join_single_partition_threshold = 0;
        optimizer.hash_join_single_partition_threshold_rows = 0;
        optimizer.enable_dynamic_filter_pushdown = false;
        optimizer.enable_join_dynamic_filter_pushdown = false;
        optimizer.enable_topk_dynamic_filter_pushdown = false;
        optimizer.enable_aggregate_dynamic_filter_pushdown = false;
        config
    }

    /// The scheduler's session for a client's `config`: DataFusion's and Ballista's
    /// features, fidelis's functions and stores, and a planner for written results.
    ///
    /// Without DataFusion's answers from statistics (`aggregate_statistics`): the work
    /// files' footers know every column's minimum, maximum and row count, which would turn
    /// `MIN(x)` over a whole result into a constant that cannot be null, and the column
    /// would be published as required where a local run, whose results have no such
    /// statistics, publishes it as nullable.
    pub fn scheduler_session(&self, config: SessionConfig) -> Result<SessionState> {
        let physical_rules =
            PhysicalOptimizer::new().rules.into_iter().filter(|rule| rule.name() != "aggregate_statistics");
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(self.runtime(None)?)
            .with_optimizer_rules(ballista_default_optimizer_rules())
            .with_physical_optimizer_rules(physical_rules.collect())
            .with_query_planner(Arc::new(ClusterPlanner::new(Arc::clone(&self.storage))))
            .build();
        Ok(with_functions(state))
    }

    /// Every function an executor may meet in a plan: DataFusion's and fidelis's.
    pub fn function_registry(&self) -> BallistaFunctionRegistry {
        let state = SessionStateBuilder::new().with_default_features().build();
        BallistaFunctionRegistry::from(&with_functions(state))
    }
}

/// `state` with fidelis's functions registered.
pub fn with_functions(state: SessionState) -> SessionState {
    let ctx = SessionContext::new_with_state(state);
    functions::register(&ctx);
    ctx.state()
}
