//! Credentials in URLs are recorded nowhere: not in what a run publishes (tables,
//! manifest, report), not in its logs or errors, not in its lineage events; and
//! templates cannot read the environment.

use std::process::Output;

use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::support::{BUCKET, S3Server, Workspace, fidelis, repo};

/// Credentials as someone might paste them into `--set`: an access key id as the
/// URL's user and a secret as its password.
const USER: &str = "AKIAURLUSER7Q";
const SECRET: &str = "s3cr3t-in-the-url-4f9b";

fn url(path: &str) -> String {
    format!("s3://{USER}:{SECRET}@{BUCKET}/{path}")
}

/// The places a credential must not be in: the text of `output` and anything else given.
fn assert_no_credentials(what: &str, text: &str) {
    for credential in [USER, SECRET, "testing-secret"] {
        assert!(!text.contains(credential), "{what} contains `{credential}`:\n{text}");
    }
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn credentials_in_urls_appear_in_no_written_file_log_or_lineage_event() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let ws = Workspace::new();

    let mut sample = fidelis();
    sample.args(["sample-data", "--customers", "500", "--end-date", "2024-06-30", "--out", &url("raw")]);
    server.env(&mut sample);
    let sampled = sample.output().expect("fidelis runs");
    assert!(sampled.status.success(), "{}", text(&sampled));
    assert_no_credentials("sample-data's output", &text(&sampled));

    let lineage = ws.path("lineage.jsonl");
    let mut run = fidelis();
    run.args(["run", "pipelines/loyalty.yaml", "--as-of", "2024-06-30", "--set"])
        .arg(format!("input={}", url("raw")))
        .arg("--set")
        .arg(format!("output={}", url("warehouse")))
        .arg("--lineage")
        .arg(format!("file:{}", lineage.display()))
        .env("FIDELIS_LOG", "debug");
    server.env(&mut run);
    let ran = run.output().expect("fidelis runs");
    assert!(ran.status.success(), "{}", text(&ran));
    assert_no_credentials("the run's logs", &text(&ran));
    let events = std::fs::read_to_string(&lineage).expect("lineage events written");
    assert_eq!(events.lines().count(), 2, "START and COMPLETE");
    assert_no_credentials("the lineage events", &events);

    // Every object in the bucket: inputs, tables, quarantine, reports, manifest, _SUCCESS.
    let store = server.store();
    let objects: Vec<_> =
        futures::TryStreamExt::try_collect(store.list(Some(&Path::from("warehouse")))).await.expect("list");
    let names: Vec<String> = objects.iter().map(|object| object.location.to_string()).collect();
    assert!(names.contains(&"warehouse/reports/as_of=2024-06-30/report.html".to_string()), "{names:?}");
    assert!(names.contains(&"warehouse/_runs/as_of=2024-06-30/manifest.json".to_string()), "{names:?}");
    for object in &objects {
        let bytes = store.get(&object.location).await.expect("get").bytes().await.expect("bytes");
        assert_no_credentials(object.location.as_ref(), &String::from_utf8_lossy(&bytes));
    }
    let manifest = store.get(&Path::from("warehouse/_runs/as_of=2024-06-30/manifest.json")).await.expect("manifest");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes().await.expect("bytes")).expect("JSON");
    assert_eq!(manifest["parameters"]["input"], format!("s3://{BUCKET}/raw"));
    assert_eq!(manifest["parameters"]["output"], format!("s3://{BUCKET}/warehouse"));

    // Failures quote the values they reject: a parameter that is not a timezone, and
    // an input whose bucket does not exist.
    let mut rejected = fidelis();
    rejected.args(["run", "pipelines/loyalty.yaml", "--set"]).arg(format!("timezone={}", url("zone")));
    let rejected = rejected.output().expect("fidelis runs");
    assert_eq!(rejected.status.code(), Some(2), "{}", text(&rejected));
    assert!(text(&rejected).contains(&format!("`s3://{BUCKET}/zone` is not an IANA timezone")), "{}", text(&rejected));
    assert_no_credentials("a usage error", &text(&rejected));

    let mut missing = fidelis();
    missing
        .args(["run", "pipelines/loyalty.yaml", "--as-of", "2024-06-30", "--set"])
        .arg(format!("input=s3://{USER}:{SECRET}@no-such-bucket/raw"))
        .arg("--set")
        .arg(format!("output={}", ws.path("out").display()));
    server.env(&mut missing);
    let missing = missing.output().expect("fidelis runs");
    assert!(!missing.status.success());
    // Sources load concurrently: whichever is listed first names the bucket.
    assert!(text(&missing).contains("cannot list s3://no-such-bucket/raw/"), "{}", text(&missing));
    assert_no_credentials("a runtime error", &text(&missing));
}

#[test]
fn templates_cannot_read_the_environment() {
    let ws = Workspace::new();
    ws.write("templates/leak.md.tera", "token: {{ get_env(name=\"FIDELIS_TEST_TOKEN\") }}\n");
    let input = repo().join("tests/fixtures/summary").display().to_string();
    let pipeline = ws.write(
        "pipeline.yaml",
        format!(
            "name: leak\ntemplates_dir: templates\nsources:\n  transactions: {{url: {input}/transactions/}}\n\
             stages:\n  orders:\n    query: SELECT * FROM transactions\noutputs:\n  root: {}\n  tables: [orders]\n\
             reports:\n  - {{template: leak.md.tera, path: leak.md}}\n",
            ws.path("out").display()
        ),
    );
    let output = fidelis()
        .arg("run")
        .arg(&pipeline)
        .args(["--as-of", "2024-03-31"])
        .env("FIDELIS_TEST_TOKEN", "tok-3141")
        .output()
        .expect("fidelis runs");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("`get_env` is disabled: templates cannot read the environment"),
        "{}",
        text(&output)
    );
    assert!(!text(&output).contains("tok-3141"));
    assert!(!ws.path("out/reports").exists(), "nothing is published");
}
