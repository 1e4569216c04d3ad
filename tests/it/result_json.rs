//! `--result-json PATH`: the run's outcome as one JSON object for schedulers (Airflow's
//! XCom reads `/airflow/xcom/return.json`), written on success and on failure.

use std::process::Command;

use crate::support::{Workspace, fidelis, transactions_pipeline};

const ORDERS: &str = "order_id,customer_id,order_ts,amount,kind\nO1,C1,2024-01-01,10.00,\nO2,C2,2024-01-02,20.00,\n";

fn run(ws: &Workspace) -> Command {
    let stages = "  first:\n    query: SELECT customer_id, amount FROM transactions";
    let pipeline = ws.write("pipeline.yaml", transactions_pipeline("fail", stages, "first"));
    let mut command = fidelis();
    command.arg("run").arg(pipeline).args(["--as-of", "2024-01-31", "--result-json"]).arg(ws.path("xcom/return.json"));
    command.arg("--set").arg(format!("input={}", ws.path("input").display()));
    command.arg("--set").arg(format!("output={}", ws.path("out").display()));
    command
}

fn result(ws: &Workspace) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(ws.path("xcom/return.json")).expect("the result JSON")).expect("JSON")
}

#[test]
fn a_published_run_lists_its_tables_with_rows_and_urls() {
    let ws = Workspace::new();
    ws.write("input/transactions/t.csv", ORDERS);
    let out = run(&ws).output().expect("fidelis runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let result = result(&ws);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path("out/_runs/as_of=2024-01-31/manifest.json")).expect("manifest"))
            .expect("JSON");
    let url = format!("file://{}", ws.path("out/first/as_of=2024-01-31").display());
    assert_eq!(
        result,
        serde_json::json!({
            "status": "published",
            "exit_code": 0,
            "pipeline": "test",
            "as_of": "2024-01-31",
            "run_id": manifest["run_id"],
            "tables": {"first": {"rows": 2, "url": url}},
            "reports": {},
            "warnings": [],
            "error": null,
        })
    );
}

#[test]
fn a_failed_run_says_why_with_its_exit_code() {
    let ws = Workspace::new();
    ws.write("input/transactions/t.csv", format!("{ORDERS}O3,C3,2024-01-03,-1.00,\n"));
    let out = run(&ws).output().expect("fidelis runs");
    assert_eq!(out.status.code(), Some(3));

    let result = result(&ws);
    assert_eq!(result["status"], "failed");
    assert_eq!(result["exit_code"], 3);
    assert_eq!(result["as_of"], "2024-01-31");
    assert_eq!(result["run_id"], serde_json::Value::Null);
    let error = result["error"].as_str().expect("the error");
    assert!(error.starts_with("bad input data: source `transactions`: 1 bad row"), "{error}");
}

#[test]
fn a_pipeline_that_does_not_load_is_a_failed_run_too() {
    let ws = Workspace::new();
    let mut command = fidelis();
    command.args(["run", "missing.yaml", "--result-json"]).arg(ws.path("result.json"));
    let out = command.output().expect("fidelis runs");
    assert_eq!(out.status.code(), Some(2));
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path("result.json")).expect("the result JSON")).expect("JSON");
    assert_eq!((result["status"].as_str(), result["exit_code"].as_i64()), (Some("failed"), Some(2)));
    assert_eq!(result["pipeline"], serde_json::Value::Null);
    assert!(result["error"].as_str().is_some_and(|error| error.contains("missing.yaml")), "{result}");
}
