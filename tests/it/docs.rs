//! Docs: a schema file beside each mart's SQL describes the mart and every column it
//! outputs; `fidelis validate` holds the schema files to what the stages output, and
//! `fidelis docs` prints the DAG and the column docs as Markdown.

use std::path::Path;

use crate::layers::{layered_project, pipeline};
use crate::support::{Workspace, fidelis, repo};

/// `fidelis validate PIPELINE`: exit code and standard error, temporary paths redacted.
fn validate(ws: &Workspace, path: &Path) -> (Option<i32>, String) {
    let output = fidelis().arg("validate").arg(path).output().expect("fidelis runs");
    (output.status.code(), ws.redact(&String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn validate_accepts_a_mart_whose_schema_file_describes_every_column() {
    let ws = layered_project();
    let (code, stderr) = validate(&ws, &pipeline(&ws, ""));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn every_output_column_needs_a_description_and_no_description_names_another_column() {
    let ws = layered_project();
    ws.write(
        "sql/marts/customers.yml",
        "description: One row per customer with an order.\ncolumns:\n  customer: The customer.\n  totl: The sum of their order amounts.\n",
    );
    let (code, stderr) = validate(&ws, &pipeline(&ws, ""));
    assert_eq!(code, Some(2), "{stderr}");
    insta::assert_snapshot!(stderr, @r"
    error: the pipeline configuration has 2 errors:
    [TMP]/sql/marts/customers.yml:2:1: mart `customers` outputs column `total`, which has no description
      help: add `total: …` under `columns:`; shared/METRICS.md defines the contract's columns
    [TMP]/sql/marts/customers.yml:4:3: column `totl` is described, but mart `customers` does not output it (it outputs: customer, total)
      help: remove the description, or fix the column's name
    ");
}

#[test]
fn every_mart_needs_a_schema_file() {
    let ws = layered_project();
    std::fs::remove_file(ws.path("sql/marts/customers.yml")).expect("remove the schema file");
    let (code, stderr) = validate(&ws, &pipeline(&ws, ""));
    assert_eq!(code, Some(2), "{stderr}");
    insta::assert_snapshot!(stderr, @r"
    error: the pipeline configuration has 1 error:
    [TMP]/sql/marts/customers.sql: mart `customers` has no schema file
      help: create [TMP]/sql/marts/customers.yml with a `description:` of the mart and one of each column under `columns:` (see README.md, Layers and docs)
    ");
}

#[test]
fn a_schema_file_is_checked_like_the_pipeline_file() {
    let ws = layered_project();
    ws.write(
        "sql/marts/customers.yml",
        "description: One row per customer with an order.\ncolums:\n  customer: The customer.\n",
    );
    let error = fidelis::config::load(&pipeline(&ws, "")).expect_err("a misspelled key");
    insta::assert_snapshot!(ws.redact(&error.to_string()), @r"
    the pipeline configuration has 1 error:
    [TMP]/sql/marts/customers.yml:2:1: colums: unknown field `colums`, expected `description` or `columns`
      help: check the spelling of the key; schema files are described in README.md (Layers and docs)
    ");
}

#[test]
fn a_stage_is_described_in_its_schema_file_or_in_the_pipeline_not_both() {
    let ws = layered_project();
    let path = pipeline(&ws, "");
    let text = std::fs::read_to_string(&path).expect("the pipeline");
    let twice = text.replace(
        "  customers: {sql: marts/customers.sql}\n",
        "  customers:\n    sql: marts/customers.sql\n    description: Customers.\n",
    );
    std::fs::write(&path, twice).expect("write the pipeline");
    let error = fidelis::config::load(&path).expect_err("described twice");
    insta::assert_snapshot!(ws.redact(&error.to_string()), @r"
    the pipeline configuration has 1 error:
    [TMP]/pipeline.yaml:15:5: stage `customers` is described twice: here and in its schema file [TMP]/sql/marts/customers.yml
      help: keep the description in the schema file; `description:` in the pipeline is for stages without one
    ");
}

#[test]
fn docs_print_sources_stages_by_layer_and_column_docs() {
    let ws = layered_project();
    let path = pipeline(
        &ws,
        "  raw_count:
    query: SELECT COUNT(*) AS n FROM orders
    description: Orders | all of them.
  big_customers:
    query: SELECT customer FROM customers WHERE total > 5
    tests:
      - relationships: {column: customer, to: stg_orders.customer}
outputs:
  root: out
  tables: [customers]
",
    );
    let output = fidelis().arg("docs").arg(&path).output().expect("fidelis runs");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}

/// docs/pipeline.md is `fidelis docs pipelines/loyalty.yaml`, so it cannot drift from the
/// pipeline and its schema files.
#[test]
fn the_shipped_pipeline_docs_are_up_to_date() {
    let output = fidelis().args(["docs", "pipelines/loyalty.yaml"]).output().expect("fidelis runs");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let committed = std::fs::read_to_string(repo().join("docs/pipeline.md")).expect("docs/pipeline.md");
    assert!(
        committed == String::from_utf8_lossy(&output.stdout),
        "docs/pipeline.md is out of date: run `cargo run -- docs pipelines/loyalty.yaml > docs/pipeline.md`"
    );
}
