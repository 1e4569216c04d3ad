//! A round trip through a real S3-compatible server (moto's server mode, from PyPI)
//! on loopback: inputs read from S3, tables and manifest published to S3, read back.

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use crate::support::{BUCKET, S3Server, Workspace, fidelis, repo, table};

#[tokio::test]
async fn pipeline_reads_from_and_publishes_to_s3() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let store = server.store();
    let fixture = std::fs::read(repo().join("tests/fixtures/summary/transactions/transactions.csv")).expect("fixture");
    store
        .put(&Path::from("raw/transactions/2024/transactions.csv"), PutPayload::from(fixture))
        .await
        .expect("upload the input");

    let mut command = fidelis();
    command.args([
        "--log-format",
        "json",
        "run",
        "pipelines/loyalty.yaml",
        "--as-of",
        "2024-03-31",
        "--set",
        "timezone=Europe/Rome",
        "--only",
        "customer_summary",
    ]);
    command
        .env("FIDELIS_INPUT", format!("s3://{BUCKET}/raw"))
        .env("FIDELIS_OUTPUT", format!("s3://{BUCKET}/warehouse"));
    server.env(&mut command);
    let out = command.output().expect("fidelis runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("testing-secret"), "credentials never appear in logs");

    let partition = |name: &str| Path::from(format!("warehouse/{name}/as_of=2024-03-31/part-00000.parquet"));
    let bytes = store.get(&partition("customer_summary")).await.expect("published to S3").bytes().await.expect("bytes");
    let batches = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("Parquet")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches");
    let from_s3 = pretty_format_batches(&batches).expect("printable").to_string();

    let local = Workspace::new();
    let input = repo().join("tests/fixtures/summary").display().to_string();
    let output = local.path("out").display().to_string();
    crate::support::run_only(
        &repo().join("pipelines/loyalty.yaml"),
        "2024-03-31",
        &[("input", &input), ("output", &output), ("timezone", "Europe/Rome")],
        &["customer_summary"],
    )
    .await
    .expect("local run");
    assert_eq!(from_s3, table(&local.path("out"), "customer_summary", "2024-03-31"));

    let manifest = store.get(&Path::from("warehouse/_runs/as_of=2024-03-31/manifest.json")).await.expect("manifest");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes().await.expect("bytes")).expect("json");
    assert_eq!(
        manifest["sources"]["transactions"]["files"][0]["url"],
        "s3://fidelis-test/raw/transactions/2024/transactions.csv"
    );
    assert!(manifest["sources"]["transactions"]["files"][0]["etag"].is_string());
    assert!(!manifest.to_string().contains("testing-secret"));
    store.head(&Path::from("warehouse/_runs/as_of=2024-03-31/_SUCCESS")).await.expect("_SUCCESS is written");
    let staging: Vec<_> =
        futures::TryStreamExt::try_collect(store.list(Some(&Path::from("warehouse/_staging")))).await.expect("list");
    assert!(staging.is_empty(), "the staging area is cleaned up");
}
