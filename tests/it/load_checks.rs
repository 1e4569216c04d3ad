//! Mistakes the pipeline compiler catches before anything runs (so in `validate` and at
//! the start of `run`), each with its file, line and a fix: a stage `counts` condition
//! that is not SQL, a `unique` column that is not declared.

use crate::support::Workspace;

fn load_error(yaml: &str) -> String {
    let ws = Workspace::new();
    let error = fidelis::config::load(&ws.write("pipeline.yaml", yaml)).expect_err("the pipeline is invalid");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    ws.redact(&error.to_string())
}

#[test]
fn a_counts_condition_must_be_one_sql_expression() {
    let text = load_error(
        "name: demo
sources:
  orders: {url: data/}
stages:
  shares:
    query: SELECT share > 1 AS capped, share FROM orders
    counts:
      capped_shares: capped
      big_shares: share >=
      two_things: capped share
",
    );
    insta::assert_snapshot!(text, @r#"
    the pipeline configuration has 2 errors:
    [TMP]/pipeline.yaml:9:7: stage `shares`: count `big_shares`: invalid SQL condition `share >=`: sql parser error: Expected: an expression, found: EOF
      help: write a SQL boolean expression over the stage's columns, e.g. `capped_shares: capped`
    [TMP]/pipeline.yaml:10:7: stage `shares`: count `two_things`: invalid SQL condition `capped share`: sql parser error: Expected: end of expression, found: share at Line: 1, Column: 8
      help: write a SQL boolean expression over the stage's columns, e.g. `capped_shares: capped`
    "#);
}

#[test]
fn a_unique_column_must_be_declared() {
    let text = load_error(
        "name: demo
sources:
  orders:
    url: data/
    columns:
      order_id: string
      amount: integer
    unique: [order_id, orderid]
",
    );
    insta::assert_snapshot!(text, @r"
    the pipeline configuration has 1 error:
    [TMP]/pipeline.yaml:8:5: source `orders` has no declared column `orderid`
      help: declare the column under `columns`, or fix the name
    ");
}
