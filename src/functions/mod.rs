//! Rust functions exposed to the pipeline's SQL. Each is a thin Arrow wrapper
//! around plain Rust; [`register`] is the one place that adds them to a session.

mod clv;
mod island_number;
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
