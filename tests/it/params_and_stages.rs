//! Parameters are bound as typed values, never spliced into SQL text; stage results
//! are computed once; `--only` runs a stage with what it reads.

use fidelis::plan::Overrides;

use crate::support::{Workspace, overrides, run, table, transactions_pipeline};

const INPUT: &str = "order_id,customer_id,order_ts,amount,kind\nO1,C1,2024-01-01,10.00,\nO2,C2,2024-01-02,20.00,\n";

fn workspace(stages: &str, tables: &str) -> (Workspace, std::path::PathBuf) {
    let workspace = Workspace::new();
    workspace.write("input/transactions/t.csv", INPUT);
    let yaml = transactions_pipeline("fail", stages, tables).replace(
        "  output: {type: string, default: out}",
        "  output: {type: string, default: out}\n  label: {type: string, default: plain}",
    );
    let path = workspace.write("pipeline.yaml", yaml);
    (workspace, path)
}

#[tokio::test]
async fn a_value_with_quotes_cannot_change_the_sql() {
    let (ws, path) = workspace(
        "  labelled:\n    query: SELECT $label AS label, COUNT(*) AS n FROM transactions WHERE customer_id <> $label",
        "labelled",
    );
    let output = ws.path("out").display().to_string();
    let input = ws.path("input").display().to_string();
    let hostile = "x' OR '1'='1'; DROP TABLE transactions; --";
    run(&path, "2024-01-31", &[("input", &input), ("output", &output), ("label", hostile)]).await.expect("run");
    let printed = table(&ws.path("out"), "labelled", "2024-01-31");
    assert!(printed.contains("| x' OR '1'='1'; DROP TABLE transactions; -- | 2 |"), "{printed}");
}

#[tokio::test]
async fn an_as_of_with_a_quote_is_rejected_as_a_date() {
    let (_ws, path) = workspace("  s:\n    query: SELECT $as_of AS d", "s");
    let pipeline = fidelis::config::load(&path).expect("valid");
    let bound = Overrides { set: vec![("as_of".into(), "2024-01-01' OR '1'='1".into())], ..Overrides::default() };
    let error = fidelis::plan::bind(&pipeline, &bound).expect_err("not a date");
    assert_eq!(
        error.to_string(),
        "usage error: --set as_of: `2024-01-01' OR '1'='1` is not a date in the form YYYY-MM-DD"
    );
}

#[tokio::test]
async fn set_overrides_environment_which_overrides_defaults() {
    let (_ws, path) = workspace("  s:\n    query: SELECT $label AS label", "s");
    let pipeline = fidelis::config::load(&path).expect("valid");
    let mut bound = overrides("2024-01-31", &[]);
    bound.env = vec![("FIDELIS_LABEL".into(), "from-env".into()), ("FIDELIS_UNRELATED".into(), "x".into())];
    let plan = fidelis::plan::bind(&pipeline, &bound).expect("binds");
    assert_eq!(plan.params["label"].to_string(), "from-env");
    bound.set = vec![("label".into(), "from-set".into())];
    let plan = fidelis::plan::bind(&pipeline, &bound).expect("binds");
    assert_eq!(plan.params["label"].to_string(), "from-set");
    assert_eq!(plan.params["as_of"].to_string(), "2024-01-31");
}

#[tokio::test]
async fn unknown_parameters_and_bad_values_are_usage_errors() {
    let (_ws, path) = workspace("  s:\n    query: SELECT 1 AS one", "s");
    let pipeline = fidelis::config::load(&path).expect("valid");
    let bound = overrides("2024-01-31", &[("lable", "x"), ("timezone", "Mars/Olympus")]);
    let error = fidelis::plan::bind(&pipeline, &bound).expect_err("invalid");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    insta::assert_snapshot!(error.to_string());
}

#[tokio::test]
async fn a_stage_read_by_two_stages_is_computed_once() {
    // random() gives a different value each time the stage would be computed.
    let (ws, path) = workspace(
        "  draw:\n    query: SELECT random() AS r\n  left_copy:\n    query: SELECT r FROM draw\n  right_copy:\n    query: SELECT r FROM draw",
        "left_copy, right_copy",
    );
    let output = ws.path("out").display().to_string();
    let input = ws.path("input").display().to_string();
    run(&path, "2024-01-31", &[("input", &input), ("output", &output)]).await.expect("run");
    let left = table(&ws.path("out"), "left_copy", "2024-01-31");
    let right = table(&ws.path("out"), "right_copy", "2024-01-31");
    assert_eq!(left, right);
}

#[tokio::test]
async fn only_runs_the_named_stage_and_what_it_reads() {
    let (_ws, path) = workspace(
        "  base:\n    query: SELECT customer_id FROM transactions\n  wanted:\n    query: SELECT COUNT(*) AS n FROM base\n  other:\n    query: SELECT 1 AS one",
        "wanted, other",
    );
    let pipeline = fidelis::config::load(&path).expect("valid");
    let mut bound = overrides("2024-01-31", &[]);
    bound.only = vec!["wanted".into()];
    let plan = fidelis::plan::bind(&pipeline, &bound).expect("binds");
    let stages: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, ["base", "wanted"]);
    assert_eq!(plan.tables, ["wanted"]);
}

/// A stage's `facts` are aggregates over its result, recorded in the manifest as JSON
/// values in the order declared: text, whole and fractional numbers, dates, booleans,
/// and null for an aggregate without a value.
#[tokio::test]
async fn stage_facts_are_aggregates_of_the_result_recorded_in_the_manifest() {
    let (ws, path) = workspace(
        "  totals:
    query: SELECT customer_id, amount, CAST(order_ts AS DATE) AS day FROM transactions
    facts:
      biggest_customer: max(customer_id) FILTER (WHERE amount = 20)
      orders: count(*)
      mean_amount: CAST(avg(amount) AS DOUBLE) / 2
      first_day: min(day)
      all_positive: bool_and(amount > 0)
      refunds: sum(amount) FILTER (WHERE amount < 0)",
        "totals",
    );
    let output = ws.path("out").display().to_string();
    let input = ws.path("input").display().to_string();
    let manifest = run(&path, "2024-01-31", &[("input", &input), ("output", &output)]).await.expect("run");
    let stage = manifest.stages.iter().find(|s| s.name == "totals").expect("the stage ran");
    assert_eq!(
        serde_json::to_value(&stage.facts).expect("JSON"),
        serde_json::json!({
            "biggest_customer": "C2",
            "orders": 2,
            "mean_amount": 7.5,
            "first_day": "2024-01-01",
            "all_positive": true,
            "refunds": null
        })
    );
}

/// `fidelis validate` plans every fact over its stage's columns and reports each one that
/// does not plan, with the file and line where it is written.
#[tokio::test]
async fn validate_rejects_a_fact_that_is_not_an_aggregate_of_the_stage() {
    let (ws, path) = workspace(
        "  totals:
    query: SELECT customer_id, amount FROM transactions
    facts:
      orders: count(*)
      customer: customer_id
      discount: max(discount)",
        "totals",
    );
    let pipeline = fidelis::config::load(&path).expect("the file is well formed");
    let input = ws.path("input").display().to_string();
    let error = fidelis::run::validate(&pipeline, &overrides("2024-01-31", &[("input", &input)]))
        .await
        .expect_err("two facts do not plan");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    insta::assert_snapshot!(ws.redact(&error.to_string()));
}
