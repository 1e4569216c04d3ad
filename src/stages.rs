//! Planning and running SQL stages in the run's DataFusion session.
//!
//! Parameters are bound in the parsed statement: each `$name` placeholder is
//! replaced by a typed literal node, so a value is never lexed as SQL and cannot
//! change the query, whatever quotes it contains.

use std::ops::ControlFlow;

use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::{self, CastKind, Expr, Value, visit_expressions_mut};
use indexmap::IndexMap;
use tracing::debug;

use crate::config::{ParamValue, Stage};
use crate::error::{Diagnostic, Error, Result};
use crate::models::FitError;

/// Plans `stage` against the tables registered in `ctx`, parameters bound.
pub async fn plan(ctx: &SessionContext, stage: &Stage, params: &IndexMap<String, ParamValue>) -> Result<LogicalPlan> {
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
    let plan = ctx.state().statement_to_plan(statement).await.map_err(|e| planning_error(e.to_string()))?;
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

/// Runs `stage` and registers its result under the stage's name, computed once:
/// later stages reading it share the materialised result.
pub async fn run(ctx: &SessionContext, stage: &Stage, params: &IndexMap<String, ParamValue>) -> Result<DataFrame> {
    let plan = plan(ctx, stage, params).await?;
    let frame = DataFrame::new(ctx.state(), plan).cache().await.map_err(|error| {
        // A model that cannot be fitted to the data is a data problem, not a crash.
        match model_error(&error) {
            Some(reason) => Error::Data(format!("stage `{}` ({}): {reason}", stage.name, stage.origin)),
            None => Error::runtime(format!("stage `{}` ({}) failed", stage.name, stage.origin), error),
        }
    })?;
    ctx.register_table(stage.name.as_str(), frame.clone().into_view())
        .map_err(|e| Error::runtime(format!("registering stage `{}`", stage.name), e))?;
    Ok(frame)
}

/// The model-fitting error behind a DataFusion error, if that is what it is.
fn model_error(error: &DataFusionError) -> Option<String> {
    match error.find_root() {
        DataFusionError::External(inner) => inner.downcast_ref::<FitError>().map(ToString::to_string),
        _ => None,
    }
}

/// The stage's declared `counts`: how many of its rows match each condition.
pub async fn count(frame: &DataFrame, stage: &Stage) -> Result<IndexMap<String, u64>> {
    let mut counts = IndexMap::new();
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
