//! A source's `checks`, compiled once against its typed schema and evaluated batch by
//! batch as rows stream in.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;

use crate::config::{Check, Source};
use crate::error::{Error, Result};

/// The checks of a source, ready to evaluate.
pub struct Checks<'a> {
    compiled: Vec<(&'a Check, Arc<dyn PhysicalExpr>)>,
}

impl<'a> Checks<'a> {
    /// Compiles `source`'s checks for batches of `schema`: a condition that does not plan
    /// is a configuration error.
    pub fn compile(ctx: &SessionContext, source: &'a Source, schema: &SchemaRef) -> Result<Self> {
        let columns = DFSchema::try_from(Arc::clone(schema)).map_err(|e| Error::runtime("reading a schema", e))?;
        let columns = Arc::new(columns);
        // Simplified as a query's filter would be: some functions (COALESCE) only run
        // once rewritten by the simplifier.
        let simplifier = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_schema(Arc::clone(&columns))
                .with_config_options(Arc::clone(ctx.copied_config().options()))
                .build(),
        );
        let mut compiled = Vec::with_capacity(source.checks.len());
        for check in &source.checks {
            let planned = ctx
                .parse_sql_expr(&check.condition, &columns)
                .and_then(|expr| simplifier.coerce(expr, &columns))
                .and_then(|expr| simplifier.simplify(expr))
                .and_then(|expr| ctx.create_physical_expr(expr, &columns))
                .map_err(|error| {
                    Error::config(
                        &source.name,
                        format!("check `{}`: cannot plan `{}`: {error}", check.name, check.condition),
                        "the condition may use the source's declared columns and SQL functions",
                    )
                })?;
            compiled.push((check, planned));
        }
        Ok(Checks { compiled })
    }

    /// The rows of `batch` that fail a check (the condition is false or null), each with
    /// the first check it fails; rows already bad (`skip`) are not checked.
    pub fn failures(&self, batch: &RecordBatch, skip: &[bool]) -> Result<Vec<(usize, &'a Check)>> {
        let mut failed = vec![false; batch.num_rows()];
        let mut found = Vec::new();
        for (check, condition) in &self.compiled {
            let result = condition
                .evaluate(batch)
                .and_then(|value| value.into_array(batch.num_rows()))
                .map_err(|e| Error::runtime(format!("running check `{}`", check.name), e))?;
            let passed = result.as_boolean_opt().ok_or_else(|| {
                Error::config(
                    &check.name,
                    format!("check `{}`: `{}` is not a true/false condition", check.name, check.condition),
                    "write a condition such as `amount >= 0`",
                )
            })?;
            for row in 0..batch.num_rows() {
                let passes = passed.is_valid(row) && passed.value(row);
                if !passes && !skip[row] && !failed[row] {
                    failed[row] = true;
                    found.push((row, *check));
                }
            }
        }
        found.sort_by_key(|(row, _)| *row);
        Ok(found)
    }
}
