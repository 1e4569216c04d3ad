//! OpenLineage events as a lineage server receives them: a small HTTP receiver on
//! loopback stands in for Marquez. Events are checked against the fields the
//! OpenLineage spec (RunEvent 2-0-2) requires; a failed delivery never fails a run.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Workspace, fidelis, repo, summary_run};

const PRODUCER: &str = concat!("urn:fidelis:", env!("CARGO_PKG_VERSION"));
const PARENT_RUN: &str = "01890f5e-8d2a-7f3e-9c4b-2a1d3e4f5a6b";

/// One HTTP request received: request line, headers (lower-case names), JSON body.
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Answers every request to `listener` with `201 Created` until `child` exits, and
/// returns what it received. The child waits for each answer, so every event it
/// sent has been received when it has exited.
fn receive_until_exit(listener: &TcpListener, mut child: Child) -> (Vec<Request>, std::process::Output) {
    listener.set_nonblocking(true).expect("non-blocking listener");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut received = Vec::new();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking stream");
                stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).expect("request line");
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).expect("header");
                    let Some((name, value)) = header.trim_end().split_once(": ") else { break };
                    headers.push((name.to_ascii_lowercase(), value.to_string()));
                }
                let length: usize = headers
                    .iter()
                    .find(|(name, _)| name == "content-length")
                    .map(|(_, value)| value.parse().expect("a length"))
                    .expect("a Content-Length header");
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .expect("answer");
                let body = serde_json::from_slice(&body).expect("a JSON body");
                received.push(Request { line: line.trim_end().to_string(), headers, body });
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                if child.try_wait().expect("the child's status").is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "fidelis did not finish within 120 s");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("accept: {error}"),
        }
    }
    (received, child.wait_with_output().expect("output"))
}

/// Checks what the spec requires of every RunEvent, and that every facet names its
/// producer and schema.
fn assert_spec_fields(event: &Value) {
    for field in ["eventType", "eventTime", "producer", "schemaURL"] {
        assert!(event[field].is_string(), "`{field}` missing in {event:#}");
    }
    assert!(chrono::DateTime::parse_from_rfc3339(event["eventTime"].as_str().unwrap_or_default()).is_ok());
    assert_eq!(event["producer"], PRODUCER);
    assert_eq!(event["schemaURL"], "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent");
    Uuid::parse_str(event["run"]["runId"].as_str().unwrap_or_default()).expect("run.runId is a UUID");
    assert!(event["job"]["namespace"].is_string() && event["job"]["name"].is_string(), "{event:#}");
    let datasets = event["inputs"].as_array().into_iter().chain(event["outputs"].as_array()).flatten();
    let mut facets: Vec<&Value> = [&event["run"]["facets"], &event["job"]["facets"]].into_iter().collect();
    for dataset in datasets {
        assert!(dataset["namespace"].is_string() && dataset["name"].is_string(), "{dataset:#}");
        facets.extend([&dataset["facets"], &dataset["inputFacets"], &dataset["outputFacets"]]);
    }
    for (name, facet) in facets.into_iter().filter_map(Value::as_object).flatten() {
        assert_eq!(facet["_producer"], PRODUCER, "facet `{name}`");
        let schema = facet["_schemaURL"].as_str().unwrap_or_default();
        assert!(
            schema.starts_with("https://openlineage.io/spec/facets/") && schema.contains("#/$defs/"),
            "{name}: {schema}"
        );
    }
}

fn fields(facet: &Value) -> Vec<(String, String)> {
    facet["fields"]
        .as_array()
        .expect("schema fields")
        .iter()
        .map(|field| {
            (field["name"].as_str().unwrap_or_default().into(), field["type"].as_str().unwrap_or_default().into())
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(name, kind)| (name.to_string(), kind.to_string())).collect()
}

#[test]
fn a_run_posts_start_and_complete_events_to_an_openlineage_server() {
    let ws = Workspace::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let server = format!("http://{}", listener.local_addr().expect("address"));
    let child = summary_run(&ws.path("out"))
        .env("OPENLINEAGE_URL", &server)
        .env("OPENLINEAGE_API_KEY", "key-2718")
        .env("OPENLINEAGE_NAMESPACE", "analytics")
        .env("OPENLINEAGE_PARENT_ID", format!("airflow/loyalty_monthly.fidelis_run/{PARENT_RUN}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fidelis runs");
    let (requests, output) = receive_until_exit(&listener, child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("OpenLineage"), "no delivery warning: {stderr}");
    assert_eq!(requests.len(), 2, "START and COMPLETE");
    for request in &requests {
        assert_eq!(request.line, "POST /api/v1/lineage HTTP/1.1");
        assert_eq!(request.header("authorization"), Some("Bearer key-2718"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_spec_fields(&request.body);
    }
    let (start, complete) = (&requests[0].body, &requests[1].body);
    assert_eq!((start["eventType"].as_str(), complete["eventType"].as_str()), (Some("START"), Some("COMPLETE")));

    // The run: one id for both events, derived from the manifest's.
    let manifest = std::fs::read(ws.path("out/_runs/as_of=2024-03-31/manifest.json")).expect("manifest");
    let manifest: Value = serde_json::from_slice(&manifest).expect("JSON");
    let run_id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("fidelis:loyalty:2024-03-31:{}", manifest["run_id"].as_str().expect("run_id")).as_bytes(),
    );
    assert_eq!(start["run"]["runId"], run_id.to_string());
    assert_eq!(complete["run"]["runId"], run_id.to_string());
    assert_eq!(complete["job"]["namespace"], "analytics");
    assert_eq!(complete["job"]["name"], "loyalty");
    assert_eq!(complete["job"]["facets"]["jobType"]["processingType"], "BATCH");
    let parent = &complete["run"]["facets"]["parent"];
    assert_eq!(parent["run"], json!({"runId": PARENT_RUN}));
    assert_eq!(parent["job"], json!({"namespace": "airflow", "name": "loyalty_monthly.fidelis_run"}));
    let nominal = &complete["run"]["facets"]["nominalTime"];
    assert_eq!(
        (nominal["nominalStartTime"].as_str(), nominal["nominalEndTime"].as_str()),
        (Some("2024-03-31T00:00:00Z"), Some("2024-04-01T00:00:00Z"))
    );

    // Inputs: the source with its declared columns, and at the end what was read.
    let transactions = repo().join("tests/fixtures/summary/transactions").display().to_string();
    for event in [start, complete] {
        let inputs = event["inputs"].as_array().expect("inputs");
        // And `customers` (absent here), which the orphans test of stg_transactions reads.
        assert_eq!(inputs.len(), 2);
        assert_eq!((inputs[0]["namespace"].as_str(), inputs[0]["name"].as_str()), (Some("file"), Some(&*transactions)));
        assert_eq!(
            fields(&inputs[0]["facets"]["schema"]),
            pairs(&[
                ("order_id", "string"),
                ("customer_id", "string"),
                ("order_ts", "timestamp"),
                ("amount", "decimal(18,2)"),
                ("kind", "string"),
                ("channel", "string"),
                ("category", "string"),
                ("discount_amount", "decimal(18,2)"),
                ("cost", "decimal(18,2)"),
            ])
        );
    }
    let read = &complete["inputs"][0]["inputFacets"]["inputStatistics"];
    assert_eq!((read["rowCount"].as_u64(), read["fileCount"].as_u64()), (Some(13), Some(1)));
    assert_eq!(read["size"], manifest["sources"]["transactions"]["files"][0]["size"]);

    // Outputs: none announced at the start; the published table at the end.
    assert_eq!(start["outputs"], json!([]));
    let outputs = complete["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 1);
    let table = ws.path("out/customer_summary").display().to_string();
    assert_eq!((outputs[0]["namespace"].as_str(), outputs[0]["name"].as_str()), (Some("file"), Some(&*table)));
    assert_eq!(
        fields(&outputs[0]["facets"]["schema"]),
        pairs(&[
            ("customer_id", "string"),
            ("first_purchase_date", "date"),
            ("last_purchase_date", "date"),
            ("purchase_days", "integer"),
            ("orders", "integer"),
            ("revenue", "decimal(18,2)"),
            ("frequency", "integer"),
            ("recency", "float"),
            ("T", "float"),
            ("monetary_value", "float"),
            ("recency_days", "integer"),
            ("distinct_categories", "integer"),
            ("acquisition_cohort", "date"),
        ])
    );
    let written = &outputs[0]["outputFacets"]["outputStatistics"];
    assert_eq!((written["rowCount"].as_u64(), written["fileCount"].as_u64()), (Some(4), Some(1)));
    assert_eq!(written["size"], manifest["tables"]["customer_summary"]["bytes"]);
}

#[test]
fn a_failed_run_ends_with_a_fail_event_carrying_the_error() {
    let ws = Workspace::new();
    ws.write("input/transactions/t.csv", "order_id,customer_id,order_ts,amount\nO1,C1,yesterday,1\n");
    let events = ws.path("events.jsonl");
    let output = fidelis()
        .args(["run", "pipelines/loyalty.yaml", "--as-of", "2024-01-31", "--set"])
        .arg(format!("input={}", ws.path("input").display()))
        .arg("--set")
        .arg(format!("output={}", ws.path("out").display()))
        .arg("--lineage")
        .arg(format!("file:{}", events.display()))
        .output()
        .expect("fidelis runs");
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let events: Vec<Value> = std::fs::read_to_string(&events)
        .expect("events written")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON event per line"))
        .collect();
    assert_eq!(events.len(), 2);
    events.iter().for_each(assert_spec_fields);
    assert_eq!((events[0]["eventType"].as_str(), events[1]["eventType"].as_str()), (Some("START"), Some("FAIL")));
    assert_eq!(events[0]["run"]["runId"], events[1]["run"]["runId"]);
    assert_eq!(events[1]["job"]["namespace"], "fidelis", "the default namespace");
    let error = &events[1]["run"]["facets"]["errorMessage"];
    assert_eq!(error["programmingLanguage"], "Rust");
    let message = error["message"].as_str().expect("a message");
    assert!(message.starts_with("bad input data: source `transactions`"), "{message}");
    assert!(message.contains("t.csv line 2, column `order_ts`: not an ISO-8601 timestamp"), "{message}");
    assert_eq!(events[1]["outputs"], json!([]), "nothing was published");
}

#[test]
fn lineage_that_cannot_be_delivered_is_a_warning_not_a_failed_run() {
    let ws = Workspace::new();
    // A port nothing listens on: connections are refused.
    let closed = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let output =
        summary_run(&ws.path("out")).env("OPENLINEAGE_URL", format!("http://{closed}")).output().expect("fidelis runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for event in ["START", "COMPLETE"] {
        assert!(
            stderr.contains(&format!("OpenLineage {event} event not delivered to http://{closed}/api/v1/lineage")),
            "{stderr}"
        );
    }
    assert!(ws.path("out/_runs/as_of=2024-03-31/_SUCCESS").exists());

    let unwritable = ws.path("no-such-folder/events.jsonl");
    let output = summary_run(&ws.path("out"))
        .arg("--lineage")
        .arg(format!("file:{}", unwritable.display()))
        .output()
        .expect("fidelis runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("OpenLineage COMPLETE event not delivered to file:"));
}

#[test]
fn console_lineage_prints_one_event_per_line_on_standard_output() {
    let ws = Workspace::new();
    let output = summary_run(&ws.path("out"))
        .args(["--lineage", "console"])
        .env("OPENLINEAGE_URL", "http://127.0.0.1:9")
        .output()
        .expect("fidelis runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON event per line"))
        .collect();
    let types: Vec<&str> = events.iter().filter_map(|event| event["eventType"].as_str()).collect();
    assert_eq!(types, ["START", "COMPLETE"], "--lineage wins over OPENLINEAGE_URL");
}
