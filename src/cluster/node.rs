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
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionState;
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

    /// `config` with fidelis's codecs and Ballista's static planner. Ballista 55's
    /// adaptive planner can put a shuffle between a sort and the merge that needs its
    /// order (the scheduler then fails the plan's sanity check and the job never ends),
    /// so jobs are planned whole before they run; each stage's partitions are still spread
    /// over the executors.
    pub fn configure(&self, config: SessionConfig) -> SessionConfig {
        config
            .with_ballista_logical_extension_codec(self.logical_codec())
            .with_ballista_physical_extension_codec(self.physical_codec())
            .with_ballista_adaptive_query_planner(false)
    }

    /// The scheduler's session for a client's `config`: DataFusion's and Ballista's
    /// features, fidelis's functions and stores, and a planner for written results.
    pub fn scheduler_session(&self, config: SessionConfig) -> Result<SessionState> {
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(self.runtime(None)?)
            .with_optimizer_rules(ballista_default_optimizer_rules())
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
