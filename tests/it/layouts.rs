//! Parquet as pandas, Spark and a warehouse unload write it — text as large_string
//! or dictionaries, naive nanosecond timestamps, UTC instants, decimal(38,10),
//! float amounts, months as text or as dates, Spark's INT96 instants — loads to the same values as the same
//! rows in CSV, naive times read in the pipeline's timezone (New York). The fixtures
//! and the script that wrote them are in `tests/fixtures/layouts/`.

use std::path::Path;

use crate::support::{Workspace, repo, run, table};

const PIPELINE: &str = r#"name: layouts
params:
  input: {type: string, default: input}
  output: {type: string, default: out}
sources:
  transactions:
    url: ${input}/transactions/
    columns:
      order_id: {type: string, required: true}
      customer_id: {type: string, required: true}
      order_ts: {type: timestamp, required: true}
      amount: {type: "decimal(18,2)", required: true}
  wallet:
    url: ${input}/wallet/
    columns:
      customer_id: {type: string, required: true}
      period: {type: month, required: true}
      category_spend: {type: "decimal(18,2)", required: true}
      loaded_at: timestamp
stages:
  orders:
    query: >
      SELECT order_id, customer_id, order_ts, local_date(order_ts, 'America/New_York') AS order_day, amount
      FROM transactions ORDER BY order_id
  wallet_months:
    query: SELECT customer_id, period, category_spend, loaded_at FROM wallet ORDER BY customer_id
outputs:
  root: ${output}
  tables: [orders, wallet_months]
"#;

/// The published `orders` and `wallet_months` of a run over `input`.
async fn published(input: &Path) -> (String, String) {
    let ws = Workspace::new();
    let path = ws.write("pipeline.yaml", PIPELINE);
    let (input, output) = (input.display().to_string(), ws.path("out").display().to_string());
    let set = [("input", input.as_str()), ("output", output.as_str()), ("timezone", "America/New_York")];
    run(&path, "2024-12-31", &set).await.unwrap_or_else(|error| panic!("{input}: {error}"));
    (table(&ws.path("out"), "orders", "2024-12-31"), table(&ws.path("out"), "wallet_months", "2024-12-31"))
}

#[tokio::test]
async fn parquet_of_pandas_spark_and_warehouses_loads_as_the_same_csv() {
    let fixtures = repo().join("tests/fixtures/layouts");
    let csv = published(&fixtures.join("csv")).await;
    // O1 in winter (UTC-5); O2 in the gap of 2024-03-10 (read with the offset before
    // it); O3 on the last evening of April (1 May in UTC); O4 in the repeated hour of
    // 2024-11-03 (the earlier one, UTC-4).
    insta::assert_snapshot!("orders", csv.0);
    insta::assert_snapshot!("wallet_months", csv.1);
    for tool in ["pandas", "spark", "warehouse"] {
        assert_eq!(published(&fixtures.join(tool)).await, csv, "{tool}");
    }
}
