//! What a scheduler sees of the binary: exit codes it can act on (a bug is not a
//! retryable failure, a configuration mistake is found before running), a hung store
//! given up on, and logs fit for a file or a pipe.

use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Workspace, fidelis, files_below, summary_run};

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn a_panic_is_an_internal_error_with_its_own_exit_code() {
    // On the main task, and in a spawned task, whose failure reaches the top as a
    // runtime error (exit 4, "retry") unless the panic itself is noticed.
    for mode in ["main", "task"] {
        let output = fidelis()
            .args(["validate", "pipelines/loyalty.yaml"])
            .env("FIDELIS_DEBUG_PANIC", mode)
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("fidelis runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(70), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "internal error: fidelis {} panicked at src/main.rs:",
                env!("CARGO_PKG_VERSION")
            )),
            "{stderr}"
        );
        assert!(stderr.contains(&format!(": FIDELIS_DEBUG_PANIC={mode}\n")), "{stderr}");
        assert!(stderr.contains("This is a bug in fidelis"), "{stderr}");
        assert!(!stderr.contains("RUST_BACKTRACE"), "the default hook's note is replaced: {stderr}");
    }
}

#[test]
fn a_store_that_accepts_connections_but_never_answers_fails_the_run_retryably() {
    // Connections complete in the kernel's backlog; nothing ever reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    let ws = Workspace::new();
    let mut child = fidelis()
        .args(["run", "pipelines/loyalty.yaml", "--as-of", "2024-01-31", "--set", "input=s3://bucket/raw", "--set"])
        .arg(format!("output={}", ws.path("out").display()))
        .env("AWS_ENDPOINT", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fidelis runs");
    // With the default timeouts the request gives up after 30 s; the watchdog only
    // keeps a regression from hanging the suite (object_store's own default took 3 min).
    let watchdog = Instant::now() + Duration::from_secs(150);
    while child.try_wait().expect("the child's status").is_none() {
        if Instant::now() > watchdog {
            let _ = child.kill();
            panic!("the run was still waiting for the store after 150 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    // Sources load concurrently: whichever is listed first gives up.
    assert!(stderr.contains("error: run failed: source `"), "{stderr}");
    assert!(stderr.contains("cannot list s3://bucket/raw/"), "{stderr}");
    drop(listener);
}

#[test]
fn store_timeouts_that_are_not_durations_are_configuration_errors() {
    let ws = Workspace::new();
    let output = fidelis()
        .args(["validate", "pipelines/loyalty.yaml", "--set", "input=s3://bucket/raw"])
        .env("FIDELIS_STORE_TIMEOUT", "soon")
        .env("AWS_REGION", "us-east-1")
        .arg("--set")
        .arg(format!("output={}", ws.path("out").display()))
        .output()
        .expect("fidelis runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("environment variable FIDELIS_STORE_TIMEOUT: `soon` is not a duration"), "{stderr}");
}

#[test]
fn configuration_mistakes_are_found_when_the_pipeline_loads_not_while_it_runs() {
    let ws = Workspace::new();
    ws.write("in/orders/a.csv", "id,amount\n1,2\n1,3\n");
    let pipeline = |source: &str, stage: &str| {
        ws.write(
            "pipeline.yaml",
            format!(
                "name: demo\nsources:\n  orders:\n    url: {}\n{source}stages:\n  s:\n    query: {stage}\noutputs:\n  root: {}\n  tables: [s]\n",
                ws.path("in/orders").display(),
                ws.path("out").display()
            ),
        )
    };
    let run = |command: &str, path: &std::path::Path| {
        let output = fidelis().arg(command).arg(path).args(["--as-of", "2024-01-31"]).output().expect("fidelis runs");
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    // Each a run failing with exit 4 (or a panic) once its stage ran, before.
    for stage in ["SET datafusion.execution.batch_size = 1", "DROP TABLE orders", "CREATE TABLE t AS SELECT 1"] {
        let path = pipeline("", stage);
        let keyword = stage.split_whitespace().next().unwrap_or_default();
        for command in ["validate", "run"] {
            let (code, stderr) = run(command, &path);
            assert_eq!(code, Some(2), "{command} {stage}: {stderr}");
            assert!(
                stderr.contains(&format!(
                    "stage `s`: expected a query (SELECT, WITH … SELECT or VALUES), found a `{keyword}` statement"
                )),
                "{stderr}"
            );
        }
    }
    // A query that plans into a statement: `SELECT … INTO` creates a table.
    let path = pipeline("", "SELECT * INTO copy FROM orders");
    for command in ["validate", "run"] {
        let (code, stderr) = run(command, &path);
        assert_eq!(code, Some(2), "{command}: {stderr}");
        assert!(stderr.contains("stage `s`: Error during planning: DDL not supported: CreateMemoryTable"), "{stderr}");
    }
    // Uniqueness is checked on the declared columns; without any, it used to panic.
    let path = pipeline("    unique: [id]\n", "SELECT * FROM orders");
    for command in ["validate", "run"] {
        let (code, stderr) = run(command, &path);
        assert_eq!(code, Some(2), "{command}: {stderr}");
        assert!(stderr.contains("pipeline.yaml:5:5: source `orders` declares `unique` but no `columns`"), "{stderr}");
    }
    assert!(files_below(&ws.path("out")).is_empty(), "nothing ran");
}

#[test]
fn piped_logs_carry_no_colour_codes() {
    let ws = Workspace::new();
    let output = summary_run(&ws.path("out")).env_remove("NO_COLOR").output().expect("fidelis runs");
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("INFO run published"));
    assert!(!output.stderr.contains(&0x1b), "escape bytes in:\n{}", String::from_utf8_lossy(&output.stderr));

    // Asked for explicitly, a pipe gets them too; NO_COLOR still wins.
    let forced =
        summary_run(&ws.path("out")).env_remove("NO_COLOR").env("FORCE_COLOR", "1").output().expect("fidelis runs");
    assert!(forced.stderr.contains(&0x1b));
    let refused =
        summary_run(&ws.path("out")).env("NO_COLOR", "1").env("FORCE_COLOR", "1").output().expect("fidelis runs");
    assert!(!refused.stderr.contains(&0x1b));
}

/// The targets of the JSON log lines of a run with `FIDELIS_LOG=filter`.
fn log_targets(ws: &Workspace, filter: &str) -> Vec<String> {
    let output =
        summary_run(&ws.path("out")).args(["--log-format", "json"]).env("FIDELIS_LOG", filter).output().expect("runs");
    assert!(output.status.success(), "{}", text(&output));
    let mut targets: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            event["target"].as_str().expect("a target").to_string()
        })
        .collect();
    targets.sort();
    targets.dedup();
    targets
}

#[test]
fn debug_logs_are_fidelis_own_detail_unless_a_library_is_named() {
    let ws = Workspace::new();
    let own = log_targets(&ws, "debug");
    assert!(own.iter().all(|target| target.starts_with("fidelis::")), "{own:?}");
    assert!(own.contains(&"fidelis::stages".to_string()), "stage plans are fidelis's debug detail: {own:?}");
    let named = log_targets(&ws, "debug,datafusion=debug");
    assert!(named.contains(&"datafusion_optimizer::optimizer".to_string()), "{named:?}");
    assert!(!named.iter().any(|target| target.starts_with("sqlparser")), "{named:?}");
}
