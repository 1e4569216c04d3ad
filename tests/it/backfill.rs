//! Backfills (`fidelis run --from --to [--every]`): one ordinary run per date, oldest
//! first; a failed date does not stop the others; a per-date summary; the worst exit
//! code; `--skip-existing` skips dates published with the same pipeline version and
//! parameters.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Workspace, fidelis, files_below};

const ORDERS: &str =
    "order_id,customer_id,order_ts,amount\nO1,C1,2024-01-05,10.00\nO2,C2,2024-02-10,20.00\nO3,C1,2024-03-15,30.00\n";

/// Counts the orders up to as_of; fails (dividing by zero) on the day `fail_on`.
fn workspace() -> (Workspace, PathBuf) {
    let ws = Workspace::new();
    ws.write("input/transactions/t.csv", ORDERS);
    let pipeline = ws.write(
        "pipeline.yaml",
        r#"name: backfilled
params:
  input: {type: string, default: input}
  output: {type: string, default: out}
  fail_on: {type: date, default: 1900-01-01}
sources:
  transactions:
    url: ${input}/transactions/
    columns:
      order_id: string
      customer_id: string
      order_ts: timestamp
      amount: "decimal(18,2)"
stages:
  orders_to_date:
    query: >
      SELECT count(*) AS orders, 1 / CASE WHEN $as_of = $fail_on THEN 0 ELSE 1 END AS ok
      FROM transactions WHERE CAST(order_ts AS DATE) <= $as_of
outputs:
  root: ${output}
  tables: [orders_to_date]
"#,
    );
    (ws, pipeline)
}

fn backfill(ws: &Workspace, pipeline: &PathBuf, args: &[&str]) -> Command {
    let mut command = fidelis();
    command.arg("run").arg(pipeline).args(["--from", "2024-01-31", "--to", "2024-03-31"]).args(args);
    command.arg("--set").arg(format!("input={}", ws.path("input").display()));
    command.arg("--set").arg(format!("output={}", ws.path("out").display()));
    command
}

fn finished(command: &mut Command) -> (i32, String, String) {
    let out = command.output().expect("fidelis runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// The first line of each date's row of the summary: date and status.
fn statuses(stdout: &str) -> Vec<String> {
    stdout.lines().skip(1).map(|line| line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")).collect()
}

fn manifest(ws: &Workspace, as_of: &str) -> serde_json::Value {
    let path = ws.path(&format!("out/_runs/as_of={as_of}/manifest.json"));
    serde_json::from_slice(&std::fs::read(path).expect("a manifest")).expect("JSON")
}

#[test]
fn a_backfill_runs_each_month_end_in_order_and_exits_with_the_worst_code() {
    let (ws, pipeline) = workspace();
    let result = ws.path("result.json");
    let result_json = result.display().to_string();
    let (code, stdout, stderr) =
        finished(&mut backfill(&ws, &pipeline, &["--set", "fail_on=2024-02-29", "--result-json", &result_json]));

    assert_eq!(code, 4, "February's run failed at run time: {stderr}");
    assert_eq!(
        stdout.lines().next(),
        Some("backfill of backfilled: 2 published, 0 skipped, 1 failed, 0 not run (exit code 4)")
    );
    assert_eq!(statuses(&stdout), ["2024-01-31 published", "2024-02-29 failed", "2024-03-31 published"]);
    assert!(stdout.lines().nth(2).is_some_and(|line| line.contains("exit 4: run failed: ")), "{stdout}");
    assert_eq!(
        files_below(&ws.path("out")),
        [
            "_runs/as_of=2024-01-31/_SUCCESS",
            "_runs/as_of=2024-01-31/manifest.json",
            "_runs/as_of=2024-03-31/_SUCCESS",
            "_runs/as_of=2024-03-31/manifest.json",
            "orders_to_date/as_of=2024-01-31/part-00000.parquet",
            "orders_to_date/as_of=2024-03-31/part-00000.parquet",
        ]
    );
    assert_eq!(manifest(&ws, "2024-01-31")["tables"]["orders_to_date"]["rows"], 1);
    // Each date is run as of itself, in order.
    let started = |as_of: &str| manifest(&ws, as_of)["started_at"].as_str().map(str::to_string);
    assert!(started("2024-01-31") < started("2024-03-31"));

    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(&result).expect("result")).expect("JSON");
    assert_eq!(result["status"], "failed");
    assert_eq!(result["exit_code"], 4);
    let runs = result["runs"].as_array().expect("one summary per date");
    let summary: Vec<(&str, &str, i64)> = runs
        .iter()
        .map(|run| {
            (run["as_of"].as_str().unwrap(), run["status"].as_str().unwrap(), run["exit_code"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(summary, [("2024-01-31", "published", 0), ("2024-02-29", "failed", 4), ("2024-03-31", "published", 0)]);
    assert_eq!(runs[0]["tables"]["orders_to_date"]["rows"], 1);
    assert!(runs[1]["error"].as_str().is_some_and(|error| error.contains("Divide by zero")), "{}", runs[1]);
}

#[test]
fn skip_existing_skips_dates_published_with_the_same_version_and_parameters() {
    let (ws, pipeline) = workspace();
    let (code, _, stderr) = finished(&mut backfill(&ws, &pipeline, &["--every", "month"]));
    assert_eq!(code, 0, "{stderr}");
    let published = manifest(&ws, "2024-02-29");

    let (code, stdout, stderr) = finished(&mut backfill(&ws, &pipeline, &["--skip-existing"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(statuses(&stdout), ["2024-01-31 skipped", "2024-02-29 skipped", "2024-03-31 skipped"]);
    assert!(stdout.contains(&format!("published by run {} with the same", published["run_id"].as_str().unwrap())));
    assert_eq!(manifest(&ws, "2024-02-29"), published, "a skipped date is not published again");

    // Another parameter value is another computation.
    let (code, stdout, _) =
        finished(&mut backfill(&ws, &pipeline, &["--skip-existing", "--set", "fail_on=2000-01-01"]));
    assert_eq!(code, 0);
    assert_eq!(statuses(&stdout), ["2024-01-31 published", "2024-02-29 published", "2024-03-31 published"]);

    // So is another pipeline version: the SQL changed.
    let sql = std::fs::read_to_string(&pipeline).expect("the pipeline");
    std::fs::write(&pipeline, sql.replace("count(*) AS orders", "count(order_id) AS orders")).expect("edit");
    let (code, stdout, _) =
        finished(&mut backfill(&ws, &pipeline, &["--skip-existing", "--set", "fail_on=2000-01-01"]));
    assert_eq!(code, 0);
    assert_eq!(statuses(&stdout), ["2024-01-31 published", "2024-02-29 published", "2024-03-31 published"]);
    assert_ne!(manifest(&ws, "2024-02-29")["pipeline_version"], published["pipeline_version"]);
}

#[test]
fn a_backfill_is_given_a_range_or_an_as_of_not_both() {
    let (ws, pipeline) = workspace();
    let (code, _, stderr) = finished(backfill(&ws, &pipeline, &[]).args(["--as-of", "2024-01-31"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("the argument '--from <YYYY-MM-DD>' cannot be used with '--as-of <YYYY-MM-DD>'"),
        "{stderr}"
    );
    let (code, _, stderr) = finished(fidelis().arg("run").arg(&pipeline).args(["--to", "2024-01-31"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--from <YYYY-MM-DD>"), "--to needs --from: {stderr}");
}
