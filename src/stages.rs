//! Planning and running SQL stages in the run's DataFusion session.
//!
//! Parameters are bound in the parsed statement: each `$name` placeholder is
//! replaced by a typed literal node, so a value is never lexed as SQL and cannot
//! change the query, whatever quotes it contains.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr as LogicalExpr;
use datafusion::logical_expr::utils::find_aggregate_exprs;
use datafusion::logical_expr::{LogicalPlan, col};
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{ExecutionPlan, displayable, execute_stream_partitioned};
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::{self, CastKind, Expr, Value, visit_expressions_mut};
use indexmap::IndexMap;
use tracing::debug;

use crate::config::{ParamValue, Stage};
use crate::error::{Diagnostic, Error, Result};
use crate::models::FitError;
use crate::results::{Results, Stored};

/// Plans `stage` against the tables registered in `state`, parameters bound.
pub async fn plan(state: &SessionState, stage: &Stage, params: &IndexMap<String, ParamValue>) -> Result<LogicalPlan> {
    let planning_error = |message: String| {
        Error::Config(vec![Diagnostic {
            file: stage.origin.clone(),
            location: None,
            message: format!("stage `{}`: {message}", stage.name),
            hint: Some("fix the SQL; `fidelis validate` plans every stage without running it".into()),
        }])
    };
    let mut statements = DFParser::parse_sql(&stage.sql).map_err(|e| planning_error(e.to_string()))?;
    let mut statement = statements.pop_front().ok_or_else(|| planning_error("no SQL statement".into()))?;
    if let Statement::Statement(inner) = &mut statement {
        bind(inner, params).map_err(planning_error)?;
    }
    let plan = state.statement_to_plan(statement).await.map_err(|e| planning_error(e.to_string()))?;
    // The pipeline compiler admits queries only, but a query can still plan into a
    // statement (`SELECT … INTO t` creates a table): a stage only reads.
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| planning_error(format!("{e}: a stage is a query, and its result is the table named after it")))?;
    debug!(stage = %stage.name, plan = %plan.display_indent(), "stage planned");
    Ok(plan)
}

/// A stage run: its result, stored, and the bytes its operators spilled to disk.
pub struct Executed {
    pub result: Stored,
    pub spilled_bytes: u64,
}

/// Runs `stage` in `state` and stores its result in `results`, partition by partition;
/// on the run's cluster, when it has one.
pub async fn execute(
    state: &SessionState,
    stage: &Stage,
    params: &IndexMap<String, ParamValue>,
    results: &Results,
) -> Result<Executed> {
    let logical = plan(state, stage, params).await?;
    if let Some(cluster) = results.cluster() {
        // The executors' spills are theirs: what the run spills is what this process does.
        return Ok(Executed { result: cluster.run(state, stage, logical).await?, spilled_bytes: 0 });
    }
    let failed = |error: DataFusionError| stage_error(stage, results, error);
    let physical = state.create_physical_plan(&logical).await.map_err(failed)?;
    debug!(stage = %stage.name, plan = %displayable(physical.as_ref()).indent(false), "stage physical plan");
    let schema = physical.schema();
    let streams = execute_stream_partitioned(Arc::clone(&physical), state.task_ctx()).map_err(failed)?;
    let ordering = physical.properties().output_ordering();
    let result = results.store(&stage.name, schema, streams).await.map_err(failed)?.ordered(ordering);
    // Where the stage's time went, operator by operator (rows, compute time, spills).
    debug!(
        stage = %stage.name,
        plan = %DisplayableExecutionPlan::with_metrics(physical.as_ref()).indent(false),
        "stage physical plan with metrics"
    );
    Ok(Executed { result, spilled_bytes: spilled_bytes(&stage.name, physical.as_ref()) })
}

/// What a failed stage means for the run: a model that cannot be fitted to the data is a
/// data problem; work that does not fit the memory budget even with spilling, or the
/// disk it spills to, is a runtime failure with advice; anything else is a runtime failure.
fn stage_error(stage: &Stage, results: &Results, error: DataFusionError) -> Error {
    if let Some(reason) = model_error(&error) {
        return Error::Data(format!("stage `{}` ({}): {reason}", stage.name, stage.origin));
    }
    let context = format!("stage `{}` ({}) failed", stage.name, stage.origin);
    results.failure(&format!("stage `{}`", stage.name), context, error)
}

/// The bytes the operators of `plan` spilled to disk (each spilling operator is logged at
/// debug level).
fn spilled_bytes(stage: &str, plan: &dyn ExecutionPlan) -> u64 {
    let own = plan.metrics().and_then(|metrics| metrics.spilled_bytes()).unwrap_or(0) as u64;
    if own > 0 {
        debug!(stage, operator = plan.name(), spilled_bytes = own, "operator spilled");
    }
    own + plan.children().into_iter().map(|child| spilled_bytes(stage, child.as_ref())).sum::<u64>()
}

/// The model-fitting error behind a DataFusion error, if that is what it is.
fn model_error(error: &DataFusionError) -> Option<String> {
    match error.find_root() {
        DataFusionError::External(inner) => inner.downcast_ref::<FitError>().map(ToString::to_string),
        _ => None,
    }
}

/// The stage's declared `counts`: how many rows of its result (registered in `ctx`
/// under the stage's name) match each condition.
pub async fn count(ctx: &SessionContext, stage: &Stage) -> Result<IndexMap<String, u64>> {
    let mut counts = IndexMap::new();
    if stage.counts.is_empty() {
        return Ok(counts);
    }
    let frame = ctx
        .table(stage.name.as_str())
        .await
        .map_err(|e| Error::runtime(format!("reading stage `{}`", stage.name), e))?;
    for (name, condition) in &stage.counts {
        let failed = |e: &dyn std::fmt::Display| {
            Error::config(
                &stage.origin,
                format!("stage `{}`: count `{name}` ({condition}): {e}", stage.name),
                "fix the condition",
            )
        };
        let expr = frame.parse_sql_expr(condition).map_err(|e| failed(&e))?;
        let matching = frame.clone().filter(expr).map_err(|e| failed(&e))?.count().await.map_err(|e| failed(&e))?;
        counts.insert(name.clone(), matching as u64);
    }
    Ok(counts)
}

/// The frame computing the stage's declared `facts` over its result (registered in `ctx`
/// under the stage's name): one row, a column per fact. Every fact is planned on its own
/// down to its physical plan first, so one that does not plan (a column the stage does
/// not have, or an expression that is not an aggregate) is a configuration error naming
/// where it is written; all of them together.
pub async fn plan_facts(ctx: &SessionContext, stage: &Stage) -> Result<DataFrame> {
    let frame = ctx
        .table(stage.name.as_str())
        .await
        .map_err(|e| Error::runtime(format!("reading stage `{}`", stage.name), e))?;
    let mut expressions = Vec::with_capacity(stage.facts.len());
    let mut diagnostics = Vec::new();
    for fact in &stage.facts {
        let planned = async {
            let expression = frame.parse_sql_expr(&fact.expression).map_err(|e| e.to_string())?;
            if find_aggregate_exprs([&expression]).is_empty() {
                return Err("it aggregates nothing (a column outside an aggregate has a value per row)".to_string());
            }
            let expression = expression.alias(&fact.name);
            let single = over_aggregates(frame.clone(), vec![expression.clone()]).map_err(|e| e.to_string())?;
            single.create_physical_plan().await.map_err(|e| e.to_string())?;
            Ok(expression)
        };
        match planned.await {
            Ok(expression) => expressions.push(expression),
            Err(error) => diagnostics.push(fact.declared.diagnostic(
                format!("fact `{}` of stage `{}`: cannot plan `{}`: {error}", fact.name, stage.name, fact.expression),
                "a fact is one value: an aggregate of the stage's output columns (`fidelis validate` lists them), \
                 e.g. `max(model) FILTER (WHERE selected)`",
            )),
        }
    }
    if !diagnostics.is_empty() {
        return Err(Error::Config(diagnostics));
    }
    over_aggregates(frame, expressions)
        .map_err(|e| Error::runtime(format!("planning the facts of `{}`", stage.name), e))
}

/// `expressions` over `frame` as a SQL `SELECT` without `GROUP BY` computes them: the
/// aggregates they contain over every row, then each expression over those (so
/// `max(x) - min(x)` is one value). A column outside an aggregate does not plan.
fn over_aggregates(frame: DataFrame, expressions: Vec<LogicalExpr>) -> datafusion::error::Result<DataFrame> {
    let aggregates = find_aggregate_exprs(&expressions);
    let rebased = expressions
        .into_iter()
        .map(|expression| {
            expression
                .transform_down(|e| match aggregates.contains(&e) {
                    true => Ok(Transformed::yes(col(Column::from_name(e.schema_name().to_string())))),
                    false => Ok(Transformed::no(e)),
                })
                .data()
        })
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    frame.aggregate(vec![], aggregates)?.select(rebased)
}

/// The stage's declared `facts`, evaluated over its result (registered in `ctx` under the
/// stage's name), as the manifest records them.
pub async fn facts(ctx: &SessionContext, stage: &Stage) -> Result<IndexMap<String, serde_json::Value>> {
    if stage.facts.is_empty() {
        return Ok(IndexMap::new());
    }
    let batches = plan_facts(ctx, stage)
        .await?
        .collect()
        .await
        .map_err(|e| Error::runtime(format!("computing the facts of `{}`", stage.name), e))?;
    // An aggregation without grouping has one row, whatever the stage's rows.
    let row = crate::report::rows(&stage.name, &batches)?.into_iter().next().unwrap_or_default();
    Ok(stage
        .facts
        .iter()
        .map(|fact| (fact.name.clone(), row.get(&fact.name).cloned().unwrap_or(serde_json::Value::Null)))
        .collect())
}

/// Replaces every `$name` placeholder with the typed literal of its value.
fn bind(statement: &mut ast::Statement, params: &IndexMap<String, ParamValue>) -> std::result::Result<(), String> {
    let flow = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(placeholder) = &value.value
        {
            let name = placeholder.trim_start_matches('$');
            match params.get(name) {
                Some(value) => *expr = literal(value),
                None => {
                    return ControlFlow::Break(format!("`{placeholder}` is not a declared parameter"));
                }
            }
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(message) => Err(message),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn literal(value: &ParamValue) -> Expr {
    let value_node = |v: Value| Expr::Value(v.into());
    match value {
        ParamValue::String(text) => value_node(Value::SingleQuotedString(text.clone())),
        ParamValue::Integer(number) => value_node(Value::Number(number.to_string(), false)),
        ParamValue::Float(number) => value_node(Value::Number(format!("{number:?}"), false)),
        ParamValue::Boolean(flag) => value_node(Value::Boolean(*flag)),
        ParamValue::Date(date) => Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(value_node(Value::SingleQuotedString(date.to_string()))),
            data_type: ast::DataType::Date,
            array: false,
            format: None,
        },
    }
}
