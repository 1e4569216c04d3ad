//! Publishing is atomic and reruns are idempotent: a failed run leaves the published
//! partition as it was and nothing half-written; a rerun replaces the partition. A
//! partition holds exactly what its manifest lists: `--only` keeps the other tables of
//! the published run (computed alike) and says so; a full run removes what it no longer
//! writes.

use indexmap::IndexMap;

use crate::support::{Output, Workspace, files_below, run, run_only, transactions_pipeline};

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

#[tokio::test]
async fn regression_a_published_run_leaves_no_empty_staging_folder() {
    let ws = Workspace::new();
    ws.write("input/transactions/t.csv", GOOD);
    let [input, output] = set(&ws);
    let path = pipeline(&ws, "SELECT customer_id FROM first");
    run(&path, "2024-01-31", &[(input.0, &input.1), (output.0, &output.1)]).await.expect("run");
    assert!(!ws.path("out/_staging").exists(), "the staging folders are removed with their files");
}

/// Two independent tables; `big` is set by the `min_amount` parameter.
fn two_tables(ws: &Workspace, tables: &str) -> std::path::PathBuf {
    let stages = "  customers:\n    query: SELECT DISTINCT customer_id FROM transactions\n  big:\n    query: \
                  SELECT order_id, amount FROM transactions WHERE amount >= $min_amount";
    let yaml = transactions_pipeline("quarantine", stages, tables)
        .replace("params:\n", "params:\n  min_amount: {type: integer, default: 0}\n");
    ws.write("pipeline.yaml", yaml)
}

#[tokio::test]
async fn only_republishes_its_tables_and_keeps_the_others_of_the_published_run() {
    let ws = Workspace::new();
    let [input, output] = set(&ws);
    let path = two_tables(&ws, "customers, big");
    ws.write("input/transactions/t.csv", format!("{GOOD}O3,C3,2024-01-03,-5.00,\n"));
    let set = [(input.0, input.1.as_str()), (output.0, output.1.as_str())];
    let full = run(&path, "2024-01-31", &set).await.expect("full run");
    let customers = ws.path("out/customers/as_of=2024-01-31/part-00000.parquet");
    let customers_bytes = std::fs::read(&customers).expect("customers");

    // New data: only `big` is computed again; `customers` is kept, and said to be.
    ws.write("input/transactions/t.csv", format!("{GOOD}O3,C3,2024-01-03,-5.00,\nO4,C4,2024-01-04,40.00,\n"));
    let partial = run_only(&path, "2024-01-31", &set, &["big"]).await.expect("--only big");
    assert_eq!(partial.tables["big"].rows, 3);
    assert_eq!(partial.tables["customers"].rows, 2, "the published table, listed as it is");
    assert_eq!(partial.kept, IndexMap::from([("customers".to_string(), full.run_id.clone())]));
    assert_eq!(std::fs::read(&customers).expect("customers"), customers_bytes, "kept byte for byte");
    assert_eq!(
        files_below(&ws.path("out")),
        [
            "_quarantine/transactions/as_of=2024-01-31/part-00000.parquet",
            "_runs/as_of=2024-01-31/_SUCCESS",
            "_runs/as_of=2024-01-31/manifest.json",
            "big/as_of=2024-01-31/part-00000.parquet",
            "customers/as_of=2024-01-31/part-00000.parquet",
        ]
    );
    let published: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path("out/_runs/as_of=2024-01-31/manifest.json")).expect("manifest"))
            .expect("JSON");
    assert_eq!(published["kept"]["customers"], full.run_id.as_str());
    assert_eq!(published["tables"]["customers"]["rows"], 2);

    // Kept again by the next partial run: still the full run's.
    let again = run_only(&path, "2024-01-31", &set, &["big"]).await.expect("--only big again");
    assert_eq!(again.kept["customers"], full.run_id);
}

#[tokio::test]
async fn only_refuses_to_publish_beside_tables_computed_with_other_parameters() {
    let ws = Workspace::new();
    let [input, output] = set(&ws);
    let path = two_tables(&ws, "customers, big");
    ws.write("input/transactions/t.csv", GOOD);
    let set = [(input.0, input.1.as_str()), (output.0, output.1.as_str())];
    let full = run(&path, "2024-01-31", &set).await.expect("full run");
    let out = Output::local(&ws, "out");
    let before = out.contents().await;

    let other = [set[0], set[1], ("min_amount", "15")];
    let error = run_only(&path, "2024-01-31", &other, &["big"]).await.expect_err("refused");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    assert_eq!(
        error.to_string(),
        format!(
            "usage error: --only would publish its tables into partition as_of=2024-01-31 beside the tables of run \
             {}, which was computed differently (`min_amount` 0, now 15); run the whole pipeline, or write this run \
             elsewhere (--set output=…)",
            full.run_id
        )
    );
    assert!(out.contents().await == before, "nothing published");
}

#[tokio::test]
async fn only_into_an_empty_partition_publishes_its_tables_alone() {
    let ws = Workspace::new();
    let [input, output] = set(&ws);
    let path = two_tables(&ws, "customers, big");
    ws.write("input/transactions/t.csv", GOOD);
    let manifest =
        run_only(&path, "2024-01-31", &[(input.0, &input.1), (output.0, &output.1)], &["big"]).await.expect("run");
    assert_eq!(manifest.tables.keys().collect::<Vec<_>>(), ["big"]);
    assert!(manifest.kept.is_empty());
    assert_eq!(
        files_below(&ws.path("out")),
        [
            "_runs/as_of=2024-01-31/_SUCCESS",
            "_runs/as_of=2024-01-31/manifest.json",
            "big/as_of=2024-01-31/part-00000.parquet"
        ]
    );
}

#[tokio::test]
async fn a_full_run_removes_the_tables_its_pipeline_no_longer_writes() {
    let ws = Workspace::new();
    let [input, output] = set(&ws);
    ws.write("input/transactions/t.csv", GOOD);
    let set = [(input.0, input.1.as_str()), (output.0, output.1.as_str())];
    run(&two_tables(&ws, "customers, big"), "2024-01-31", &set).await.expect("both tables");
    let manifest = run(&two_tables(&ws, "customers"), "2024-01-31", &set).await.expect("one table");
    assert_eq!(manifest.tables.keys().collect::<Vec<_>>(), ["customers"]);
    assert_eq!(
        files_below(&ws.path("out")),
        [
            "_runs/as_of=2024-01-31/_SUCCESS",
            "_runs/as_of=2024-01-31/manifest.json",
            "customers/as_of=2024-01-31/part-00000.parquet"
        ],
        "`big` is gone with the run that wrote it"
    );
}
