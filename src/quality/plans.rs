//! Each test's query, built from its kind with DataFusion's DataFrame API, as dbt builds a
//! generic test's SQL from its macro: the failing rows of the stage's result, and how to
//! count them. Planning a stage's tests is also what `fidelis validate` does with them.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{ExprSchemable, JoinType};
use datafusion::prelude::{DataFrame, Expr, SessionContext, ident, in_list, lit};

use crate::config::quality::AcceptedValues;
use crate::config::{DataTest, Stage, TestKind};
use crate::error::{Diagnostic, Error, Result};

/// The column of a `unique` test's failing rows that says how many rows share the key.
pub const REPEATS: &str = "n_records";

/// The referenced column of `relationships` and `accepted_values` from a table, renamed
/// so that it cannot clash with the stage's columns in the join.
const REFERENCE: &str = "__fidelis_reference";

/// A test, planned against the stage's result.
pub struct TestPlan<'a> {
    pub test: &'a DataTest,
    /// The failing rows: rows of the stage, or for `unique` each repeated key with how
    /// many rows have it ([`REPEATS`]).
    pub failures: DataFrame,
    pub count: Count,
}

/// How a test's failing rows are counted.
pub enum Count {
    /// The stage's rows meeting this condition (null is not met): counted together with
    /// the stage's other such tests, in one pass over its result.
    Matching(Expr),
    /// The rows of `failures`.
    Rows,
    /// The sum of [`REPEATS`] over `failures`: every row whose key repeats.
    Repeats,
}

/// Plans every test of `stage` against its result, registered in `ctx` under the stage's
/// name, and the tables the tests read, down to the physical plans that would run (which
/// is where a bound of another type than its column shows); every test that cannot be
/// planned is a diagnostic, all of them together a configuration error.
pub async fn plan<'a>(ctx: &SessionContext, stage: &'a Stage) -> Result<Vec<TestPlan<'a>>> {
    plan_tests(ctx, stage, true).await
}

/// The tests of `stage` as [`plan`] plans them, but without their physical plans: a run
/// executes them (and calls [`plan`] to say which test is wrong when that fails).
pub(super) async fn build<'a>(ctx: &SessionContext, stage: &'a Stage) -> Result<Vec<TestPlan<'a>>> {
    plan_tests(ctx, stage, false).await
}

async fn plan_tests<'a>(ctx: &SessionContext, stage: &'a Stage, physical: bool) -> Result<Vec<TestPlan<'a>>> {
    let table = ctx
        .table(stage.name.as_str())
        .await
        .map_err(|e| Error::runtime(format!("reading stage `{}`", stage.name), e))?;
    let mut plans = Vec::with_capacity(stage.tests.len());
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    for test in &stage.tests {
        match plan_test(ctx, &table, test, physical).await {
            Ok(plan) => plans.push(plan),
            Err(message) => diagnostics.push(test.declared.diagnostic(
                format!("test `{}` of stage `{}`: {message}", test.name, stage.name),
                "the test may use the stage's output columns (`fidelis validate` lists them) and SQL functions",
            )),
        }
    }
    match diagnostics.is_empty() {
        true => Ok(plans),
        false => Err(Error::Config(diagnostics)),
    }
}

async fn plan_test<'a>(
    ctx: &SessionContext,
    table: &DataFrame,
    test: &'a DataTest,
    physical: bool,
) -> std::result::Result<TestPlan<'a>, String> {
    let schema = table.schema();
    for column in test.kind.columns() {
        if !schema.has_column_with_unqualified_name(column) {
            return Err(format!("the stage has no column `{column}` (its columns: {})", column_names(schema)));
        }
    }
    let failed = |e: datafusion::error::DataFusionError| format!("cannot plan it: {e}");
    let table = table.clone();
    let (failures, count) = match &test.kind {
        TestKind::Unique { columns } => {
            let keys: Vec<Expr> = columns.iter().map(ident).collect();
            let compared = keys.iter().map(|key| key.clone().is_not_null()).reduce(Expr::and).unwrap_or(lit(true));
            let failures = table
                .filter(compared)
                .and_then(|rows| rows.aggregate(keys, vec![count(lit(1i64)).alias(REPEATS)]))
                .and_then(|keys| keys.filter(ident(REPEATS).gt(lit(1i64))))
                .map_err(failed)?;
            (failures, Count::Repeats)
        }
        TestKind::Relationships { column, to }
        | TestKind::AcceptedValues { column, values: AcceptedValues::Column(to) } => {
            let referenced = ctx.table(to.table.as_str()).await.map_err(failed)?;
            if !referenced.schema().has_column_with_unqualified_name(&to.column) {
                return Err(format!(
                    "`{}` has no column `{}` (its columns: {})",
                    to.table,
                    to.column,
                    column_names(referenced.schema())
                ));
            }
            let values = referenced.select(vec![ident(&to.column).alias(REFERENCE)]).map_err(failed)?;
            // The referenced values are hashed and the stage's rows stream past them: the
            // rows are usually the larger side (orders against customers), and hashing
            // them would chain every repeat of a key (a customer's orders) for the values
            // to walk. (DataFusion's join selection still swaps the sides when statistics
            // show the values are the larger.) Null keys, which match nothing, are dropped
            // after the join: a filter before it would hide the rows' count from the
            // planner, which would then guess them fewer than the values and swap.
            let failures = values
                .join_on(table, JoinType::RightAnti, [ident(REFERENCE).eq(ident(column))])
                .and_then(|rows| rows.filter(ident(column).is_not_null()))
                .map_err(failed)?;
            (failures, Count::Rows)
        }
        kind => {
            let condition = failing_condition(&table, kind)?;
            let failures = table.filter(condition.clone()).map_err(failed)?;
            (failures, Count::Matching(condition))
        }
    };
    // Type errors (a bound that cannot be compared with the column) show when the query
    // is planned for execution.
    if physical {
        failures.clone().create_physical_plan().await.map_err(failed)?;
    }
    Ok(TestPlan { test, failures, count })
}

/// The condition a failing row meets, for the tests that look at one row at a time; a
/// null column or condition passes, as in dbt.
fn failing_condition(table: &DataFrame, kind: &TestKind) -> std::result::Result<Expr, String> {
    match kind {
        TestKind::NotNull { column } => Ok(ident(column).is_null()),
        TestKind::AcceptedValues { column, values: AcceptedValues::List(values) } => {
            Ok(in_list(ident(column), values.iter().cloned().map(lit).collect(), true))
        }
        TestKind::AcceptedRange { column, min, max } => {
            let below = min.clone().map(|min| ident(column).lt(lit(min)));
            let above = max.clone().map(|max| ident(column).gt(lit(max)));
            below.into_iter().chain(above).reduce(Expr::or).ok_or_else(|| "a range needs `min` or `max`".to_string())
        }
        TestKind::Expression { condition } => {
            let expr = table.parse_sql_expr(condition).map_err(|e| format!("cannot plan `{condition}`: {e}"))?;
            match expr.get_type(table.schema()) {
                Ok(DataType::Boolean | DataType::Null) => Ok(!expr),
                Ok(other) => Err(format!("`{condition}` is not a true/false condition (it is {other})")),
                Err(error) => Err(format!("cannot plan `{condition}`: {error}")),
            }
        }
        other => Err(format!("a `{}` test is not a condition on one row", other.name())),
    }
}

/// What a failing row of `test` is, for messages: "have a null `x`".
pub fn failing_rows_are(test: &DataTest) -> String {
    let quoted = |columns: &[String]| columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    match &test.kind {
        TestKind::Unique { columns } => format!("share their {} with another row", quoted(columns)),
        TestKind::NotNull { column } => format!("have a null `{column}`"),
        TestKind::AcceptedValues { column, values: AcceptedValues::List(values) } => {
            let values: Vec<String> = values.iter().map(shown).collect();
            format!("have `{column}` not in ({})", values.join(", "))
        }
        TestKind::AcceptedValues { column, values: AcceptedValues::Column(from) } => {
            format!("have `{column}` not in `{from}`")
        }
        TestKind::Relationships { column, to } => format!("have `{column}` not in `{to}`"),
        TestKind::AcceptedRange { column, min, max } => match (min, max) {
            (Some(min), Some(max)) => format!("have `{column}` outside [{}, {}]", shown(min), shown(max)),
            (Some(min), None) => format!("have `{column}` below {}", shown(min)),
            (None, max) => format!("have `{column}` above {}", max.as_ref().map(shown).unwrap_or_default()),
        },
        TestKind::Expression { condition } => format!("do not meet `{condition}`"),
    }
}

/// A value as written in the pipeline file.
fn shown(value: &ScalarValue) -> String {
    match value {
        ScalarValue::Utf8(Some(text)) => format!("'{text}'"),
        other => other.to_string(),
    }
}

fn column_names(schema: &DFSchema) -> String {
    schema.fields().iter().map(|field| field.name().as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::displayable;
    use indexmap::IndexMap;

    use super::*;
    use crate::config::quality::Declared;
    use crate::config::{OnError, Severity};

    fn table(ids: &[Option<&str>]) -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![Field::new("customer_id", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(StringArray::from(ids.to_vec()))]).unwrap();
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
    }

    /// Orders (a customer's repeated many times) against customers: the customers are
    /// hashed and the orders stream past them, and an order whose customer is null is
    /// no orphan.
    #[tokio::test]
    async fn a_relationships_test_hashes_the_referenced_values_not_the_stages_rows() {
        let ctx = SessionContext::new();
        let customers: Vec<Option<&str>> = vec![Some("a"), Some("b")];
        let mut orders: Vec<Option<&str>> = vec![Some("a"); 500];
        orders.extend([Some("b"), Some("orphan"), None, Some("orphan")]);
        ctx.register_table("orders", table(&orders)).unwrap();
        ctx.register_table("customers", table(&customers)).unwrap();
        let test = DataTest {
            name: "orphans".into(),
            kind: TestKind::Relationships {
                column: "customer_id".into(),
                to: "customers.customer_id".parse().unwrap(),
            },
            severity: Severity::Warn,
            error_if: "> 0".parse().unwrap(),
            warn_if: "> 0".parse().unwrap(),
            description: None,
            declared: Declared { file: String::new(), location: None },
        };
        let stage = Stage {
            name: "orders".into(),
            description: None,
            sql: String::new(),
            origin: String::new(),
            file: None,
            depends_on: vec!["customers".into()],
            sql_reads: Vec::new(),
            counts: IndexMap::new(),
            facts: Vec::new(),
            on_error: OnError::Fail,
            tests: vec![test],
        };
        let plans = plan(&ctx, &stage).await.unwrap();
        let failures = plans[0].failures.clone();
        let physical = failures.clone().create_physical_plan().await.unwrap();
        let shown = displayable(physical.as_ref()).indent(false).to_string();
        let join = shown.lines().position(|line| line.contains("HashJoinExec")).expect(&shown);
        assert!(shown.lines().nth(join).unwrap().contains("join_type=RightAnti"), "{shown}");
        // The build side, the join's first input, is the customers' column.
        assert!(shown.lines().nth(join + 1).unwrap().contains(REFERENCE), "{shown}");
        assert_eq!(failures.count().await.unwrap(), 2, "the two orphan orders, not the null");
    }
}
