//! Sources' freshness and volume (README: Freshness and volume of sources): measured when
//! a source has loaded, before any stage reads it, against the end of as_of in the
//! pipeline's timezone and against the previous as_of's run.

use fidelis::config::Status;
use fidelis::error::exit_code;
use fidelis::manifest::Manifest;
use serde_json::json;

use crate::support::{Workspace, files_below, run, table};

/// A pipeline with the given sources, each counted by a stage of its name + `_rows`.
fn pipeline(sources: &str, names: &[&str]) -> String {
    let stages: String =
        names.iter().map(|name| format!("  {name}_rows:\n    query: SELECT count(*) AS n FROM {name}\n")).collect();
    let tables: Vec<String> = names.iter().map(|name| format!("{name}_rows")).collect();
    format!(
        "name: fresh\nparams:\n  input: {{type: string, default: input}}\n  output: {{type: string, default: out}}\n\
         sources:\n{sources}stages:\n{stages}outputs:\n  root: ${{output}}\n  tables: [{}]\n",
        tables.join(", ")
    )
}

const ORDERS_SOURCE: &str = "  orders:
    url: ${input}/orders/
    columns:
      order_id: {type: string, required: true}
      order_ts: {type: timestamp, required: true}
    freshness: {column: order_ts, warn_after: 2d, error_after: 7d}
";

const VISITS_SOURCE: &str = "  visits:
    url: ${input}/visits/
    columns:
      visit_date: {type: date, required: true}
    freshness: {column: visit_date, warn_after: 1d, rows_after_as_of: {warn_if: \"> 0\"}}
";

/// O2 is 23:30 on 2024-03-31 in Rome; O3 is 00:30 on 2024-04-01 there, but still
/// 2024-03-31 in UTC.
const ORDERS: &str = "\
order_id,order_ts
O1,2024-03-20T10:00:00Z
O2,2024-03-31T21:30:00Z
O3,2024-03-31T22:30:00Z
";

async fn run_in(ws: &Workspace, as_of: &str, timezone: &str) -> fidelis::Result<Manifest> {
    let input = ws.path("input").display().to_string();
    let output = ws.path("out").display().to_string();
    let path = ws.path("pipeline.yaml");
    run(&path, as_of, &[("input", &input), ("output", &output), ("timezone", timezone)]).await
}

#[tokio::test]
async fn freshness_is_measured_at_the_end_of_as_of_in_the_pipeline_timezone() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    ws.write("input/visits/visits.csv", "visit_date\n2024-03-29\n2024-04-01\n");
    ws.write("pipeline.yaml", pipeline(&format!("{ORDERS_SOURCE}{VISITS_SOURCE}"), &["orders", "visits"]));

    // In Rome as_of ends at 2024-03-31T22:00:00Z: O2 is 30 minutes before, O3 after it.
    let manifest = run_in(&ws, "2024-03-31", "Europe/Rome").await.expect("fresh enough");
    assert_eq!(
        serde_json::to_value(&manifest.sources["orders"].freshness).expect("JSON"),
        json!({
            "column": "order_ts", "newest": "2024-03-31T21:30:00Z", "age_seconds": 1800,
            "warn_after": "2d", "error_after": "7d", "rows_after_as_of": 1, "status": "pass"
        })
    );
    // A date stands for its whole day: 2024-03-29 is 2 days old at the end of 03-31.
    assert_eq!(
        serde_json::to_value(&manifest.sources["visits"].freshness).expect("JSON"),
        json!({
            "column": "visit_date", "newest": "2024-03-29", "age_seconds": 172_800,
            "warn_after": "1d", "rows_after_as_of": 1, "status": "warn"
        })
    );
    assert_eq!(
        manifest.warnings,
        [
            "source `visits` may be stale: its newest `visit_date` at or before as_of 2024-03-31 is 2024-03-29, \
             2d 0h before the end of as_of (warn_after: 1d) (the end of as_of is midnight at the start of \
             2024-04-01 in Europe/Rome)",
            "source `visits`: 1 of 2 rows have a `visit_date` after as_of 2024-03-31 (warn_if > 0)",
        ]
    );
    // The stages still read every row: freshness measures, it does not filter.
    assert_eq!(table(&ws.path("out"), "orders_rows", "2024-03-31"), "+---+\n| n |\n+---+\n| 3 |\n+---+");

    // In UTC all three orders are on or before 2024-03-31.
    let manifest = run_in(&ws, "2024-03-31", "UTC").await.expect("fresh enough");
    let freshness = manifest.sources["orders"].freshness.as_ref().expect("measured");
    assert_eq!(
        (freshness.newest.as_deref(), freshness.age_seconds, freshness.rows_after_as_of),
        (Some("2024-03-31T22:30:00Z"), Some(5_400), 0)
    );
}

#[tokio::test]
async fn a_stale_source_stops_the_run_before_a_stage_reads_it() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    ws.write("pipeline.yaml", pipeline(ORDERS_SOURCE, &["orders"]));
    let warned = run_in(&ws, "2024-04-03", "UTC").await.expect("3 days old: a warning");
    assert_eq!(warned.sources["orders"].freshness.as_ref().map(|f| f.status), Some(Status::Warn));
    std::fs::remove_dir_all(ws.path("out")).expect("a fresh output");

    let error = run_in(&ws, "2024-04-10", "UTC").await.expect_err("10 days old");
    assert_eq!(error.exit_code(), exit_code::DATA);
    assert_eq!(
        error.to_string(),
        "bad input data: source `orders` is stale: its newest `order_ts` at or before as_of 2024-04-10 is \
         2024-03-31T22:30:00Z, 10d 1h before the end of as_of (error_after: 7d) (the end of as_of is midnight at \
         the start of 2024-04-11 in UTC); check that the input is complete and up to date, or run for an earlier --as-of"
    );
    assert!(files_below(&ws.path("out")).is_empty(), "nothing published");

    // No row at all on or before as_of is as stale as can be.
    let error = run_in(&ws, "2024-03-01", "UTC").await.expect_err("no row yet");
    assert!(
        error.to_string().starts_with("bad input data: source `orders` is stale: no row has a `order_ts` at or before as_of 2024-03-01 (error_after: 7d)"),
        "{error}"
    );
}

#[tokio::test]
async fn a_source_that_can_stop_the_run_is_checked_before_any_stage_runs() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    ws.write("input/visits/visits.csv", "visit_date\n2024-03-29\n");
    // `visits_rows` heads the longest chain, so it would run first; its test always has
    // a failing row, written to _test_failures when it runs.
    let visits = "  visits:\n    url: ${input}/visits/\n    columns:\n      visit_date: date\n";
    let yaml = pipeline(&format!("{ORDERS_SOURCE}{visits}"), &["visits", "orders"]).replace(
        "  orders_rows:\n",
        "  visits_later:\n    query: SELECT * FROM visits_rows\n  visits_last:\n    query: SELECT * FROM visits_later\n  orders_rows:\n",
    );
    let yaml = yaml.replace(
        "FROM visits\n",
        "FROM visits\n    tests:\n      - {expression: n = 0, name: always_fails, severity: warn}\n",
    );
    let path = ws.write("pipeline.yaml", yaml);
    let pipeline = fidelis::config::load(&path).expect("pipeline");
    let input = ws.path("input").display().to_string();
    let output = ws.path("out").display().to_string();
    // One job at a time, so that the order is the schedule's alone.
    let run_as_of = |as_of: &str| {
        let mut overrides = crate::support::overrides(as_of, &[("input", &input), ("output", &output)]);
        overrides.threads = Some(1);
        let pipeline = &pipeline;
        async move { fidelis::run::run(pipeline, &overrides).await }
    };
    let error = run_as_of("2024-04-10").await.expect_err("orders are 10 days old");
    assert_eq!(error.exit_code(), exit_code::DATA);
    assert!(files_below(&ws.path("out")).is_empty(), "no stage ran: {:?}", files_below(&ws.path("out")));

    let manifest = run_as_of("2024-04-01").await.expect("fresh orders");
    assert_eq!(
        manifest.tests.iter().map(|t| (t.name.as_str(), t.failing_rows)).collect::<Vec<_>>(),
        [("always_fails", 1)]
    );
    assert!(ws.path("out/_test_failures/visits_rows/always_fails/as_of=2024-04-01/part-00000.parquet").exists());
}

#[tokio::test]
async fn rows_after_as_of_can_be_an_error() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    let source = ORDERS_SOURCE.replace("error_after: 7d}", "error_after: 7d, rows_after_as_of: {error_if: \"> 10%\"}}");
    ws.write("pipeline.yaml", pipeline(&source, &["orders"]));
    let error = run_in(&ws, "2024-03-31", "Europe/Rome").await.expect_err("1 of 3 is over 10%");
    assert_eq!(
        error.to_string(),
        "bad input data: source `orders`: 1 of 3 rows have a `order_ts` after as_of 2024-03-31 (error_if > 10%); \
         check the input's dates and the pipeline's timezone"
    );
}

const COUNTED_SOURCE: &str = "  orders:
    url: ${input}/orders/
    columns:
      order_id: {type: string, required: true}
    volume: {min_rows: 2, warn_if_change_exceeds: 20%, error_if_change_exceeds: 50%}
";

/// `rows` orders in the input.
fn orders(ws: &Workspace, rows: usize) {
    let lines: String = (1..=rows).map(|n| format!("O{n}\n")).collect();
    ws.write("input/orders/orders.csv", format!("order_id\n{lines}"));
}

#[tokio::test]
async fn volume_is_compared_with_the_latest_earlier_as_of() {
    let ws = Workspace::new();
    ws.write("pipeline.yaml", pipeline(COUNTED_SOURCE, &["orders"]));
    orders(&ws, 100);
    run_in(&ws, "2024-05-31", "UTC").await.expect("a later as_of, never compared with an earlier one");
    orders(&ws, 10);
    let first = run_in(&ws, "2024-02-29", "UTC").await.expect("nothing earlier to compare with");
    assert_eq!(
        serde_json::to_value(&first.sources["orders"].volume).expect("JSON"),
        json!({"rows": 10, "min_rows": 2, "warn_if_change_exceeds": "20%", "error_if_change_exceeds": "50%", "status": "pass"})
    );
    // A partition without _SUCCESS (being published, or never completed) is passed over.
    orders(&ws, 1_000);
    run_in(&ws, "2024-03-15", "UTC").await.expect_err("1,000 rows are 9,900% more than 10");
    orders(&ws, 10);
    run_in(&ws, "2024-03-15", "UTC").await.expect("as many as before");
    std::fs::remove_file(ws.path("out/_runs/as_of=2024-03-15/_SUCCESS")).expect("_SUCCESS");

    orders(&ws, 7);
    let warned = run_in(&ws, "2024-03-31", "UTC").await.expect("30% fewer: a warning");
    assert_eq!(
        serde_json::to_value(&warned.sources["orders"].volume).expect("JSON"),
        json!({
            "rows": 7, "min_rows": 2, "previous_as_of": "2024-02-29", "previous_rows": 10, "change": -0.3,
            "warn_if_change_exceeds": "20%", "error_if_change_exceeds": "50%", "status": "warn"
        })
    );
    assert_eq!(
        warned.warnings,
        [
            "source `orders` loaded 7 rows, 30.0% fewer than the 10 of the run as of 2024-02-29 (warn_if_change_exceeds: 20%)"
        ]
    );

    orders(&ws, 3);
    let error = run_in(&ws, "2024-04-30", "UTC").await.expect_err("57% fewer than at 2024-03-31");
    assert_eq!(error.exit_code(), exit_code::DATA);
    assert_eq!(
        error.to_string(),
        "bad input data: source `orders` loaded 3 rows, 57.1% fewer than the 7 of the run as of 2024-03-31 \
         (error_if_change_exceeds: 50%); check that the input is complete and not duplicated, or raise the \
         threshold if the change is real"
    );
    orders(&ws, 1);
    let error = run_in(&ws, "2024-04-30", "UTC").await.expect_err("fewer than min_rows");
    assert!(
        error.to_string().starts_with(
            "bad input data: source `orders` loaded 1 rows, fewer than its `min_rows: 2`; check that the input files are complete\n"
        ),
        "{error}"
    );
}
