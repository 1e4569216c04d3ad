//! The pipeline on an Apache Ballista cluster (`--features cluster`): an in-process
//! cluster (`fidelis::cluster::Standalone`) for the run's semantics, and real
//! `fidelis cluster scheduler` / `fidelis cluster executor` processes on loopback with
//! moto's S3 server as the store they share. Every published table is compared with a
//! local run of the same pipeline on the same data.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Command;

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use fidelis::cluster::{ClusterRun, ClusterUrl, Standalone, block_on_deep_stack};
use fidelis::config::Format;
use fidelis::manifest::Manifest;
use fidelis::sample_data::{self, SampleSpec};
use fidelis::storage::Storage;

use crate::support::{BUCKET, Output, Running, S3Server, Workspace, overrides, repo};

const AS_OF: &str = "2026-11-21";

/// Partitions of each stage's query on the test clusters: more than one per executor.
const PARTITIONS: usize = 4;

/// Runs the shipped pipeline on `input` into `output`, on `cluster` if given.
async fn shipped(input: &str, output: &str, cluster: Option<&ClusterUrl>) -> fidelis::Result<Manifest> {
    let pipeline = fidelis::config::load(&repo().join("pipelines/loyalty.yaml")).expect("the shipped pipeline");
    let mut bound = overrides(AS_OF, &[("input", input), ("output", output)]);
    bound.cluster = cluster.map(|url| ClusterRun { url: url.clone(), partitions: PARTITIONS });
    fidelis::run::run(&pipeline, &bound).await
}

/// A cell of a published table: a float, or any other value as text.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cell {
    Exact(String),
    Float(Option<f64>),
}

/// The rows of a Parquet file, sorted, and its schema as text.
fn rows(parquet: Bytes) -> (String, Vec<Vec<Cell>>) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(parquet).expect("Parquet").build().expect("a reader");
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("readable batches");
    let schema = batches.first().map(|b| format!("{:#?}", b.schema().fields())).unwrap_or_default();
    let mut rows = Vec::new();
    for batch in &batches {
        let columns: Vec<Box<dyn Fn(usize) -> Cell + '_>> = batch
            .columns()
            .iter()
            .map(|column| -> Box<dyn Fn(usize) -> Cell + '_> {
                match column.data_type() {
                    DataType::Float64 => {
                        let floats = column.as_primitive::<Float64Type>();
                        Box::new(move |row| Cell::Float(floats.is_valid(row).then(|| floats.value(row))))
                    }
                    _ => {
                        let formatter =
                            ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default()).expect("a formatter");
                        Box::new(move |row| Cell::Exact(formatter.value(row).to_string()))
                    }
                }
            })
            .collect();
        rows.extend((0..batch.num_rows()).map(|row| columns.iter().map(|cell| cell(row)).collect::<Vec<_>>()));
    }
    // Rows come in another order from a cluster (unless the stage orders them).
    rows.sort_by(|a, b| a.partial_cmp(b).expect("comparable rows"));
    (schema, rows)
}

/// Asserts that every published table and quarantine table of `cluster` holds what
/// `local`'s does; returns how many tables there are.
async fn assert_same_tables(local: &Output, cluster: &Output) -> usize {
    let tables = |contents: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Bytes> {
        contents
            .into_iter()
            .filter(|(path, _)| path.ends_with(".parquet"))
            .map(|(path, bytes)| (path, Bytes::from(bytes)))
            .collect()
    };
    let (expected, found) = (tables(local.contents().await), tables(cluster.contents().await));
    assert_eq!(found.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "the same files");
    for (path, bytes) in &expected {
        let (expected_schema, expected_rows) = rows(bytes.clone());
        let (found_schema, found_rows) = rows(found[path].clone());
        assert_eq!(found_schema, expected_schema, "{path}: the same columns");
        assert_eq!(found_rows.len(), expected_rows.len(), "{path}: the same number of rows");
        for (found_row, expected_row) in found_rows.iter().zip(&expected_rows) {
            let same = found_row.iter().zip(expected_row).all(|cells| match cells {
                // Value for value: sums over customers are exact or in a fixed order.
                (Cell::Float(Some(a)), Cell::Float(Some(b))) => a == b || (a.is_nan() && b.is_nan()),
                (a, b) => a == b,
            });
            assert!(same, "{path}: row differs\n  cluster: {found_row:?}\n  local:   {expected_row:?}");
        }
    }
    expected.len()
}

/// What a run's manifest says about its data, one line per fact, sorted (sources are
/// recorded as they finish loading): rows read, loaded and quarantined per source, rows,
/// counts and facts per stage, each data test's outcome, rows per table, and the warnings.
fn counts(manifest: &Manifest) -> Vec<String> {
    let sources = manifest.sources.iter().map(|(name, source)| {
        format!(
            "source {name}: {} read, {} loaded, {} quarantined",
            source.rows_read, source.rows_loaded, source.rows_quarantined
        )
    });
    let stages = manifest
        .stages
        .iter()
        .map(|stage| format!("stage {}: {} rows {:?} facts {:?}", stage.name, stage.rows, stage.counts, stage.facts));
    let tests = manifest.tests.iter().map(|test| {
        format!(
            "test {} of {}: {:?}, {} of {} rows failing",
            test.name, test.stage, test.status, test.failing_rows, test.rows
        )
    });
    let tables = manifest
        .tables
        .iter()
        .chain(&manifest.quarantine)
        .map(|(name, table)| format!("table {name}: {} rows", table.rows));
    let mut lines: Vec<String> =
        sources.chain(stages).chain(tests).chain(tables).chain(manifest.warnings.iter().cloned()).collect();
    lines.sort();
    lines
}

/// The manifest `output`'s run published.
async fn manifest(output: &Output) -> Manifest {
    let path = format!("_runs/as_of={AS_OF}/manifest.json");
    let contents = output.contents().await;
    serde_json::from_slice(contents.get(&path).expect("a published manifest")).expect("a manifest")
}

/// 20,000 generated customers (about 80,000 orders) as Parquet under `{ws}/input`:
/// enough rows for every stage to have several partitions with rows of their own (the
/// bundled sample is too small to show a cluster merging sorted partitions wrongly).
async fn generated(ws: &Workspace) -> String {
    let spec = SampleSpec { customers: 20_000, seed: 3, end_date: AS_OF.parse().expect("a date"), years: 3 };
    let input = ws.path("input").display().to_string();
    let location = Storage::new().resolve(&input).expect("a location");
    sample_data::write(&spec, &location, Format::Parquet).await.expect("sample written");
    input
}

#[test]
fn the_shipped_pipeline_on_an_in_process_cluster_publishes_the_local_tables() {
    block_on_deep_stack(|| async {
        let ws = Workspace::new();
        let input = generated(&ws).await;
        let cluster = Standalone::start(2, 2).await.expect("an in-process cluster");
        let (local, remote) = (Output::local(&ws, "local"), Output::local(&ws, "cluster"));
        let expected = shipped(&input, &local.url, None).await.expect("a local run");
        let found = shipped(&input, &remote.url, Some(cluster.url())).await.expect("a run on the cluster");

        assert_eq!(counts(&found), counts(&expected));
        assert!(
            found.stages.iter().all(|stage| stage.partitions == PARTITIONS),
            "every stage on {PARTITIONS} partitions"
        );
        assert_eq!(assert_same_tables(&local, &remote).await, 28, "every table of the pipeline");
        assert_eq!(found.reports.len(), 2, "the reports are rendered as locally");
        let staged = remote.contents().await.into_keys().filter(|path| path.starts_with("_staging")).count();
        assert_eq!(staged, 0, "the run's work location goes with its staging area");
    });
}

/// One good order, then bad ones (a null customer, an unparsable amount, a duplicate
/// order id, a failed check, a row with too many fields).
const ORDERS: &str = "\
order_id,customer_id,order_ts,amount,kind
O1,C1,2024-01-05T10:00:00Z,10.00,purchase
O2,,2024-01-06,11.00,purchase
O3,C3,2024-01-07,12;50,purchase
O1,C4,2024-01-08,14.00,purchase
O5,C5,2024-01-09,-3.00,purchase
O6,C6,2024-01-10,15.00,purchase,extra
O7,C7,2024-01-11,16.00,refund
";

#[test]
fn bad_rows_are_quarantined_or_fail_the_run_as_locally() {
    block_on_deep_stack(|| async {
        let ws = Workspace::new();
        ws.write("input/transactions/orders.csv", ORDERS);
        let cluster = Standalone::start(2, 1).await.expect("an in-process cluster");
        let stages = "  kept:\n    query: SELECT order_id, customer_id, amount FROM transactions ORDER BY order_id";
        let run = |mode: &str, output: String, cluster: Option<ClusterUrl>| {
            let path = ws.write(&format!("{mode}.yaml"), crate::support::transactions_pipeline(mode, stages, "kept"));
            let input = ws.path("input").display().to_string();
            async move {
                let pipeline = fidelis::config::load(&path).expect("the pipeline");
                let mut bound = overrides("2024-01-31", &[("input", &input), ("output", &output)]);
                bound.cluster = cluster.map(|url| ClusterRun { url, partitions: PARTITIONS });
                fidelis::run::run(&pipeline, &bound).await
            }
        };

        let (local, remote) = (Output::local(&ws, "local"), Output::local(&ws, "cluster"));
        let expected = run("quarantine", local.url.clone(), None).await.expect("a local run");
        let found = run("quarantine", remote.url.clone(), Some(cluster.url().clone())).await.expect("a cluster run");
        let report = &found.sources["transactions"];
        assert_eq!((report.rows_read, report.rows_loaded, report.rows_quarantined), (7, 2, 5));
        assert_eq!(counts(&found), counts(&expected));
        assert_eq!(assert_same_tables(&local, &remote).await, 2, "`kept` and `_quarantine/transactions`");

        let expected = run("fail", ws.path("local-fail").display().to_string(), None).await.expect_err("bad rows");
        let found = run("fail", ws.path("cluster-fail").display().to_string(), Some(cluster.url().clone()))
            .await
            .expect_err("bad rows");
        assert_eq!(found.exit_code(), fidelis::error::exit_code::DATA);
        assert_eq!(found.to_string(), expected.to_string());
    });
}

/// A free port on loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

#[test]
fn a_scheduler_and_two_executor_processes_on_s3_publish_the_local_tables() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let ws = Workspace::new();
    let port = free_port().to_string();
    let cluster_process = |args: &[&str], name: &str| {
        let mut command = crate::support::fidelis();
        command.args(["cluster"]).args(args);
        server.env(&mut command);
        Running::start(command, &ws, name)
    };
    let mut scheduler = cluster_process(&["scheduler", "--bind", &format!("127.0.0.1:{port}")], "scheduler");
    scheduler.wait_for_log("cluster scheduler listening");
    // Two executors on one host with the defaults: ports and work folders of their own.
    let executor = ["executor", "--scheduler", &format!("127.0.0.1:{port}"), "--vcores", "2"];
    let mut executors = [cluster_process(&executor, "executor-1"), cluster_process(&executor, "executor-2")];
    for executor in &mut executors {
        executor.wait_for_log("Executor registration succeed");
    }
    let [first, second] = [0, 1].map(|i| executors[i].stderr());
    for setting in ["flight_port", "grpc_port", "work_dir"] {
        assert_ne!(logged(&first, setting), logged(&second, setting), "each executor has its own {setting}");
    }

    let (local, remote) = (Output::local(&ws, "local"), Output::s3(&server, "warehouse"));
    let run = |output: &Output, cluster: Option<&str>| {
        let mut command: Command = output.fidelis();
        command.args(["run", "pipelines/loyalty.yaml", "--as-of", AS_OF, "--set"]);
        command.arg(format!("input={}", repo().join("data/sample").display()));
        command.args(["--set", &format!("output={}", output.url)]);
        if let Some(url) = cluster {
            command.args(["--cluster", url, "--cluster-partitions", &PARTITIONS.to_string()]);
        }
        let ran = command.output().expect("fidelis runs");
        assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    };
    run(&local, None);
    run(&remote, Some(&format!("df://127.0.0.1:{port}")));

    block_on_deep_stack(move || async move {
        assert_eq!(assert_same_tables(&local, &remote).await, 28, "every table of the pipeline");
        assert_eq!(counts(&manifest(&remote).await), counts(&manifest(&local).await));
        let staged = remote.contents().await.into_keys().filter(|path| path.starts_with("_staging")).count();
        assert_eq!(staged, 0, "the run's work location on S3 is removed after the run");
    });
    // Both executors ran tasks of the run; stopped, each removes its work folder.
    for executor in executors {
        let stderr = executor.stderr();
        assert!(stderr.contains("Execute task"), "{stderr}");
        executor.signal("TERM");
        let ended = executor.finish();
        assert_eq!(ended.code, Some(0), "{}", ended.stderr);
        let work_dir = logged(&stderr, "work_dir");
        assert!(!std::path::Path::new(&work_dir).exists(), "{work_dir} is removed");
    }
    scheduler.signal("KILL");
    scheduler.finish();
}

/// The value of `setting` in the executor's `cluster executor starting` log line.
fn logged(stderr: &str, setting: &str) -> String {
    let line = stderr.lines().find(|line| line.contains("cluster executor starting")).expect("the executor's settings");
    let value = line.split(&format!(" {setting}=")).nth(1).unwrap_or_else(|| panic!("{setting} in {line}"));
    value.split_whitespace().next().unwrap_or_default().to_string()
}

#[test]
fn a_run_whose_scheduler_does_not_answer_fails_with_exit_code_4_and_publishes_nothing() {
    let ws = Workspace::new();
    let out = ws.path("out");
    let port = free_port();
    let ran = crate::support::summary_run(&out)
        .args(["--cluster", &format!("df://127.0.0.1:{port}")])
        .output()
        .expect("fidelis runs");
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&format!("cannot reach the cluster scheduler at df://127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("check that `fidelis cluster scheduler` runs there"), "{stderr}");
    assert!(crate::support::files_below(&out).is_empty(), "nothing published, staging removed");
}
