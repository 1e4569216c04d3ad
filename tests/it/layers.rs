//! SQL layers as in dbt: a stage's layer is its SQL file's folder below `sql_dir`.
//! Staging models read sources; intermediate models read staging and intermediate
//! models, never marts; marts never read sources. A breach is a configuration error
//! of `validate` and of `run`, before anything runs.

use crate::support::{Workspace, fidelis};

/// A layered project that obeys the rules: orders → stg_orders → customer_totals →
/// customers (a mart), plus a `segments` source without a staging model.
pub fn layered_project() -> Workspace {
    let ws = Workspace::new();
    ws.write("data/orders.csv", "id,customer,amount\nO1,C1,10\nO2,C1,5\nO3,C2,7\n");
    ws.write("data/segments.csv", "customer,segment\nC1,gold\n");
    ws.write("sql/staging/stg_orders.sql", "SELECT id, customer, amount FROM orders");
    ws.write(
        "sql/intermediate/customer_totals.sql",
        "SELECT customer, SUM(amount) AS total FROM stg_orders GROUP BY customer",
    );
    ws.write("sql/marts/customers.sql", "SELECT customer, total FROM customer_totals");
    ws.write(
        "sql/marts/customers.yml",
        "description: One row per customer with an order.\ncolumns:\n  customer: The customer.\n  total: The sum of their order amounts.\n",
    );
    ws
}

/// The pipeline of [`layered_project`] with `extra` stages (YAML lines under `stages:`).
pub fn pipeline(ws: &Workspace, extra: &str) -> std::path::PathBuf {
    let data = ws.path("data").display().to_string();
    ws.write(
        "pipeline.yaml",
        format!(
            "name: layered
sql_dir: sql
sources:
  orders:
    url: {data}/orders.csv
    columns: {{id: string, customer: string, amount: integer}}
  segments:
    url: {data}/segments.csv
    columns: {{customer: string, segment: string}}
stages:
  stg_orders: {{sql: staging/stg_orders.sql}}
  customer_totals: {{sql: intermediate/customer_totals.sql}}
  customers: {{sql: marts/customers.sql}}
{extra}"
        ),
    )
}

fn load_error(ws: &Workspace, extra: &str, files: &[(&str, &str)]) -> String {
    for (path, content) in files {
        ws.write(path, content);
    }
    let error = fidelis::config::load(&pipeline(ws, extra)).expect_err("a layer is breached");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    ws.redact(&error.to_string())
}

#[test]
fn an_intermediate_model_must_not_read_a_mart() {
    let ws = layered_project();
    let text = load_error(
        &ws,
        "  big_customers: {sql: intermediate/big_customers.sql}\n",
        &[("sql/intermediate/big_customers.sql", "SELECT customer FROM customers WHERE total > 10")],
    );
    insta::assert_snapshot!(text, @r"
    the pipeline configuration has 1 error:
    [TMP]/pipeline.yaml:14:3: stage `big_customers` ([TMP]/sql/intermediate/big_customers.sql) is an intermediate model and reads the mart `customers` ([TMP]/sql/marts/customers.sql): intermediate models read staging and other intermediate models, never marts
      help: move what both need into an intermediate model in [TMP]/sql/intermediate/ that `customers` and `big_customers` both read
    ");
}

#[test]
fn an_intermediate_model_must_not_read_a_source() {
    let ws = layered_project();
    let text = load_error(
        &ws,
        "  order_counts: {sql: intermediate/order_counts.sql}\n",
        &[("sql/intermediate/order_counts.sql", "SELECT customer, COUNT(*) AS orders FROM orders GROUP BY customer")],
    );
    insta::assert_snapshot!(text, @r"
    the pipeline configuration has 1 error:
    [TMP]/pipeline.yaml:14:3: stage `order_counts` ([TMP]/sql/intermediate/order_counts.sql) is an intermediate model and reads the source `orders`: only staging models read sources
      help: read its staging model instead: `stg_orders`
    ");
}

#[test]
fn a_mart_must_not_read_a_source() {
    let ws = layered_project();
    let text = load_error(
        &ws,
        "  gold_customers: {sql: marts/gold_customers.sql}\n",
        &[(
            "sql/marts/gold_customers.sql",
            "SELECT c.customer FROM customers AS c JOIN segments AS s ON s.customer = c.customer WHERE s.segment = 'gold'",
        )],
    );
    insta::assert_snapshot!(text, @r"
    the pipeline configuration has 1 error:
    [TMP]/pipeline.yaml:14:3: stage `gold_customers` ([TMP]/sql/marts/gold_customers.sql) is a mart and reads the source `segments`: only staging models read sources
      help: add a staging model that reads it, e.g. [TMP]/sql/staging/stg_segments.sql (SELECT … FROM segments), and read that instead
    ");
}

#[test]
fn a_staging_model_reads_only_sources_and_staging_models() {
    let ws = layered_project();
    let text = load_error(
        &ws,
        "  stg_totals: {sql: staging/stg_totals.sql}\n",
        &[("sql/staging/stg_totals.sql", "SELECT * FROM customer_totals")],
    );
    insta::assert_snapshot!(text, @r"
    the pipeline configuration has 1 error:
    [TMP]/pipeline.yaml:14:3: stage `stg_totals` ([TMP]/sql/staging/stg_totals.sql) is a staging model and reads the intermediate model `customer_totals` ([TMP]/sql/intermediate/customer_totals.sql): staging models read sources (and other staging models) only
      help: a staging model only cleans up a source: move `stg_totals` to [TMP]/sql/intermediate/ (or [TMP]/sql/marts/ if it is published)
    ");
}

#[test]
fn marts_may_read_marts_and_stages_outside_the_layers_and_tests_are_not_checked() {
    let ws = layered_project();
    ws.write("sql/marts/top_customer.sql", "SELECT customer FROM customers ORDER BY total DESC LIMIT 1");
    ws.write("sql/analyses/raw_count.sql", "SELECT COUNT(*) AS n FROM orders");
    // An inline stage reads a mart and a source; a mart reads the inline stage; a mart's
    // data test reads a source (tests are not SQL models: they may read any table).
    let path = pipeline(
        &ws,
        "  top_customer:
    sql: marts/top_customer.sql
    tests:
      - relationships: {column: customer, to: segments.customer}
  raw_count: {sql: analyses/raw_count.sql}
  gold:
    query: SELECT c.customer FROM customers AS c JOIN segments AS s USING (customer)
  gold_report: {sql: marts/gold_report.sql}
",
    );
    ws.write("sql/marts/gold_report.sql", "SELECT customer FROM gold");
    let pipeline = fidelis::config::load(&path).expect("the layers are kept");
    let layers: Vec<(&str, Option<fidelis::config::Layer>)> =
        pipeline.stages.iter().map(|stage| (stage.name.as_str(), stage.layer())).collect();
    use fidelis::config::Layer::{Intermediate, Marts, Staging};
    assert_eq!(
        layers,
        [
            ("stg_orders", Some(Staging)),
            ("customer_totals", Some(Intermediate)),
            ("customers", Some(Marts)),
            ("top_customer", Some(Marts)),
            ("raw_count", None),
            ("gold", None),
            ("gold_report", Some(Marts)),
        ]
    );
}

#[test]
fn run_refuses_a_breach_before_it_starts() {
    let ws = layered_project();
    ws.write("sql/marts/order_count.sql", "SELECT COUNT(*) AS n FROM orders");
    let path = pipeline(&ws, "  order_count: {sql: marts/order_count.sql}\n");
    let output = fidelis().arg("run").arg(&path).args(["--as-of", "2024-01-31"]).output().expect("fidelis runs");
    let stderr = ws.redact(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "[TMP]/pipeline.yaml:14:3: stage `order_count` ([TMP]/sql/marts/order_count.sql) is a mart and reads the source `orders`: only staging models read sources\n  help: read its staging model instead: `stg_orders`"
        ),
        "{stderr}"
    );
}
