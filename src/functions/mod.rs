//! Rust functions exposed to the pipeline's SQL. Each is a thin Arrow wrapper
//! around plain Rust; [`register`] is the one place that adds them to a session.

mod clv;
mod island_number;
mod key_bucket;
mod km_median;
mod local_date;
mod month_start;
mod months_between;
mod quantiles_cont;

use std::sync::Arc;

use datafusion::execution::SessionState;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

/// Registers every fidelis function in `ctx`; the CLV models spread their work over
/// the cores available (a run gives each stage its share, see [`share_threads`]).
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(local_date::LocalDate::new()));
    ctx.register_udf(ScalarUDF::from(month_start::MonthStart::new()));
    ctx.register_udf(ScalarUDF::from(months_between::MonthsBetween::new()));
    ctx.register_udaf(AggregateUDF::from(km_median::KmMedian::new()));
    ctx.register_udaf(AggregateUDF::from(quantiles_cont::QuantilesCont::new()));
    ctx.register_udwf(WindowUDF::from(island_number::IslandNumber::new()));
    ctx.register_udf(key_bucket());
    let (aggregates, scalars) = clv_functions(crate::threads::available());
    aggregates.into_iter().for_each(|f| ctx.register_udaf(f));
    scalars.into_iter().for_each(|f| ctx.register_udf(f));
}

/// Replaces, in `state`, the functions that spread their work over threads (the CLV
/// models) with forms that use `threads`: a stage's share of the run's thread budget,
/// so model fitting shares the budget with the stages running beside it.
pub fn share_threads(state: &mut SessionState, threads: usize) -> datafusion::error::Result<()> {
    let (aggregates, scalars) = clv_functions(threads);
    for function in aggregates {
        state.register_udaf(Arc::new(function))?;
    }
    for function in scalars {
        state.register_udf(Arc::new(function))?;
    }
    Ok(())
}

/// The CLV aggregates and scalar functions, on `threads` threads.
fn clv_functions(threads: usize) -> (Vec<AggregateUDF>, Vec<ScalarUDF>) {
    let aggregates = vec![
        AggregateUDF::from(clv::ClvFit::purchases(threads)),
        AggregateUDF::from(clv::ClvFit::try_purchases(threads)),
        AggregateUDF::from(clv::ClvFit::spend(threads)),
        AggregateUDF::from(clv::ClvValueDraws::new(threads)),
    ];
    let scalars = vec![
        ScalarUDF::from(clv::ClvPredict::p_alive(threads)),
        ScalarUDF::from(clv::ClvPredict::expected_purchases(threads)),
        ScalarUDF::from(clv::ClvPredict::expected_spend(threads)),
        ScalarUDF::from(clv::ClvPredict::predicted_value(threads)),
    ];
    (aggregates, scalars)
}

/// Replaces, in `state`, the functions that hold all their rows in memory with their
/// forms that stream in bounded memory (same results, slower): for stages whose data
/// does not fit the memory budget.
pub fn stream_windows(state: &mut SessionState) -> datafusion::error::Result<()> {
    state.register_udwf(Arc::new(WindowUDF::from(island_number::IslandNumber::streaming())))?;
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
