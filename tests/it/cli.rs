//! The binary: help text, `validate`, and exit codes a scheduler can act on.

use crate::support::{Workspace, fidelis, repo};

fn output(command: &mut std::process::Command) -> (i32, String, String) {
    let out = command.output().expect("fidelis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_help_documents_flags_and_exit_codes() {
    let (code, stdout, _) = output(fidelis().args(["run", "--help"]));
    assert_eq!(code, 0);
    insta::assert_snapshot!(stdout);
}

#[test]
fn validate_plans_every_stage_of_the_shipped_pipeline() {
    let input = repo().join("tests/fixtures/summary").display().to_string();
    let (code, stdout, stderr) =
        output(fidelis().args(["validate", "pipelines/loyalty.yaml", "--set"]).arg(format!("input={input}")));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("pipeline `loyalty` is valid"), "{stdout}");
    assert!(stdout.contains("stage customer_summary: customer_id, first_purchase_date"), "{stdout}");
}

#[test]
fn exit_codes_tell_configuration_data_and_runtime_failures_apart() {
    let ws = Workspace::new();
    let bad_config = ws.write("bad.yaml", "name: x\nsources: {}\nstagez: {}\n");
    let (code, _, stderr) = output(fidelis().arg("run").arg(&bad_config));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bad.yaml:3:1: stagez: unknown field `stagez`"), "{stderr}");

    let (code, _, stderr) = output(fidelis().args(["run", "pipelines/loyalty.yaml", "--as-of", "2024-02-30"]));
    assert_eq!(code, 2, "{stderr}");

    ws.write("input/transactions/t.csv", "order_id,customer_id,order_ts,amount\nO1,C1,yesterday,1\n");
    let (code, _, stderr) = output(
        fidelis()
            .args(["run", "pipelines/loyalty.yaml", "--as-of", "2024-01-31", "--set"])
            .arg(format!("input={}", ws.path("input").display()))
            .arg("--set")
            .arg(format!("output={}", ws.path("out").display())),
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("t.csv line 2, column `order_ts`: not an ISO-8601 timestamp"), "{stderr}");

    // Nothing listens on port 9: storage is unreachable, which a retry may fix.
    let (code, _, stderr) = output(
        fidelis()
            .args(["run", "pipelines/loyalty.yaml", "--as-of", "2024-01-31", "--set", "input=s3://bucket/raw", "--set"])
            .arg(format!("output={}", ws.path("out").display()))
            .env("AWS_ENDPOINT", "http://127.0.0.1:9")
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test-secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(!stderr.contains("test-secret"), "credentials never appear in logs");
}

#[test]
fn json_logs_have_one_object_per_line_with_stage_rows_and_duration() {
    let ws = Workspace::new();
    let input = repo().join("tests/fixtures/summary").display().to_string();
    let (code, _, stderr) = output(
        fidelis()
            .args([
                "--log-format",
                "json",
                "run",
                "pipelines/loyalty.yaml",
                "--as-of",
                "2024-03-31",
                "--only",
                "kpi_monthly",
            ])
            .arg("--set")
            .arg(format!("input={input}"))
            .arg("--set")
            .arg(format!("output={}", ws.path("out").display())),
    );
    assert_eq!(code, 0, "{stderr}");
    let events: Vec<serde_json::Value> =
        stderr.lines().map(|line| serde_json::from_str(line).expect("every line is JSON")).collect();
    let stage = events.iter().find(|e| e["stage"] == "customer_history").expect("a stage event");
    assert_eq!(stage["rows"], 4);
    assert!(events.iter().any(|e| e["stage"] == "kpi_monthly"), "kpi_monthly ran");
    assert!(!events.iter().any(|e| e["stage"] == "clv_fit"), "--only skips what kpi_monthly does not read");
    assert!(stage["duration_ms"].is_u64());
}
