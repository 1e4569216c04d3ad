//! SIGTERM and SIGINT stop a run cleanly. Before publishing: at once, even in the middle
//! of a query, with the run's staging removed, the published partition byte for byte as
//! it was, one line said, and exit code 143 (130 for SIGINT). While publishing: once the
//! publish is finished, never half way. Each with a real `fidelis` process.

use std::path::PathBuf;

use crate::support::{Output, Running, Workspace, transactions_pipeline};

const AS_OF: &str = "2024-01-31";
const ORDERS: &str = "order_id,customer_id,order_ts,amount,kind\nO1,C1,2024-01-01,10.00,\nO2,C2,2024-01-02,20.00,\n";
const STOPPED: &str = "error: stopped by SIGTERM before publishing: the published data is unchanged";

/// A pipeline whose one table counts each customer's orders times `rows`, numbered one
/// at a time: with a trillion rows, a query that runs for days unless it is cancelled.
fn pipeline(ws: &Workspace, name: &str, rows: u64) -> PathBuf {
    let stage = format!(
        "  counted:\n    query: WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers \
         WHERE n < {rows}) SELECT t.customer_id, count(*) AS n FROM transactions t CROSS JOIN numbers \
         GROUP BY t.customer_id"
    );
    ws.write(name, transactions_pipeline("fail", &stage, "counted"))
}

/// A workspace whose output holds a partition published by a quick run.
fn published(ws: &Workspace, output: &Output) -> PathBuf {
    ws.write("input/transactions/t.csv", ORDERS);
    let quick = pipeline(ws, "quick.yaml", 3);
    let out = run(ws, output, &quick).output().expect("fidelis runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    quick
}

fn run(ws: &Workspace, output: &Output, pipeline: &PathBuf) -> std::process::Command {
    let mut command = output.fidelis();
    command.args(["--log-format", "json", "run"]).arg(pipeline).args(["--as-of", AS_OF]);
    command.arg("--set").arg(format!("input={}", ws.path("input").display()));
    command.arg("--set").arg(format!("output={}", output.url));
    command
}

/// The lines of standard error that are not JSON log events.
fn said(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|line| !line.starts_with('{')).collect()
}

#[tokio::test]
async fn sigterm_in_the_middle_of_a_query_stops_the_run_and_leaves_the_partition_as_it_was() {
    let ws = Workspace::new();
    let output = Output::local(&ws, "out");
    published(&ws, &output);
    let before = output.contents().await;

    let slow = pipeline(&ws, "slow.yaml", 1_000_000_000_000);
    let mut running = Running::start(run(&ws, &output, &slow), &ws, "slow");
    // The source is loaded: the only job left is the stage's query.
    running.wait_for_log("source loaded");
    running.signal("TERM");
    let ended = running.finish();

    assert_eq!(ended.code, Some(143), "{}", ended.stderr);
    assert_eq!(said(&ended.stderr), [STOPPED], "one line says what happened");
    assert!(output.contents().await == before, "the partition byte for byte as it was, and no staging left");
}

#[tokio::test]
async fn a_stop_signal_before_publishing_publishes_nothing() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let ws = Workspace::new();
        let output = Output::local(&ws, "out");
        let quick = published(&ws, &output);
        let before = output.contents().await;

        // New data, staged and ready to publish when the signal comes.
        ws.write("input/transactions/t.csv", format!("{ORDERS}O3,C3,2024-01-03,30.00,\n"));
        let mut command = run(&ws, &output, &quick);
        command.env("FIDELIS_FAILPOINT", "before-publish=pause").arg("--result-json").arg(ws.path("result.json"));
        let mut running = Running::start(command, &ws, "stopped");
        running.wait_ready();
        running.signal(signal);
        let ended = running.finish();

        assert_eq!(ended.code, Some(code), "{}", ended.stderr);
        let line = format!("error: stopped by SIG{signal} before publishing: the published data is unchanged");
        assert_eq!(said(&ended.stderr), [line.as_str()]);
        assert!(output.contents().await == before, "SIG{signal}: nothing published, no staging left");
        let result: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ws.path("result.json")).expect("the result JSON")).expect("JSON");
        assert_eq!(result["status"], "failed");
        assert_eq!(result["exit_code"], code);
        assert_eq!(result["error"], line.trim_start_matches("error: "));
    }
}

#[tokio::test]
async fn sigterm_while_publishing_lets_the_publish_finish() {
    let ws = Workspace::new();
    let output = Output::local(&ws, "out");
    let quick = published(&ws, &output);

    ws.write("input/transactions/t.csv", format!("{ORDERS}O3,C3,2024-01-03,30.00,\n"));
    let mut command = run(&ws, &output, &quick);
    // Step 4 of the publish: the table's previous version is kept aside, the new one not yet in place.
    command.env("FIDELIS_FAILPOINT", "publish:4=pause");
    let mut running = Running::start(command, &ws, "publishing");
    running.wait_ready();
    running.signal("TERM");
    let ended = running.finish();

    assert_eq!(ended.code, Some(0), "the run published: {}", ended.stderr);
    assert!(ended.stderr.contains("SIGTERM received while publishing: the publish was completed first"));
    let after = output.contents().await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        [
            "_runs/as_of=2024-01-31/_SUCCESS",
            "_runs/as_of=2024-01-31/manifest.json",
            "counted/as_of=2024-01-31/part-00000.parquet"
        ],
        "the whole partition, no journal or staging left"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&after["_runs/as_of=2024-01-31/manifest.json"]).expect("the manifest");
    assert_eq!(manifest["tables"]["counted"]["rows"], 3, "the new run's table: three customers");
}
