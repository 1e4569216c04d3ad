//! A round trip through a real S3-compatible server (moto's server mode, from PyPI)
//! on loopback: inputs read from S3, tables and manifest published to S3, read back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::support::{Workspace, fidelis, repo, table};

pub(crate) const BUCKET: &str = "fidelis-test";

/// A moto S3 server on a free loopback port, stopped when dropped.
pub(crate) struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    pub(crate) fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 must be installed for this test");
        let server = S3Server { child, endpoint: format!("http://127.0.0.1:{port}") };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "moto's S3 server did not start on port {port} within 20 s; install it with `pip install 'moto[server]'` (scripts/test does)"
        );
    }

    /// Creates a bucket with a plain HTTP request (moto accepts unsigned requests).
    pub(crate) fn create_bucket(&self, bucket: &str) {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect to moto");
        write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        assert!(response.starts_with("HTTP/1.1 200"), "bucket creation failed: {response}");
    }

    pub(crate) fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_bucket_name(BUCKET)
                .with_region("us-east-1")
                .with_access_key_id("testing")
                .with_secret_access_key("testing-secret")
                .build()
                .expect("an S3 client"),
        )
    }

    pub(crate) fn env(&self, command: &mut Command) {
        command
            .env("AWS_ENDPOINT", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
