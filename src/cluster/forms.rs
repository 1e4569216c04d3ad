//! Partition-aware forms of what a local run does on one partition, for a run on a
//! cluster: the same results, in a plan the scheduler can split over its executors.
//!
//! `island_number(key, value, gap) OVER (ORDER BY key, value)` numbers every key's islands
//! over one ordering of all rows (see `crate::functions`): on two local cores the fastest
//! form, on a cluster one task sorting every row. Islands are per key, so any split of the
//! rows that keeps each key's rows together gives the same numbers: the window becomes
//! `PARTITION BY key_bucket(key, BUCKETS) ORDER BY key, value`, which the scheduler plans
//! as a shuffle by bucket and one task per partition, each numbering its buckets. The
//! bucket is a column of a projection below the window, dropped above it, so every plan
//! above the window sees the columns it saw before.
//!
//! Other windows keep their form: whether a window over one ordering can be split depends
//! on what the query does with it (`LAG(customer_id) OVER (ORDER BY customer_id, …)`
//! compared with `customer_id` could be; `LAG` itself cannot), which a plan rewrite cannot
//! know.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::{Expr, LogicalPlan, Projection, Window, WindowFunctionDefinition, col, lit};

use crate::functions;

/// Buckets of keys: enough that hashing them to a stage's partitions spreads the rows
/// evenly, few enough that evaluating the window once per bucket costs nothing.
const BUCKETS: i64 = 1024;

/// The bucket column a rewritten window is partitioned by.
const BUCKET: &str = "__fidelis_key_bucket";

/// `plan` with every window of `island_number`s partitioned by a bucket of their key.
pub fn distribute(plan: LogicalPlan) -> Result<LogicalPlan> {
    let rewritten = plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::Window(window) => match island_key(&window.window_expr) {
            Some(key) => Ok(Transformed::yes(by_bucket(window, key)?)),
            None => Ok(Transformed::no(LogicalPlan::Window(window))),
        },
        other => Ok(Transformed::no(other)),
    })?;
    Ok(rewritten.data)
}

/// The window function behind `expr`'s alias, if any.
fn window_function(expr: &Expr) -> Option<&WindowFunction> {
    match expr {
        Expr::Alias(alias) => window_function(&alias.expr),
        Expr::WindowFunction(function) => Some(function),
        _ => None,
    }
}

/// The key of `exprs`, when every one is `island_number(key, …) OVER (ORDER BY key, …)`
/// without a `PARTITION BY`, all with the same key.
fn island_key(exprs: &[Expr]) -> Option<Expr> {
    let keys = exprs.iter().map(|expr| {
        let function = window_function(expr)?;
        let WindowFunctionDefinition::WindowUDF(udwf) = &function.fun else { return None };
        let WindowFunctionParams { args, partition_by, order_by, .. } = &function.params;
        let key = args.first()?;
        let ordered_by_key = order_by.first().is_some_and(|sort| &sort.expr == key);
        (functions::is_island_number(udwf) && partition_by.is_empty() && ordered_by_key).then_some(key)
    });
    let keys: Option<Vec<&Expr>> = keys.collect();
    let keys = keys?;
    let first = *keys.first()?;
    keys.iter().all(|key| *key == first).then(|| first.clone())
}

/// `window` partitioned by the bucket of `key`, with the columns it had.
fn by_bucket(window: Window, key: Expr) -> Result<LogicalPlan> {
    let Window { input, window_expr, schema } = window;
    let names: Vec<String> =
        schema.fields().iter().skip(input.schema().fields().len()).map(|f| f.name().clone()).collect();
    let mut columns: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
    columns.push(functions::key_bucket().call(vec![key, lit(BUCKETS)]).alias(BUCKET));
    let bucketed = Arc::new(LogicalPlan::Projection(Projection::try_new(columns, input)?));
    let window_expr = window_expr.into_iter().zip(names).map(|(expr, name)| partitioned(expr).alias(name)).collect();
    let windowed = LogicalPlan::Window(Window::try_new(window_expr, bucketed)?);
    let kept = windowed.schema().columns().into_iter().filter(|column| column.name != BUCKET).map(Expr::Column);
    Ok(LogicalPlan::Projection(Projection::try_new(kept.collect(), Arc::new(windowed))?))
}

/// The window function of `expr`, partitioned by the bucket column.
fn partitioned(expr: Expr) -> Expr {
    match expr {
        Expr::Alias(alias) => partitioned(*alias.expr),
        Expr::WindowFunction(mut function) => {
            function.params.partition_by = vec![col(BUCKET)];
            Expr::WindowFunction(function)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn planned(ctx: &SessionContext, sql: &str) -> LogicalPlan {
        ctx.sql(sql).await.unwrap().into_unoptimized_plan()
    }

    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        functions::register(&ctx);
        ctx
    }

    const DAYS: &str = "CREATE TABLE days (customer_id VARCHAR, day DATE) AS VALUES
        ('b', DATE '2024-01-01'), ('a', DATE '2024-01-01'), ('a', DATE '2024-01-03'),
        ('b', DATE '2024-03-01'), ('a', DATE '2024-01-02'), ('c', DATE '2024-02-01')";

    #[tokio::test]
    async fn island_windows_are_partitioned_by_a_bucket_of_their_key_with_the_same_numbers() {
        let ctx = context();
        ctx.sql(DAYS).await.unwrap();
        let sql = "SELECT customer_id, day, island_number(customer_id, day, 1) OVER by_day AS day_number,
                       island_number(customer_id, day, 30) OVER by_day AS spell
                   FROM days WINDOW by_day AS (ORDER BY customer_id, day)";
        let plan = planned(&ctx, sql).await;
        let distributed = distribute(plan.clone()).unwrap();
        assert_eq!(distributed.schema(), plan.schema(), "the stage's columns are unchanged");
        let shown = distributed.display_indent().to_string();
        assert!(shown.contains("PARTITION BY [__fidelis_key_bucket]"), "{shown}");
        assert!(shown.contains("key_bucket(days.customer_id, Int64(1024)) AS __fidelis_key_bucket"), "{shown}");

        let sorted = |plan: LogicalPlan| {
            let ctx = ctx.clone();
            async move {
                let frame = ctx.execute_logical_plan(plan).await.unwrap().sort_by(vec![col("customer_id"), col("day")]);
                datafusion::arrow::util::pretty::pretty_format_batches(&frame.unwrap().collect().await.unwrap())
                    .unwrap()
                    .to_string()
            }
        };
        let expected = "\
+-------------+------------+------------+-------+
| customer_id | day        | day_number | spell |
+-------------+------------+------------+-------+
| a           | 2024-01-01 | 1          | 1     |
| a           | 2024-01-02 | 2          | 1     |
| a           | 2024-01-03 | 3          | 1     |
| b           | 2024-01-01 | 1          | 1     |
| b           | 2024-03-01 | 2          | 2     |
| c           | 2024-02-01 | 1          | 1     |
+-------------+------------+------------+-------+";
        assert_eq!(sorted(distributed).await, expected);
        assert_eq!(sorted(plan).await, expected, "the local form gives the same numbers");
    }

    #[tokio::test]
    async fn other_windows_keep_their_form() {
        let ctx = context();
        ctx.sql(DAYS).await.unwrap();
        for sql in [
            "SELECT LAG(customer_id) OVER (ORDER BY customer_id, day) FROM days",
            "SELECT island_number(customer_id, day, 1) OVER (PARTITION BY day ORDER BY customer_id, day) FROM days",
            "SELECT island_number(customer_id, day, 1) OVER (ORDER BY day, customer_id) FROM days",
            "SELECT island_number(customer_id, day, 1) OVER w, row_number() OVER w FROM days WINDOW w AS (ORDER BY customer_id, day)",
        ] {
            let plan = planned(&ctx, sql).await;
            assert_eq!(distribute(plan.clone()).unwrap(), plan, "{sql}");
        }
    }
}
