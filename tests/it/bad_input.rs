//! Every kind of bad input, in both modes: `fail` stops before publishing and names
//! file, row and column; `quarantine` sets the rows aside, counts them, and goes on.
//! Either way rows read = rows loaded + rows quarantined.

use crate::support::{Workspace, files_below, run, table, transactions_pipeline};

/// One good row, then one row for each kind of problem (line numbers in comments).
const ORDERS: &str = "\
order_id,customer_id,order_ts,amount,kind
O1,C1,2024-01-05T10:00:00Z,10.00,purchase
O2,,2024-01-06,11.00,purchase
O3,C3,06/01/2024,12.00,purchase
O4,C4,2024-01-07,12;50,purchase
O5,C5,2024-01-08,-3.00,purchase
O1,C6,2024-01-09,14.00,purchase
O7,C7,2024-01-10,15.00,purchase,extra
O8,C8,2024-01-11,16.00,refund
";
// line 3: null customer_id; 4: unparsable timestamp; 5: unparsable amount;
// 6: negative amount; 7: duplicate order_id; 8: wrong number of fields.

const MORE: &str = "{\"order_id\":\"N1\",\"customer_id\":\"C9\",\"order_ts\":\"2024-01-12T08:00:00+01:00\",\"amount\":20}\n{not json\n";

fn workspace(mode: &str) -> (Workspace, std::path::PathBuf) {
    let ws = Workspace::new();
    ws.write("input/transactions/a.csv", ORDERS);
    ws.write("input/transactions/b.ndjson", MORE);
    // Text where Parquet is promised.
    ws.write("input/transactions/c.parquet", "order_id,customer_id\nX,Y\n");
    let stages = "  kept:\n    query: SELECT order_id, customer_id, amount FROM transactions ORDER BY order_id";
    let path = ws.write("pipeline.yaml", transactions_pipeline(mode, stages, "kept"));
    (ws, path)
}

#[tokio::test]
async fn fail_mode_names_file_row_and_column_and_publishes_nothing() {
    let (ws, path) = workspace("fail");
    let input = ws.path("input").display().to_string();
    let output = ws.path("out").display().to_string();
    let error = run(&path, "2024-01-31", &[("input", &input), ("output", &output)]).await.expect_err("bad rows");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::DATA);
    insta::assert_snapshot!(ws.redact(&error.to_string()));
    assert!(files_below(&ws.path("out")).is_empty(), "nothing published, staging removed");
}

#[tokio::test]
async fn quarantine_mode_sets_rows_aside_and_counts_every_row() {
    let (ws, path) = workspace("quarantine");
    let input = ws.path("input").display().to_string();
    let output = ws.path("out").display().to_string();
    let manifest = run(&path, "2024-01-31", &[("input", &input), ("output", &output)]).await.expect("run");
    let report = &manifest.sources["transactions"];
    // 8 CSV rows + 2 NDJSON lines + 1 unreadable file.
    assert_eq!((report.rows_read, report.rows_loaded, report.rows_quarantined), (11, 3, 8));
    assert_eq!(report.rows_read, report.rows_loaded + report.rows_quarantined);
    assert_eq!(manifest.tables["kept"].rows, 3);
    assert_eq!(manifest.quarantine["transactions"].rows, 8);
    assert!(manifest.warnings.iter().any(|w| w.contains("8 rows quarantined")));
    insta::assert_snapshot!("kept_rows", table(&ws.path("out"), "kept", "2024-01-31"));
    insta::assert_snapshot!(
        "quarantine_table",
        ws.redact(&table(&ws.path("out"), "_quarantine/transactions", "2024-01-31"))
    );
}

/// A run over `files` in `{input}/transactions/`, with `on_bad_rows` as given.
async fn run_files(mode: &str, files: &[(&str, Vec<u8>)]) -> (Workspace, fidelis::Result<fidelis::manifest::Manifest>) {
    let ws = Workspace::new();
    for (name, content) in files {
        ws.write(&format!("input/transactions/{name}"), content);
    }
    let stages = "  kept:\n    query: SELECT order_id, customer_id, amount FROM transactions ORDER BY order_id";
    let path = ws.write("pipeline.yaml", transactions_pipeline(mode, stages, "kept"));
    let input = ws.path("input").display().to_string();
    let output = ws.path("out").display().to_string();
    let outcome = run(&path, "2024-01-31", &[("input", &input), ("output", &output)]).await;
    (ws, outcome)
}

/// Six orders in two zstd row groups of three, the pages of the second overwritten.
fn parquet_with_a_corrupt_row_group() -> Vec<u8> {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use datafusion::parquet::basic::{Compression, ZstdLevel};
    use datafusion::parquet::file::properties::WriterProperties;

    let text = |values: [&str; 6]| -> ArrayRef { Arc::new(StringArray::from(values.to_vec())) };
    let batch = RecordBatch::try_from_iter([
        ("order_id", text(["P1", "P2", "P3", "P4", "P5", "P6"])),
        ("customer_id", text(["C1", "C2", "C3", "C4", "C5", "C6"])),
        ("order_ts", text(["2024-01-05"; 6])),
        ("amount", text(["1.00", "2.00", "3.00", "4.00", "5.00", "6.00"])),
    ])
    .expect("a batch");
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(3))
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(false)
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let metadata = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.clone())).expect("a file");
    let (start, length) = metadata.metadata().row_group(1).column(0).byte_range();
    let (start, end) = (start as usize, (start + length) as usize);
    bytes[start + (end - start) / 2..end].fill(0xA5);
    bytes
}

/// A good file, then one of each file-level problem: a header that is not UTF-8
/// (Latin-1 `région`, two rows below it), a Parquet file whose second row group is
/// corrupt, and NDJSON named `.csv` (its row count cannot be known).
fn files_with_file_level_problems() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.csv", b"order_id,customer_id,order_ts,amount,kind\nO1,C1,2024-01-05,10.00,purchase\n".to_vec()),
        (
            "b_latin1.csv",
            b"order_id,customer_id,order_ts,amount,r\xe9gion\nL1,C1,2024-01-05,1.00,nord\nL2,C2,2024-01-06,2.00,sud\n"
                .to_vec(),
        ),
        ("c.parquet", parquet_with_a_corrupt_row_group()),
        ("d_ndjson.csv", b"{\"order_id\":\"N1\"}\n{\"order_id\":\"N2\"}\n".to_vec()),
    ]
}

#[tokio::test]
async fn file_level_problems_are_counted_bad_rows_in_quarantine_mode() {
    let (ws, outcome) = run_files("quarantine", &files_with_file_level_problems()).await;
    let manifest = outcome.expect("the run goes on without them");
    let report = &manifest.sources["transactions"];
    // a.csv 1 row; the Latin-1 file's 2 rows; the Parquet file's 6 (3 unreadable);
    // the NDJSON file counts as one row, its row count unknown.
    assert_eq!((report.rows_read, report.rows_loaded, report.rows_quarantined), (10, 4, 6));
    let unknown: Vec<bool> = report.files.iter().map(|file| file.rows_unknown).collect();
    assert_eq!(unknown, [false, false, false, true]);
    let json = serde_json::to_value(&report.files).expect("json");
    assert_eq!(json[3]["rows_unknown"], true);
    assert!(json[0].get("rows_unknown").is_none(), "only said of files it is true of");
    assert!(manifest.warnings.iter().any(|w| w.contains("6 rows quarantined")));
    insta::assert_snapshot!("file_level_kept_rows", table(&ws.path("out"), "kept", "2024-01-31"));
    insta::assert_snapshot!(
        "file_level_quarantine_table",
        ws.redact(&table(&ws.path("out"), "_quarantine/transactions", "2024-01-31"))
    );
}

#[tokio::test]
async fn file_level_problems_stop_the_run_in_fail_mode() {
    let (ws, outcome) = run_files("fail", &files_with_file_level_problems()).await;
    let error = outcome.expect_err("bad input");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::DATA);
    insta::assert_snapshot!(ws.redact(&error.to_string()));
    assert!(files_below(&ws.path("out")).is_empty(), "nothing published");
}

/// A file that does not fit the source's columns is an error naming the file, the
/// columns expected and what was found, whatever `on_bad_rows` says.
async fn header_error(name: &str, content: &str) -> String {
    let mut messages = Vec::new();
    for mode in ["fail", "quarantine"] {
        let (ws, outcome) = run_files(mode, &[(name, content.as_bytes().to_vec())]).await;
        let error = outcome.expect_err("the file does not fit");
        assert_eq!(error.exit_code(), fidelis::error::exit_code::DATA, "{mode}");
        messages.push(ws.redact(&error.to_string()));
    }
    assert_eq!(messages[0], messages[1], "the same error in both modes");
    messages.remove(0)
}

#[tokio::test]
async fn a_headerless_one_row_csv_is_not_taken_as_a_header() {
    let message = header_error("orders.csv", "O1,C1,2024-01-05,10.00,purchase\n").await;
    insta::assert_snapshot!(message);
}

#[tokio::test]
async fn a_csv_on_one_line_with_another_separator_is_not_taken_as_a_header() {
    let message =
        header_error("orders.csv", "order_id;customer_id;order_ts;amount;kind O1;C1;2024-01-05;10.00;purchase").await;
    insta::assert_snapshot!(message);
}

#[tokio::test]
async fn a_column_named_twice_is_not_read_from_the_first_silently() {
    let message = header_error(
        "orders.csv",
        "order_id,customer_id,order_ts,amount,amount,kind\nO1,C1,2024-01-05,10.00,11.00,purchase\n",
    )
    .await;
    insta::assert_snapshot!(message);
}

#[tokio::test]
async fn blank_and_empty_files_have_no_rows() {
    let files = [
        ("a.csv", b"order_id,customer_id,order_ts,amount\nO1,C1,2024-01-05,10.00\n".to_vec()),
        ("empty.csv", Vec::new()),
        ("header_only.csv", b"order_id,customer_id,order_ts,amount\n".to_vec()),
    ];
    let (_ws, outcome) = run_files("fail", &files).await;
    let report = &outcome.expect("empty files are no problem").sources["transactions"];
    assert_eq!((report.rows_read, report.rows_loaded, report.rows_quarantined), (1, 1, 0));
}
