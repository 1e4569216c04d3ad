//! Publishing is atomic and reruns are idempotent: a failed run leaves the published
//! partition as it was and nothing half-written; a rerun replaces the partition.

use crate::support::{Workspace, files_below, run, transactions_pipeline};

const GOOD: &str = "order_id,customer_id,order_ts,amount,kind\nO1,C1,2024-01-01,10.00,\nO2,C2,2024-01-02,20.00,\n";

fn pipeline(ws: &Workspace, second_stage: &str) -> std::path::PathBuf {
    let stages = format!(
        "  first:\n    query: SELECT customer_id, amount FROM transactions\n  second:\n    query: {second_stage}"
    );
    ws.write("pipeline.yaml", transactions_pipeline("fail", &stages, "first, second"))
}

fn set(ws: &Workspace) -> [(&'static str, String); 2] {
    [("input", ws.path("input").display().to_string()), ("output", ws.path("out").display().to_string())]
}

#[tokio::test]
async fn a_failing_stage_leaves_the_published_partition_untouched() {
    let ws = Workspace::new();
    ws.write("input/transactions/t.csv", GOOD);
    let [input, output] = set(&ws);
    let good = pipeline(&ws, "SELECT customer_id FROM first");
    run(&good, "2024-01-31", &[(input.0, &input.1), (output.0, &output.1)]).await.expect("first run");
    let published = files_below(&ws.path("out"));
    let before: Vec<Vec<u8>> = published.iter().map(|f| std::fs::read(ws.path("out").join(f)).expect("read")).collect();

    // The rerun fails in its second stage, after the first stage's table was staged.
    ws.write("input/transactions/t.csv", format!("{GOOD}O3,C3,2024-01-03,30.00,\n"));
    let failing = pipeline(&ws, "SELECT CAST(customer_id AS INT) AS broken FROM first");
    let error = run(&failing, "2024-01-31", &[(input.0, &input.1), (output.0, &output.1)]).await.expect_err("fails");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::RUNTIME, "{error}");

    assert_eq!(files_below(&ws.path("out")), published, "no new or missing files, staging cleaned up");
    let after: Vec<Vec<u8>> = published.iter().map(|f| std::fs::read(ws.path("out").join(f)).expect("read")).collect();
    assert!(before == after, "published files are byte-for-byte unchanged");
}

#[tokio::test]
async fn a_rerun_replaces_the_partition_and_its_quarantine() {
    let ws = Workspace::new();
    let [input, output] = set(&ws);
    let path = ws.write(
        "pipeline.yaml",
        transactions_pipeline(
            "quarantine",
            "  first:\n    query: SELECT customer_id, amount FROM transactions",
            "first",
        ),
    );
    ws.write("input/transactions/t.csv", format!("{GOOD}O3,C3,2024-01-03,-5.00,\n"));
    let manifest = run(&path, "2024-01-31", &[(input.0, &input.1), (output.0, &output.1)]).await.expect("first run");
    assert_eq!(manifest.sources["transactions"].rows_quarantined, 1);
    ws.write("input/transactions/t.csv", GOOD);
    let manifest = run(&path, "2024-01-31", &[(input.0, &input.1), (output.0, &output.1)]).await.expect("rerun");
    assert_eq!(manifest.tables["first"].rows, 2);
    assert_eq!(
        files_below(&ws.path("out")),
        [
            "_runs/as_of=2024-01-31/_SUCCESS",
            "_runs/as_of=2024-01-31/manifest.json",
            "first/as_of=2024-01-31/part-00000.parquet"
        ],
        "one file per partition; the quarantine partition of the first run is gone"
    );
    // Another as_of is another partition; the first stays.
    run(&path, "2024-01-15", &[(input.0, &input.1), (output.0, &output.1)]).await.expect("other as_of");
    assert!(ws.path("out/first/as_of=2024-01-31/part-00000.parquet").exists());
    assert!(ws.path("out/first/as_of=2024-01-15/part-00000.parquet").exists());
}

#[tokio::test]
async fn the_manifest_is_written_last_and_describes_the_run() {
    let ws = Workspace::new();
    ws.write("input/transactions/t.csv", GOOD);
    let [input, output] = set(&ws);
    let path = pipeline(&ws, "SELECT customer_id FROM first");
    run(&path, "2024-01-31", &[(input.0, &input.1), (output.0, &output.1)]).await.expect("run");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path("out/_runs/as_of=2024-01-31/manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["as_of"], "2024-01-31");
    assert_eq!(manifest["sources"]["transactions"]["rows_read"], 2);
    assert_eq!(manifest["sources"]["transactions"]["files"][0]["size"], GOOD.len());
    assert_eq!(manifest["tables"]["first"]["rows"], 2);
    assert_eq!(manifest["stages"].as_array().map(Vec::len), Some(2));
    assert_eq!(manifest["parameters"]["as_of"], "2024-01-31");
}
