//! The DataFusion session every query of fidelis runs in: its configuration and
//! fidelis's functions.

use std::sync::Arc;

use datafusion::execution::config::SessionConfig;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;

use crate::functions;
use crate::memory::MemoryBudget;

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
    // Stored results split themselves among a stage's partitions in runs of whole batches
    // (`results::scan`); DataFusion's own split of an Arrow IPC file reads each byte range
    // all at once.
    config.options_mut().optimizer.repartition_file_scans = false;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    functions::register(&ctx);
    ctx
}

/// A session with fidelis's functions registered and no memory limit, for planning.
pub fn session() -> SessionContext {
    session_on(Arc::new(RuntimeEnv::default()), &MemoryBudget::resolve(None))
}
