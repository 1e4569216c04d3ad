//! One writer per partition: a run holds the partition's lease from start to end. A
//! second run of the same as_of fails at once with exit code 5, naming the holder, or
//! waits for it with `--wait-for-lock`; the lease of a run that died expires. Two real
//! `fidelis` processes, on local disk and on S3 (moto).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{BUCKET, Output, Running, S3Server, Workspace, transactions_pipeline};

const AS_OF: &str = "2024-01-31";

fn workspace() -> (Workspace, PathBuf) {
    let ws = Workspace::new();
    ws.write("input/transactions/t.csv", "order_id,customer_id,order_ts,amount,kind\nO1,C1,2024-01-01,10.00,\n");
    let stages = "  first:\n    query: SELECT customer_id, amount FROM transactions";
    let pipeline = ws.write("pipeline.yaml", transactions_pipeline("fail", stages, "first"));
    (ws, pipeline)
}

fn run(ws: &Workspace, pipeline: &PathBuf, output: &Output, args: &[&str]) -> Command {
    let mut command = output.fidelis();
    command.arg("run").arg(pipeline).args(["--as-of", AS_OF]).args(args);
    command.arg("--set").arg(format!("input={}", ws.path("input").display()));
    command.arg("--set").arg(format!("output={}", output.url));
    command
}

/// A run that holds the lease, paused before publishing until it is signalled.
fn holder(ws: &Workspace, pipeline: &PathBuf, output: &Output, args: &[&str]) -> Running {
    let mut command = run(ws, pipeline, output, args);
    command.env("FIDELIS_FAILPOINT", "before-publish=pause");
    let mut running = Running::start(command, ws, "holder");
    running.wait_ready();
    running
}

fn finished(command: &mut Command) -> (i32, String) {
    let out = command.output().expect("fidelis runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn a_second_run_fails_fast_naming_the_holder_or_waits_for_it(ws: Workspace, pipeline: PathBuf, output: Output) {
    let first = holder(&ws, &pipeline, &output, &[]);

    let (code, stderr) = finished(&mut run(&ws, &pipeline, &output, &[]));
    assert_eq!(code, 5, "{stderr}");
    let holder = format!(" (pid {}), started ", first.pid());
    assert!(stderr.contains("is being written by another run ") && stderr.contains(&holder), "{stderr}");
    assert!(stderr.contains("wait for it with --wait-for-lock DURATION"), "{stderr}");

    let mut waiting = Running::start(run(&ws, &pipeline, &output, &["--wait-for-lock", "2m"]), &ws, "waiting");
    waiting.wait_for_log("waiting for the partition's lease");
    first.signal("TERM");
    assert_eq!(first.finish().code, Some(143));
    let waited = waiting.finish();
    assert_eq!(waited.code, Some(0), "{}", waited.stderr);

    let published = output.contents().await;
    let manifest: serde_json::Value =
        serde_json::from_slice(&published["_runs/as_of=2024-01-31/manifest.json"]).expect("a manifest");
    let run_id = manifest["run_id"].as_str().expect("a run id");
    assert!(run_id.ends_with(&format!("-{}", waited_pid(&waited.stderr))), "the waiting run published: {run_id}");
}

/// The pid in the run id of the `run started` line of `stderr`.
fn waited_pid(stderr: &str) -> String {
    let line = stderr.lines().find(|line| line.contains("run started")).expect("a run started line");
    let run_id = line.split("run_id=").nth(1).expect("run_id in the line");
    run_id.split_whitespace().next().and_then(|id| id.rsplit('-').next()).expect("a pid").to_string()
}

async fn a_lease_whose_holder_died_expires(ws: Workspace, pipeline: PathBuf, output: Output) {
    let first = holder(&ws, &pipeline, &output, &["--lease-ttl", "5s"]);
    let pid = first.pid();
    first.signal("KILL");
    assert_eq!(first.finish().signal, Some(9));
    assert!(output.contents().await.keys().any(|key| key.starts_with("_staging/as_of=2024-01-31/")), "staged files");

    let (code, stderr) = finished(&mut run(&ws, &pipeline, &output, &[]));
    assert_eq!(code, 5, "the dead run's lease holds until it expires: {stderr}");
    assert!(stderr.contains(&format!(" (pid {pid}), started ")), "{stderr}");

    let (code, stderr) = finished(&mut run(&ws, &pipeline, &output, &["--wait-for-lock", "1m"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        output.contents().await.keys().collect::<Vec<_>>(),
        [
            "_runs/as_of=2024-01-31/_SUCCESS",
            "_runs/as_of=2024-01-31/manifest.json",
            "first/as_of=2024-01-31/part-00000.parquet"
        ],
        "published, and the dead run's staging removed"
    );
}

#[tokio::test]
async fn on_local_disk_a_second_run_fails_fast_naming_the_holder_or_waits_for_it() {
    let (ws, pipeline) = workspace();
    let output = Output::local(&ws, "out");
    a_second_run_fails_fast_naming_the_holder_or_waits_for_it(ws, pipeline, output).await;
}

#[tokio::test]
async fn on_s3_a_second_run_fails_fast_naming_the_holder_or_waits_for_it() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let (ws, pipeline) = workspace();
    a_second_run_fails_fast_naming_the_holder_or_waits_for_it(ws, pipeline, Output::s3(&server, "warehouse")).await;
}

#[tokio::test]
async fn on_local_disk_a_lease_whose_holder_died_expires() {
    let (ws, pipeline) = workspace();
    let output = Output::local(&ws, "out");
    a_lease_whose_holder_died_expires(ws, pipeline, output).await;
}

#[tokio::test]
async fn on_s3_a_lease_whose_holder_died_expires() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let (ws, pipeline) = workspace();
    a_lease_whose_holder_died_expires(ws, pipeline, Output::s3(&server, "warehouse")).await;
}

#[test]
fn a_run_whose_lease_is_taken_over_stops_without_publishing() {
    let (ws, _) = workspace();
    let output = Output::local(&ws, "out");
    // A query that runs until it is cancelled (numbers counted one at a time).
    let stages = "  first:\n    query: WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers \
                  WHERE n < 1000000000000) SELECT count(*) AS n FROM transactions CROSS JOIN numbers";
    let slow = ws.write("slow.yaml", transactions_pipeline("fail", stages, "first"));
    let mut running = Running::start(run(&ws, &slow, &output, &["--lease-ttl", "3s"]), &ws, "slow");
    running.wait_for_log("source loaded");

    // Another run takes the lease over, as it would have had this one not renewed it.
    let usurper = r#"{"run_id": "usurper", "host": "elsewhere", "pid": 7, "started_at": "2024-01-01T00:00:00.000Z",
        "expires_at": "2999-01-01T00:00:00.000Z", "released": false}"#;
    ws.write("out/_runs/as_of=2024-01-31/_lease/00000000000000000002.json", usurper);
    let ended = running.finish();

    assert_eq!(ended.code, Some(5), "{}", ended.stderr);
    assert!(ended.stderr.contains("lost the lease of "), "{}", ended.stderr);
    assert!(ended.stderr.contains("another run usurper on host elsewhere (pid 7)"), "{}", ended.stderr);
    assert!(!ws.path("out/_runs/as_of=2024-01-31/_SUCCESS").exists(), "nothing published");
}
