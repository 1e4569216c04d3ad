//! The memory budget: a run under a budget far smaller than its data publishes the same
//! tables, value for value, as an unlimited run — its sources and stage results live on
//! disk, its stages run in their memory-frugal form (sort-merge joins, streaming windows)
//! and their sorts and aggregations spill — and a budget too small for the work fails
//! with exit code 4, naming the stage and what to do, and publishes nothing.

use std::path::Path;

use fidelis::config::Format;
use fidelis::manifest::Manifest;
use fidelis::sample_data::{self, SampleSpec};
use fidelis::storage::Storage;

use crate::support::{Running, Workspace, fidelis, files_below, overrides, partition_file, read_parquet, repo};

const AS_OF: &str = "2026-10-31";

/// 20,000 generated customers (about 80,000 orders) as Parquet under `{ws}/input`.
async fn generated(ws: &Workspace) {
    let spec = SampleSpec { customers: 20_000, seed: 3, end_date: AS_OF.parse().expect("a date"), years: 3 };
    let input = Storage::new().resolve(&ws.path("input").display().to_string()).expect("a location");
    sample_data::write(&spec, &input, Format::Parquet).await.expect("sample written");
}

/// Runs the shipped pipeline on `{ws}/input` into `{ws}/{output}` within `memory_limit`
/// bytes. Under a limit it runs one job at a time, so that what goes to disk does not
/// depend on which stages happen to run together.
async fn run(ws: &Workspace, output: &str, memory_limit: Option<u64>) -> fidelis::Result<Manifest> {
    let pipeline = fidelis::config::load(&repo().join("pipelines/loyalty.yaml")).expect("the shipped pipeline");
    let (input, out) = (ws.path("input").display().to_string(), ws.path(output).display().to_string());
    let mut bound = overrides(AS_OF, &[("input", &input), ("output", &out)]);
    bound.memory_limit = memory_limit;
    bound.threads = memory_limit.map(|_| 1);
    bound.spill_dir = Some(ws.path("spill"));
    std::fs::create_dir_all(ws.path("spill")).expect("spill folder");
    fidelis::run::run(&pipeline, &bound).await
}

fn spilled(manifest: &Manifest, stage: &str) -> u64 {
    manifest.stages.iter().find(|s| s.name == stage).map_or(0, |s| s.spilled_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_budget_spills_everywhere_and_publishes_the_same_tables() {
    let ws = Workspace::new();
    generated(&ws).await;
    let unlimited = run(&ws, "unlimited", None).await.expect("an unlimited run");
    assert_eq!(unlimited.spilled_bytes, 0, "nothing spills without a limit");

    let budget = 24 << 20;
    let small = run(&ws, "small", Some(budget)).await.expect("a run within 24 MiB");
    assert_eq!(small.memory_limit_bytes, budget);
    // Every kind of spilling happened: the largest source and stage results went to disk,
    // stages ran in their frugal form, and sorts and aggregations spilled.
    assert!(small.sources["transactions"].spilled_bytes > 0, "the orders live on disk");
    assert!(spilled(&small, "stg_transactions") > 0, "a stage result lives on disk");
    let spills: Vec<(&str, u64)> = small.stages.iter().map(|s| (s.name.as_str(), s.spilled_bytes)).collect();
    assert!(spilled(&small, "rfm") > 0, "the sorts of the scores' ranks spill: {spills:?}");
    assert!(spilled(&small, "customer_history") > 0, "the aggregation per customer spills");
    let frugal: Vec<&str> = small.stages.iter().filter(|s| s.memory_frugal).map(|s| s.name.as_str()).collect();
    for stage in ["purchase_days", "customer_history", "share_of_wallet", "rfm_values"] {
        assert!(frugal.contains(&stage), "{stage} ran frugally: {frugal:?}");
    }
    assert!(small.spilled_bytes >= small.stages.iter().map(|s| s.spilled_bytes).sum::<u64>());

    assert_eq!(small.tables.keys().collect::<Vec<_>>(), unlimited.tables.keys().collect::<Vec<_>>());
    for table in unlimited.tables.keys() {
        let expected = read_parquet(&partition_file(&ws.path("unlimited"), table, AS_OF));
        let found = read_parquet(&partition_file(&ws.path("small"), table, AS_OF));
        assert_eq!(concat(&found), concat(&expected), "table {table}");
    }
    assert!(files_below(&ws.path("spill")).is_empty(), "spill files are removed after the run");
}

fn concat(batches: &[datafusion::arrow::array::RecordBatch]) -> datafusion::arrow::array::RecordBatch {
    datafusion::arrow::compute::concat_batches(&batches[0].schema(), batches).expect("same schema")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_cannot_fit_fails_with_exit_code_4_and_publishes_nothing() {
    let ws = Workspace::new();
    generated(&ws).await;
    let error = run(&ws, "out", Some(2 << 20)).await.expect_err("2 MiB cannot hold a hash table");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::RUNTIME);
    let message = error.to_string();
    assert!(message.contains("does not fit in the memory budget of 2.0 MiB (--memory-limit)"), "{message}");
    assert!(message.contains("stage `"), "names the stage: {message}");
    assert!(message.contains("raise the budget with --memory-limit"), "{message}");
    assert!(message.contains("--spill-dir"), "{message}");
    assert!(published(&ws.path("out")).is_empty(), "nothing published: {:?}", files_below(&ws.path("out")));
    assert!(files_below(&ws.path("spill")).is_empty(), "spill files are removed after a failed run");
}

/// Runs the shipped pipeline on the generated input in a `fidelis` process with
/// `failpoint` armed, expects it to publish after exactly one rerun alone of `work` (its
/// warning saying `rerun`, and why), and returns its manifest; the run's output goes to
/// `alone`.
fn published_after_one_rerun_alone(ws: &Workspace, failpoint: &str, rerun: &str, work: &str) -> serde_json::Value {
    let out = ws.path("alone");
    let mut command = fidelis();
    command
        .args(["run", "pipelines/loyalty.yaml", "--as-of", AS_OF, "--threads", "2", "--set"])
        .arg(format!("input={}", ws.path("input").display()))
        .arg("--set")
        .arg(format!("output={}", out.display()))
        .arg("--spill-dir")
        .arg(ws.path("spill"))
        .env("FIDELIS_FAILPOINT", failpoint);
    let ended = Running::start(command, ws, "alone").finish();

    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    let reruns: Vec<&str> = ended.stderr.lines().filter(|l| l.contains(rerun)).collect();
    assert_eq!(reruns.len(), 1, "{}", ended.stderr);
    assert!(reruns[0].contains(work) && reruns[0].contains("does not fit in the memory budget"), "{}", reruns[0]);
    assert!(files_below(&ws.path("spill")).is_empty(), "spill files are removed after the run");
    serde_json::from_slice(&std::fs::read(out.join(format!("_runs/as_of={AS_OF}/manifest.json"))).expect("manifest"))
        .expect("JSON")
}

/// A stage that runs out of memory beside other jobs, even in its frugal form, runs again
/// once they are done, alone and on one partition, and the run publishes the same tables
/// as one where it fitted. At 10 M customers under 4 GiB the largest stages can, depending
/// on which stages happen to run together; here a failure point makes one do so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_out_of_memory_beside_others_runs_again_alone_with_the_same_result() {
    let ws = Workspace::new();
    generated(&ws).await;
    let expected = run(&ws, "expected", None).await.expect("a run");
    let stage = "customer_history";

    let manifest =
        published_after_one_rerun_alone(&ws, &format!("stage:{stage}=out-of-memory"), "it runs again alone", stage);
    let stages = manifest["stages"].as_array().expect("stage reports");
    let report = stages.iter().find(|s| s["name"] == stage).expect("the stage's report");
    assert_eq!((&report["partitions"], &report["memory_frugal"]), (&1.into(), &true.into()), "{report}");
    let frugal: Vec<&serde_json::Value> =
        stages.iter().filter(|s| s["memory_frugal"] == true).map(|s| &s["name"]).collect();
    assert_eq!(frugal, [stage], "only the stage rerun alone ran frugally");
    for table in expected.tables.keys() {
        let found = read_parquet(&partition_file(&ws.path("alone"), table, AS_OF));
        let expected = read_parquet(&partition_file(&ws.path("expected"), table, AS_OF));
        assert_eq!(concat(&found), concat(&expected), "table {table}");
    }
}

/// A stage's data tests that run out of memory beside other jobs run again alone once
/// they are done, and find what they found when they fitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stages_tests_out_of_memory_beside_others_run_again_alone_with_the_same_results() {
    let ws = Workspace::new();
    generated(&ws).await;
    let expected = run(&ws, "expected", None).await.expect("a run");
    let stage = "rfm";

    let manifest =
        published_after_one_rerun_alone(&ws, &format!("tests:{stage}=out-of-memory"), "they run again alone", stage);
    let found: Vec<(&str, &str, u64)> = manifest["tests"]
        .as_array()
        .expect("test results")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("a name"),
                t["stage"].as_str().expect("a stage"),
                t["failing_rows"].as_u64().expect("a count"),
            )
        })
        .collect();
    let expected: Vec<(&str, &str, u64)> =
        expected.tests.iter().map(|t| (t.name.as_str(), t.stage.as_str(), t.failing_rows)).collect();
    assert!(found.iter().any(|(_, tested, _)| *tested == stage), "{found:?}");
    assert_eq!(found, expected, "the same tests in the same order, with the same failing rows");
}

/// The published files below `root` (staging and leases aside).
fn published(root: &Path) -> Vec<String> {
    files_below(root).into_iter().filter(|f| !f.starts_with("_staging") && !f.starts_with("_runs/")).collect()
}
