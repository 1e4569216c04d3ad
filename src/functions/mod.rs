//! Rust functions exposed to the pipeline's SQL. Each is a thin Arrow wrapper
//! around plain Rust; [`register`] is the one place that adds them to a session.

mod local_date;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Registers every fidelis function in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(local_date::LocalDate::new()));
}
