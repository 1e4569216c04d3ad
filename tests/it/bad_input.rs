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
