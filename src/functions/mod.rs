//! Rust functions exposed to the pipeline's SQL. Each is a thin Arrow wrapper
//! around plain Rust; [`register`] is the one place that adds them to a session.

mod clv;
mod island_number;
mod key_bucket;
mod km_median;
mod local_date;
mod month_start;
mod months_between;

use datafusion::execution::SessionState;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

/// Registers every fidelis function in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(local_date::LocalDate::new()));
    ctx.register_udf(ScalarUDF::from(month_start::MonthStart::new()));
    ctx.register_udf(ScalarUDF::from(months_between::MonthsBetween::new()));
    ctx.register_udaf(AggregateUDF::from(km_median::KmMedian::new()));
    ctx.register_udwf(WindowUDF::from(island_number::IslandNumber::new()));
    ctx.register_udf(key_bucket());
    ctx.register_udaf(AggregateUDF::from(clv::ClvFit::purchases()));
    ctx.register_udaf(AggregateUDF::from(clv::ClvFit::try_purchases()));
    ctx.register_udaf(AggregateUDF::from(clv::ClvFit::spend()));
    ctx.register_udaf(AggregateUDF::from(clv::ClvValueDraws::new()));
    ctx.register_udf(ScalarUDF::from(clv::ClvPredict::p_alive()));
    ctx.register_udf(ScalarUDF::from(clv::ClvPredict::expected_purchases()));
    ctx.register_udf(ScalarUDF::from(clv::ClvPredict::expected_spend()));
    ctx.register_udf(ScalarUDF::from(clv::ClvPredict::predicted_value()));
}

/// Replaces, in `state`, the functions that hold all their rows in memory with their
/// forms that stream in bounded memory (same results, slower): for stages whose data
/// does not fit the memory budget.
pub fn stream_windows(state: &mut SessionState) -> datafusion::error::Result<()> {
    state.register_udwf(std::sync::Arc::new(WindowUDF::from(island_number::IslandNumber::streaming())))?;
    Ok(())
}

/// The streaming form of window function `name`, if it has one (see [`stream_windows`]).
pub fn streaming_window(name: &str) -> Option<WindowUDF> {
    let streaming = WindowUDF::from(island_number::IslandNumber::streaming());
    (streaming.name() == name).then_some(streaming)
}

/// Whether `udwf` is a streaming form: its name alone does not say so, so a plan sent
/// to another process (a cluster's) carries this too.
pub fn is_streaming_window(udwf: &WindowUDF) -> bool {
    udwf.inner().downcast_ref::<island_number::IslandNumber>().is_some_and(island_number::IslandNumber::is_streaming)
}

/// `key_bucket(key, buckets)`: a stable bucket of a key (see `key_bucket.rs`).
pub fn key_bucket() -> ScalarUDF {
    ScalarUDF::from(key_bucket::KeyBucket::new())
}

/// Whether `udwf` is `island_number`, in either form.
pub fn is_island_number(udwf: &WindowUDF) -> bool {
    udwf.inner().downcast_ref::<island_number::IslandNumber>().is_some()
}
