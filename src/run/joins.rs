//! How a memory-frugal stage joins: by sorting and merging, unless the side a hash join
//! would hold in memory is known to be small.
//!
//! DataFusion picks a sort-merge join only when a plan has several partitions (and
//! `prefer_hash_join` is off); on one partition every equi-join is a hash join whose
//! whole build side must fit in memory, which cannot spill. A stage that runs frugally
//! because its inputs are large therefore gets this rule: each hash join whose build side
//! is not known to fit in `small_bytes` becomes a sort-merge join, whose inputs are sorted
//! by sorts that spill. Joins with a small dimension (a seed, a month grid) stay hash joins.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::joins::{CrossJoinExec, HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::union::UnionExec;

/// Bytes a row of a variable-width column is assumed to take when statistics do not say.
const VARIABLE_WIDTH_BYTES: usize = 32;

/// `state` with [`SortMergeLargeJoins`] among its physical optimizer rules, right after
/// DataFusion's join selection (which puts the smaller side of a hash join on its build
/// side) and before the rules that add the sorts a sort-merge join requires.
pub fn sort_merge_large_joins(state: SessionState, small_bytes: usize) -> SessionState {
    let mut rules = state.physical_optimizers().to_vec();
    let after = rules.iter().position(|rule| rule.name() == "join_selection").map_or(0, |at| at + 1);
    rules.insert(after, Arc::new(SortMergeLargeJoins { small_bytes }));
    SessionStateBuilder::new_from_existing(state).with_physical_optimizer_rules(rules).build()
}

/// Turns hash joins with a build side not known to be small into sort-merge joins.
#[derive(Debug)]
pub struct SortMergeLargeJoins {
    /// The most a hash join's build side may be estimated to hold and stay a hash join.
    pub small_bytes: usize,
}

impl PhysicalOptimizerRule for SortMergeLargeJoins {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            // A null-aware anti join (`NOT IN`) has no sort-merge form; a join with a
            // pushed-down limit keeps the operator that knows it.
            if join.null_aware || join.fetch().is_some() || self.is_small(join.left().as_ref())? {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(sort_merge(join)?))
        })
        .data()
    }

    fn name(&self) -> &str {
        "sort_merge_large_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

impl SortMergeLargeJoins {
    /// Whether `side` is known to hold at most `small_bytes`: by exact statistics, by the
    /// rows its shape bounds, or failing both by DataFusion's estimate. A bound goes
    /// before an estimate: a filter's guessed selectivity made the 11.8 M wallet
    /// estimates of `share_of_wallet` look like 150 MB, and their hash table took 1 GB of
    /// a 4 GiB budget, where it could not spill.
    fn is_small(&self, side: &dyn ExecutionPlan) -> Result<bool> {
        let statistics = StatisticsContext::new().compute(side, &StatisticsArgs::new())?;
        if let Precision::Exact(bytes) = statistics.total_byte_size {
            return Ok(bytes <= self.small_bytes);
        }
        let width = row_width(&side.schema());
        let bytes = match (most_rows(side)?, statistics.total_byte_size, statistics.num_rows) {
            (Some(rows), _, _) => rows.saturating_mul(width),
            (None, Precision::Inexact(bytes), _) => bytes,
            (None, _, Precision::Inexact(rows)) => rows.saturating_mul(width),
            _ => return Ok(false),
        };
        Ok(bytes <= self.small_bytes)
    }
}

/// The most rows `plan` can produce, from its shape where statistics do not say: tables
/// of known size, through operators that never add rows (filters, windows, sorts),
/// unions and products of them. Statistics give up at the first join or window, so a
/// small dimension built in SQL (a grid of the 25 RFM score pairs from a seed) would
/// otherwise count as large, and guess at filters. Not through aggregations: there the
/// input's rows are far too loose a bound, and DataFusion's estimate is kept.
fn most_rows(plan: &dyn ExecutionPlan) -> Result<Option<usize>> {
    let statistics = StatisticsContext::new().compute(plan, &StatisticsArgs::new())?;
    if let Precision::Exact(rows) = statistics.num_rows {
        return Ok(Some(rows));
    }
    let children = plan.children();
    let product = plan.downcast_ref::<CrossJoinExec>().is_some()
        || plan.downcast_ref::<NestedLoopJoinExec>().is_some_and(|join| *join.join_type() == JoinType::Inner);
    let union = plan.downcast_ref::<UnionExec>().is_some();
    if product || union {
        let bounds = children.iter().map(|child| most_rows(child.as_ref())).collect::<Result<Vec<_>>>()?;
        let bounds = bounds.into_iter().collect::<Option<Vec<usize>>>();
        return Ok(bounds.map(|rows| match product {
            true => rows.into_iter().fold(1, usize::saturating_mul),
            false => rows.into_iter().fold(0, usize::saturating_add),
        }));
    }
    if plan.downcast_ref::<AggregateExec>().is_some() {
        return Ok(None);
    }
    match (plan.cardinality_effect(), children.as_slice()) {
        (CardinalityEffect::Equal | CardinalityEffect::LowerEqual, [child]) => most_rows(child.as_ref()),
        _ => Ok(None),
    }
}

/// The bytes a row of `schema` is estimated to take in memory.
fn row_width(schema: &Schema) -> usize {
    let widths =
        schema.fields().iter().map(|field| field.data_type().primitive_width().unwrap_or(VARIABLE_WIDTH_BYTES));
    widths.sum::<usize>().max(1)
}

/// The sort-merge join computing what `join` computes (with its projection, if it has one).
fn sort_merge(join: &HashJoinExec) -> Result<Arc<dyn ExecutionPlan>> {
    let merged: Arc<dyn ExecutionPlan> = Arc::new(SortMergeJoinExec::try_new(
        Arc::clone(join.left()),
        Arc::clone(join.right()),
        join.on().to_vec(),
        join.filter().cloned(),
        *join.join_type(),
        // Ascending with nulls last, as SQL's ORDER BY sorts: a side stored in that order
        // (a stage ending in ORDER BY customer_id) is merged as it is, not sorted again.
        vec![SortOptions { descending: false, nulls_first: false }; join.on().len()],
        join.null_equality(),
    )?);
    let Some(projection) = join.projection.as_deref() else {
        return Ok(merged);
    };
    let schema = merged.schema();
    let columns = projection.iter().map(|&index| {
        let name = schema.field(index).name().clone();
        (Arc::new(Column::new(&name, index)) as _, name)
    });
    Ok(Arc::new(ProjectionExec::try_new(columns, merged)?))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// A session on one partition with `orders` (1000 rows over 10 customers, one without
    /// a customer row) and `customers` (9 rows).
    fn session() -> SessionContext {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        let orders = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("amount", DataType::Int64, false),
        ]));
        let ids: Vec<String> = (0..1000).map(|i| format!("c{}", i % 10)).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&orders),
            vec![Arc::new(StringArray::from(ids)), Arc::new(Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        ctx.register_table("orders", Arc::new(MemTable::try_new(orders, vec![vec![batch]]).unwrap())).unwrap();
        let customers = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("tier", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&customers),
            vec![
                Arc::new(StringArray::from_iter_values((0..9).map(|i| format!("c{i}")))),
                Arc::new(StringArray::from_iter_values((0..9).map(|i| ["gold", "silver", "bronze"][i % 3]))),
            ],
        )
        .unwrap();
        ctx.register_table("customers", Arc::new(MemTable::try_new(customers, vec![vec![batch]]).unwrap())).unwrap();
        ctx
    }

    const QUERY: &str = "SELECT o.customer_id, c.tier, SUM(o.amount) AS amount \
        FROM orders AS o LEFT JOIN customers AS c ON c.customer_id = o.customer_id \
        GROUP BY o.customer_id, c.tier ORDER BY o.customer_id";

    /// The plan and the result of `QUERY` with the rule set to `small_bytes`.
    async fn run(small_bytes: usize) -> (String, String) {
        run_query(QUERY, small_bytes).await
    }

    async fn run_query(query: &str, small_bytes: usize) -> (String, String) {
        let ctx = session();
        let state = sort_merge_large_joins(ctx.state(), small_bytes);
        let logical = state.create_logical_plan(query).await.unwrap();
        let physical = state.create_physical_plan(&logical).await.unwrap();
        let plan = displayable(physical.as_ref()).indent(false).to_string();
        let batches = collect(physical, state.task_ctx()).await.unwrap();
        (plan, pretty_format_batches(&batches).unwrap().to_string())
    }

    #[tokio::test]
    async fn a_join_whose_build_side_is_not_small_sorts_and_merges_with_the_same_result() {
        let (hashed, expected) = run(usize::MAX).await;
        let (merged, result) = run(0).await;
        assert!(hashed.contains("HashJoinExec") && !hashed.contains("SortMergeJoin"), "{hashed}");
        assert!(merged.contains("SortMergeJoin") && !merged.contains("HashJoinExec"), "{merged}");
        assert_eq!(result, expected);
        assert!(expected.contains("| c9          |        | 50400  |"), "{expected}");
    }

    #[tokio::test]
    async fn a_small_side_built_in_sql_through_joins_and_windows_stays_the_build_side_of_a_hash_join() {
        // Up to three levels per customer (a non-equi join), the first kept (a window):
        // at most 9 x 3 rows, though statistics know nothing of the side past its joins.
        let query = "WITH levels AS ( \
                SELECT customer_id, level FROM ( \
                    SELECT c.customer_id, l.level, ROW_NUMBER() OVER (PARTITION BY c.customer_id ORDER BY l.level) AS n \
                    FROM customers AS c JOIN (VALUES (1), (2), (3)) AS l(level) ON l.level <= length(c.tier) - 3 \
                ) AS ranked WHERE n = 1 \
            ) \
            SELECT o.customer_id, l.level, SUM(o.amount) AS amount \
            FROM levels AS l RIGHT JOIN orders AS o ON l.customer_id = o.customer_id \
            GROUP BY o.customer_id, l.level ORDER BY o.customer_id";
        let build = build_side(query).await;
        let statistics = StatisticsContext::new().compute(build.as_ref(), &StatisticsArgs::new()).unwrap();
        assert_eq!((statistics.num_rows, statistics.total_byte_size), (Precision::Absent, Precision::Absent));
        assert_eq!(most_rows(build.as_ref()).unwrap(), Some(27));
        let (kept, expected) = run_query(query, 4096).await;
        let (merged, result) = run_query(query, 0).await;
        assert!(kept.contains("HashJoinExec") && !kept.contains("SortMergeJoin"), "{kept}");
        assert!(merged.contains("SortMergeJoin"), "{merged}");
        assert_eq!(result, expected);
        assert!(expected.contains("| c0          | 1     | 49500  |"), "{expected}");
    }

    /// The build side of the hash join DataFusion plans for `query`, before the rule.
    async fn build_side(query: &str) -> Arc<dyn ExecutionPlan> {
        let physical = session().sql(query).await.unwrap().create_physical_plan().await.unwrap();
        let mut build = None;
        physical
            .apply(|node| {
                if let Some(join) = node.downcast_ref::<HashJoinExec>() {
                    build = Some(Arc::clone(join.left()));
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
        build.expect("a hash join")
    }

    #[tokio::test]
    async fn a_side_estimated_small_but_bounded_large_sorts_and_merges() {
        // A filter DataFusion cannot size: it guesses a fraction of the 1000 orders.
        let query = "SELECT o.customer_id, COUNT(*) AS n \
            FROM (SELECT customer_id FROM orders WHERE amount % 7 = 0) AS f \
            JOIN orders AS o ON o.customer_id = f.customer_id \
            GROUP BY o.customer_id ORDER BY o.customer_id";
        let build = build_side(query).await;
        let statistics = StatisticsContext::new().compute(build.as_ref(), &StatisticsArgs::new()).unwrap();
        let width = row_width(&build.schema());
        let estimated = match (statistics.total_byte_size, statistics.num_rows) {
            (Precision::Inexact(bytes), _) => bytes,
            (_, Precision::Inexact(rows)) => rows * width,
            other => panic!("the filter's output is estimated: {other:?}"),
        };
        let bound = most_rows(build.as_ref()).unwrap().expect("bounded by the orders") * width;
        assert!(estimated < bound, "estimated {estimated} bytes, bounded by {bound}");
        let (merged, result) = run_query(query, estimated).await;
        let (hashed, expected) = run_query(query, bound).await;
        assert!(merged.contains("SortMergeJoin") && !merged.contains("HashJoinExec"), "{merged}");
        assert!(hashed.contains("HashJoinExec") && !hashed.contains("SortMergeJoin"), "{hashed}");
        assert_eq!(result, expected);
    }

    #[tokio::test]
    async fn a_join_whose_build_side_is_small_stays_a_hash_join() {
        // The nine customers, about 9 × 64 bytes, are the build side.
        let (plan, _) = run(4096).await;
        assert!(plan.contains("HashJoinExec") && !plan.contains("SortMergeJoin"), "{plan}");
    }
}
