//! Data tests on the pipeline's own tables, in dbt's vocabulary (`unique`, `not_null`,
//! `accepted_values`, `relationships`, `accepted_range`, `expression`). A stage's tests
//! are a job of their own, on its stored result, started as soon as it is stored: beside
//! the stages reading it (which do not wait for them), and before anything is published.
//! Each test's failing rows are
//! counted and weighed against its thresholds; a failure of severity `error` stops the
//! run (exit code 3), a warning goes into the manifest. Like dbt's `store_failures`, a
//! sample of the failing rows is written where people look for them and no reader takes
//! them for published data (see [`run`]).

mod plans;

use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::error::DataFusionError;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::ExprFunctionExt;
use datafusion::prelude::{DataFrame, Expr, SessionContext, ident, lit};

pub use plans::plan;
use plans::{Count, REPEATS, TestPlan, failing_rows_are};

use crate::config::{DataTest, Severity, Stage, Status};
use crate::error::{Error, Result};
use crate::manifest::TestResult;
use crate::publish::journal;
use crate::publish::layout::part_file_name;
use crate::results::Results;
use crate::sinks::{Sink, write_parquet};
use crate::storage::Location;

/// At most this many failing rows of a test are written to `_test_failures`.
pub const SAMPLE_ROWS: usize = 100;

/// The tests of a stage: their results, the warnings and the failures.
#[derive(Debug, Default)]
pub struct Tested {
    pub results: Vec<TestResult>,
    pub warnings: Vec<String>,
    /// What each test of severity `error` past its `error_if` found.
    pub failures: Vec<String>,
    /// How long the tests took.
    pub duration_ms: u128,
}

impl Tested {
    /// The data error (exit code 3) naming every failed test of `stage`, if any. It stops
    /// the run whatever the stage's `on_error`, which is about its query, not its data.
    pub fn failure(&self, stage: &str) -> Option<Error> {
        let failed = &self.failures;
        (!failed.is_empty()).then(|| {
            Error::Data(format!(
                "stage `{stage}`: {} data test{} failed:\n  {}\n  fix the data or the stage's SQL; a test that should not stop the run can say `severity: warn`, or allow some failing rows with `error_if` (README: Data tests)",
                failed.len(),
                if failed.len() == 1 { "" } else { "s" },
                failed.join("\n  ")
            ))
        })
    }
}

/// Runs the tests of `stage`, whose result of `rows` rows is registered in `ctx` (the
/// stage's own session state) with the tables the tests read (`absent`: optional sources
/// without files, whose tests are skipped). Each test with failing rows writes up to
/// [`SAMPLE_ROWS`] of them to `{root}/_test_failures/{stage}/{test}/as_of={as_of}/` of
/// `sink`, whether the run goes on to publish or not; a test without leaves nothing
/// there. Tests of severity `error` past their `error_if` are [`Tested::failure`]; tests
/// that do not fit the memory budget of `results` fail as stages do.
pub async fn run(
    ctx: &SessionContext,
    stage: &Stage,
    rows: u64,
    absent: &[String],
    sink: &Sink,
    results: &Results,
) -> Result<Tested> {
    let mut tested = Tested::default();
    if stage.tests.is_empty() {
        return Ok(tested);
    }
    let clock = Instant::now();
    let failed = |error: DataFusionError| {
        let context = format!("running the tests of stage `{}`", stage.name);
        results.failure(&format!("the tests of stage `{}`", stage.name), context, error)
    };
    let table = ctx.table(stage.name.as_str()).await.map_err(failed)?;
    let plans = plans::build(ctx, stage).await?;
    let (skipped, plans): (Vec<TestPlan>, Vec<TestPlan>) =
        plans.into_iter().partition(|plan| plan.test.reference().is_some_and(|r| absent.contains(&r.table)));
    let failing = match count_failing(&table, &plans).await {
        Ok(failing) => failing,
        // Planning every test down to its physical plan names the one that cannot run.
        Err(error) => return Err(plan(ctx, stage).await.err().unwrap_or_else(|| failed(error))),
    };
    for (plan, failing) in plans.into_iter().zip(failing) {
        let test = plan.test;
        let status = status(test, failing, rows);
        let location = sink.partition(&format!("_test_failures/{}/{}", stage.name, test.name));
        let failures = sample(plan.failures, failing, &location, &failed).await?;
        let threshold = match status {
            Status::Error => format!("error_if {}", test.error_if),
            _ => format!("warn_if {}", test.warn_if),
        };
        let found = format!(
            "test `{}` ({threshold}): {failing} of {rows} rows {}; failing rows (at most {SAMPLE_ROWS}) in {location}",
            test.name,
            failing_rows_are(test)
        );
        match status {
            Status::Error => tested.failures.push(found),
            Status::Warn => tested.warnings.push(format!("stage `{}`: {found}", stage.name)),
            Status::Pass | Status::Skipped => {}
        }
        tested.results.push(result(stage, test, status, failing, rows, failures, None));
    }
    for plan in skipped {
        let table = plan.test.reference().map(|r| r.table.clone()).unwrap_or_default();
        let reason = format!("`{table}` is an optional source without files");
        tested.results.push(result(stage, plan.test, Status::Skipped, 0, rows, None, Some(reason)));
    }
    tested.duration_ms = clock.elapsed().as_millis();
    Ok(tested)
}

/// What dbt makes of a test's failing rows: an error when `error_if` is met (severity
/// `error` only), else a warning when `warn_if` is met, else a pass.
fn status(test: &DataTest, failing: u64, rows: u64) -> Status {
    match test.severity {
        Severity::Error if test.error_if.is_met(failing, rows) => Status::Error,
        _ if test.warn_if.is_met(failing, rows) => Status::Warn,
        _ => Status::Pass,
    }
}

fn result(
    stage: &Stage,
    test: &DataTest,
    status: Status,
    failing_rows: u64,
    rows: u64,
    failures: Option<String>,
    reason: Option<String>,
) -> TestResult {
    TestResult {
        name: test.name.clone(),
        stage: stage.name.clone(),
        kind: test.kind.name().to_string(),
        columns: test.kind.columns().into_iter().map(String::from).collect(),
        severity: test.severity,
        status,
        failing_rows,
        rows,
        error_if: (test.severity == Severity::Error).then(|| test.error_if.to_string()),
        warn_if: test.warn_if.to_string(),
        failures,
        reason,
    }
}

/// The failing rows of each planned test, in order: the tests that look at one row at a
/// time are counted together in one pass over the stage's result, the others one by one.
async fn count_failing(table: &DataFrame, plans: &[TestPlan<'_>]) -> datafusion::error::Result<Vec<u64>> {
    let mut counts = vec![0; plans.len()];
    let matching: Vec<(usize, Expr)> = plans
        .iter()
        .enumerate()
        .filter_map(|(index, plan)| match &plan.count {
            Count::Matching(condition) => Some((index, condition.clone())),
            _ => None,
        })
        .collect();
    if !matching.is_empty() {
        let mut aggregates = Vec::with_capacity(matching.len());
        for (index, condition) in &matching {
            aggregates.push(count(lit(1i64)).filter(condition.clone()).build()?.alias(format!("t{index}")));
        }
        let totals = table.clone().aggregate(vec![], aggregates)?.collect().await?;
        for (position, (index, _)) in matching.iter().enumerate() {
            counts[*index] = first_integer(&totals, position);
        }
    }
    for (index, plan) in plans.iter().enumerate() {
        counts[index] = match plan.count {
            Count::Matching(_) => continue,
            Count::Rows => plan.failures.clone().count().await? as u64,
            Count::Repeats => {
                let total = plan.failures.clone().aggregate(vec![], vec![sum(ident(REPEATS))])?;
                first_integer(&total.collect().await?, 0)
            }
        };
    }
    Ok(counts)
}

/// The integer in `column` of a one-row aggregate (0 when null: a sum of no rows).
fn first_integer(batches: &[datafusion::arrow::array::RecordBatch], column: usize) -> u64 {
    batches
        .iter()
        .find(|batch| batch.num_rows() > 0)
        .and_then(|batch| {
            batch
                .column(column)
                .as_primitive_opt::<Int64Type>()
                .filter(|values| values.is_valid(0))
                .map(|values| values.value(0))
        })
        .unwrap_or(0)
        .max(0) as u64
}

/// Writes up to [`SAMPLE_ROWS`] of a test's `failing` rows as the one Parquet file of
/// `folder`, or, without failing rows, removes what an earlier run left there; returns
/// the folder written.
async fn sample(
    failures: DataFrame,
    failing: u64,
    folder: &Location,
    failed: &(dyn Fn(DataFusionError) -> Error + Sync),
) -> Result<Option<String>> {
    let file = folder.child(&part_file_name("parquet"));
    if failing == 0 {
        journal::delete_if_present(&file).await?;
        return Ok(None);
    }
    let schema = std::sync::Arc::new(failures.schema().as_arrow().clone());
    let rows = failures.limit(0, Some(SAMPLE_ROWS)).map_err(failed)?.collect().await.map_err(failed)?;
    write_parquet(&file, schema, futures::stream::iter(rows.into_iter().map(Ok))).await?;
    Ok(Some(folder.to_string()))
}
