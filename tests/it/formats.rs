//! The same transactions as CSV, NDJSON and Parquet give the same customer_summary.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;

use crate::support::{Workspace, repo, run_only, table};

const FIXTURE: &str = "tests/fixtures/summary/transactions/transactions.csv";

async fn summary_from(input: &Workspace) -> String {
    let output = input.path("out").display().to_string();
    let root = input.path("input").display().to_string();
    run_only(
        &repo().join("pipelines/loyalty.yaml"),
        "2024-03-31",
        &[("input", &root), ("output", &output), ("timezone", "Europe/Rome")],
        &["customer_summary"],
    )
    .await
    .expect("the run succeeds");
    table(&input.path("out"), "customer_summary", "2024-03-31")
}

fn csv_rows() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(repo().join(FIXTURE)).expect("fixture");
    text.lines().skip(1).map(|line| line.split(',').map(str::to_string).collect()).collect()
}

#[tokio::test]
async fn ndjson_and_csv_agree() {
    let csv = Workspace::new();
    csv.write("input/transactions/t.csv", std::fs::read(repo().join(FIXTURE)).expect("fixture"));
    let ndjson = Workspace::new();
    let header =
        ["order_id", "customer_id", "order_ts", "amount", "kind", "channel", "category", "discount_amount", "cost"];
    let lines: Vec<String> = csv_rows()
        .iter()
        .map(|row| {
            let mut object = serde_json::Map::new();
            for (key, value) in header.iter().zip(row) {
                if value.is_empty() {
                    continue;
                }
                // Amounts as JSON numbers, as most exporters write them.
                let json = match *key {
                    "amount" => serde_json::Value::from(value.parse::<f64>().expect("a number")),
                    _ => serde_json::Value::from(value.as_str()),
                };
                object.insert(key.to_string(), json);
            }
            serde_json::Value::Object(object).to_string()
        })
        .collect();
    ndjson.write("input/transactions/t.ndjson", lines.join("\n"));
    assert_eq!(summary_from(&ndjson).await, summary_from(&csv).await);
}

#[tokio::test]
async fn parquet_with_native_types_and_csv_agree() {
    let csv = Workspace::new();
    csv.write("input/transactions/t.csv", std::fs::read(repo().join(FIXTURE)).expect("fixture"));
    // The fixture's instants in UTC: naive times are Europe/Rome wall-clock times.
    let instants = [
        "2024-01-10T10:00:00Z",
        "2024-01-05T08:00:00Z",
        "2024-01-05T17:30:00Z",
        "2024-02-01T11:00:00Z",
        "2024-02-02T23:00:00Z",
        "2024-02-29T23:30:00Z",
        "2024-03-01T09:00:00Z",
        "2024-03-31T22:30:00Z",
        "2024-03-20T13:00:00Z",
        "2024-03-09T23:00:00Z",
        "2024-04-01T22:00:00Z",
        "2024-02-29T23:00:00Z",
        "2024-04-04T22:00:00Z",
    ];
    let rows = csv_rows();
    let text = |i: usize| -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(r[i].as_str()).filter(|v| !v.is_empty())).collect::<StringArray>())
    };
    let micros: TimestampMicrosecondArray = instants
        .iter()
        .map(|t| Some(chrono::DateTime::parse_from_rfc3339(t).expect("rfc3339").timestamp_micros()))
        .collect::<TimestampMicrosecondArray>()
        .with_timezone("UTC");
    let amounts: Float64Array = rows.iter().map(|r| r[3].parse::<f64>().ok()).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("order_ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("amount", DataType::Float64, false),
        Field::new("kind", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![text(0), text(1), Arc::new(micros), Arc::new(amounts), text(4), text(6)],
    )
    .expect("a batch");
    let parquet = Workspace::new();
    let file = std::fs::File::create(parquet.write("input/transactions/t.parquet", b"")).expect("create");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    assert_eq!(summary_from(&parquet).await, summary_from(&csv).await);
}
