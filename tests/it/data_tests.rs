//! Data tests on a pipeline's own tables (README: Data tests): every kind counts its
//! failing rows, weighs them against its thresholds, writes a sample of them to
//! `_test_failures/{stage}/{test}` and records its result in the manifest; a failure of
//! severity `error` stops the run (exit code 3) and publishes nothing.

use fidelis::config::Status;
use fidelis::error::exit_code;
use fidelis::manifest::Manifest;

use std::collections::BTreeMap;

use datafusion::arrow::array::AsArray;

use crate::support::{Workspace, files_below, read_parquet, repo, run, shipped_pipeline};

/// Seven orders; the comment after each says which test it fails.
const ORDERS: &str = "\
order_id,customer_id,amount,status
O1,C1,10.00,open
O2,C2,20.00,shipped
O2,C1,30.00,open
O3,,5.00,open
O4,C9,60.00,open
O5,C2,150.00,lost
O6,C1,,
";
// O2 twice: unique. O3: not_null (its null customer passes relationships). O4: C9 is not
// a customer (relationships), 60 and still open (big_orders_ship). O5: `lost` is not a
// status (accepted_values), 150 is above 100 (accepted_range), 150 and lost
// (big_orders_ship). O6: null amount and status pass every test but not_null.

const CUSTOMERS: &str = "customer_id\nC1\nC2\n";

/// A pipeline whose stage `checked` (the orders as they are) has a test of every kind,
/// each with `severity` as given.
fn pipeline(severity: &str) -> String {
    format!(
        r#"name: tested
params:
  input: {{type: string, default: input}}
  output: {{type: string, default: out}}
sources:
  orders:
    url: ${{input}}/orders/
    columns:
      order_id: {{type: string, required: true}}
      customer_id: string
      amount: decimal(18,2)
      status: string
  customers:
    url: ${{input}}/customers/
    optional: true
    columns:
      customer_id: {{type: string, required: true}}
stages:
  checked:
    query: SELECT * FROM orders
    tests:
      - unique: order_id
        severity: {severity}
      - not_null: customer_id
        severity: {severity}
      - accepted_values: {{column: status, values: [open, shipped]}}
        severity: {severity}
      - relationships: {{column: customer_id, to: customers.customer_id}}
        severity: {severity}
      - accepted_range: {{column: amount, min: 0, max: 100}}
        severity: {severity}
      - expression: amount < 50 OR status = 'shipped'
        name: big_orders_ship
        severity: {severity}
outputs:
  root: ${{output}}
  tables: [checked]
"#
    )
}

fn workspace(severity: &str) -> (Workspace, std::path::PathBuf) {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    ws.write("input/customers/customers.csv", CUSTOMERS);
    let path = ws.write("pipeline.yaml", pipeline(severity));
    (ws, path)
}

async fn run_in(ws: &Workspace, path: &std::path::Path) -> fidelis::Result<Manifest> {
    let input = ws.path("input").display().to_string();
    let output = ws.path("out").display().to_string();
    run(path, "2024-01-31", &[("input", &input), ("output", &output)]).await
}

/// The failing rows a test wrote, as an aligned table.
fn failures(ws: &Workspace, test: &str) -> String {
    let file = ws.path(&format!("out/_test_failures/checked/{test}/as_of=2024-01-31/part-00000.parquet"));
    let batches = read_parquet(&file);
    datafusion::arrow::util::pretty::pretty_format_batches(&batches).expect("printable").to_string()
}

/// Each test's (name, status, failing rows, rows checked).
fn outcomes(manifest: &Manifest) -> Vec<(String, Status, u64, u64)> {
    manifest.tests.iter().map(|t| (t.name.clone(), t.status, t.failing_rows, t.rows)).collect()
}

#[tokio::test]
async fn every_kind_counts_its_failing_rows_and_warns_with_severity_warn() {
    let (ws, path) = workspace("warn");
    let manifest = run_in(&ws, &path).await.expect("warnings do not stop the run");
    let outcome = |name: &str, failing| (name.to_string(), Status::Warn, failing, 7);
    assert_eq!(
        outcomes(&manifest),
        [
            outcome("unique_checked_order_id", 2),
            outcome("not_null_checked_customer_id", 1),
            outcome("accepted_values_checked_status", 1),
            outcome("relationships_checked_customer_id__customer_id__customers", 1),
            outcome("accepted_range_checked_amount", 1),
            outcome("big_orders_ship", 2),
        ]
    );
    let warning = |test: &str, found: &str| {
        format!(
            "stage `checked`: test `{test}` (warn_if > 0): {found}; failing rows (at most 100) in \
             file://[TMP]/out/_test_failures/checked/{test}/as_of=2024-01-31"
        )
    };
    assert_eq!(
        manifest.warnings.iter().map(|w| ws.redact(w)).collect::<Vec<_>>(),
        [
            warning("unique_checked_order_id", "2 of 7 rows share their `order_id` with another row"),
            warning("not_null_checked_customer_id", "1 of 7 rows have a null `customer_id`"),
            warning("accepted_values_checked_status", "1 of 7 rows have `status` not in ('open', 'shipped')"),
            warning(
                "relationships_checked_customer_id__customer_id__customers",
                "1 of 7 rows have `customer_id` not in `customers.customer_id`"
            ),
            warning("accepted_range_checked_amount", "1 of 7 rows have `amount` outside [0, 100]"),
            warning("big_orders_ship", "2 of 7 rows do not meet `amount < 50 OR status = 'shipped'`"),
        ]
    );
    let result = &manifest.tests[3];
    assert_eq!(result.kind, "relationships");
    assert_eq!(result.columns, ["customer_id"]);
    assert_eq!((result.error_if.as_deref(), result.warn_if.as_str()), (None, "> 0"));
    let folder = "file://[TMP]/out/_test_failures/checked/relationships_checked_customer_id__customer_id__customers/as_of=2024-01-31";
    assert_eq!(result.failures.as_deref().map(|f| ws.redact(f)).as_deref(), Some(folder));

    // The samples: the repeated key with its count, and whole rows of the others.
    assert_eq!(
        failures(&ws, "unique_checked_order_id"),
        "+----------+-----------+\n\
         | order_id | n_records |\n\
         +----------+-----------+\n\
         | O2       | 2         |\n\
         +----------+-----------+"
    );
    assert_eq!(
        failures(&ws, "big_orders_ship"),
        "+----------+-------------+--------+--------+\n\
         | order_id | customer_id | amount | status |\n\
         +----------+-------------+--------+--------+\n\
         | O4       | C9          | 60.00  | open   |\n\
         | O5       | C2          | 150.00 | lost   |\n\
         +----------+-------------+--------+--------+"
    );
    // The stage's table is published whole: tests report, they do not filter.
    assert_eq!(manifest.tables["checked"].rows, 7);
}

#[tokio::test]
async fn an_error_stops_the_run_publishes_nothing_and_keeps_the_failing_rows() {
    let (ws, path) = workspace("error");
    let error = run_in(&ws, &path).await.expect_err("error tests fail");
    assert_eq!(error.exit_code(), exit_code::DATA);
    insta::assert_snapshot!(ws.redact(&error.to_string()));
    // No table, no manifest: only the failing rows, outside any published partition.
    assert_eq!(
        files_below(&ws.path("out")),
        [
            "_test_failures/checked/accepted_range_checked_amount/as_of=2024-01-31/part-00000.parquet",
            "_test_failures/checked/accepted_values_checked_status/as_of=2024-01-31/part-00000.parquet",
            "_test_failures/checked/big_orders_ship/as_of=2024-01-31/part-00000.parquet",
            "_test_failures/checked/not_null_checked_customer_id/as_of=2024-01-31/part-00000.parquet",
            "_test_failures/checked/relationships_checked_customer_id__customer_id__customers/as_of=2024-01-31/part-00000.parquet",
            "_test_failures/checked/unique_checked_order_id/as_of=2024-01-31/part-00000.parquet",
        ]
    );
}

#[tokio::test]
async fn a_failed_test_stops_the_run_even_when_its_stage_says_on_error_warn() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    ws.write("input/customers/customers.csv", CUSTOMERS);
    // on_error: warn skips a stage whose query fails on its data; its tests still fail the run.
    let yaml = pipeline("error").replace("SELECT * FROM orders\n", "SELECT * FROM orders\n    on_error: warn\n");
    let path = ws.write("pipeline.yaml", yaml);
    let error = run_in(&ws, &path).await.expect_err("error tests fail");
    assert_eq!(error.exit_code(), exit_code::DATA);
    assert!(error.to_string().starts_with("bad input data: stage `checked`: 6 data tests failed:\n"), "{error}");
    assert!(files_below(&ws.path("out")).iter().all(|file| file.starts_with("_test_failures/checked/")));
}

#[tokio::test]
async fn a_failed_test_is_the_runs_error_when_a_stage_reading_its_table_fails_beside_it() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    ws.write("input/customers/customers.csv", CUSTOMERS);
    // `reader` starts as soon as `checked` has run, beside its tests, and fails on the very
    // rows they flag (`lost` is no number): the run says what is wrong with the data.
    let reader = "  reader:\n    query: SELECT CAST(status AS INT) AS status_code FROM checked\noutputs:";
    let path = ws.write("pipeline.yaml", pipeline("error").replace("outputs:", reader));
    let error = run_in(&ws, &path).await.expect_err("error tests fail");
    assert_eq!(error.exit_code(), exit_code::DATA, "{error}");
    assert!(error.to_string().starts_with("bad input data: stage `checked`: 6 data tests failed:\n"), "{error}");
    assert!(files_below(&ws.path("out")).iter().all(|file| file.starts_with("_test_failures/checked/")));
}

#[tokio::test]
async fn thresholds_count_rows_or_a_percentage_of_the_table() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    ws.write("input/customers/customers.csv", CUSTOMERS);
    let tests = r#"
      # 1 failing row of 7 (14.3%): under error_if, over warn_if.
      - not_null: customer_id
        error_if: "> 1"
        warn_if: "> 10%"
      # 2 of 7 (28.6%): not over 30%, and not over 2.
      - expression: amount < 50 OR status = 'shipped'
        name: big_orders_ship
        error_if: "> 30%"
        warn_if: "> 2"
      # 1 of 7: over 0, so an error.
      - accepted_range: {column: amount, max: 100}
"#;
    let yaml = pipeline("error");
    let start = yaml.find("    tests:\n").expect("tests") + "    tests:\n".len();
    let end = yaml.find("outputs:").expect("outputs");
    let path =
        ws.write("pipeline.yaml", format!("{}{}{}", &yaml[..start], tests.trim_start_matches('\n'), &yaml[end..]));
    let error = run_in(&ws, &path).await.expect_err("the range test fails");
    let message = ws.redact(&error.to_string());
    assert!(message.contains("1 data test failed:\n  test `accepted_range_checked_amount` (error_if > 0): 1 of 7 rows have `amount` above 100;"), "{message}");

    let path = ws.write(
        "pipeline.yaml",
        std::fs::read_to_string(&path).expect("yaml").replace("max: 100}", "max: 100}\n        severity: warn"),
    );
    let manifest = run_in(&ws, &path).await.expect("no error threshold met");
    assert_eq!(
        outcomes(&manifest),
        [
            ("not_null_checked_customer_id".to_string(), Status::Warn, 1, 7),
            ("big_orders_ship".to_string(), Status::Pass, 2, 7),
            ("accepted_range_checked_amount".to_string(), Status::Warn, 1, 7),
        ]
    );
    let thresholds: Vec<(Option<&str>, &str)> =
        manifest.tests.iter().map(|t| (t.error_if.as_deref(), t.warn_if.as_str())).collect();
    assert_eq!(thresholds, [(Some("> 1"), "> 10%"), (Some("> 30%"), "> 2"), (None, "> 0")]);
    // Failing rows are kept below the thresholds too.
    assert!(manifest.tests[1].failures.is_some());
}

#[tokio::test]
async fn a_test_without_failing_rows_removes_the_ones_an_earlier_run_left() {
    let (ws, path) = workspace("warn");
    run_in(&ws, &path).await.expect("first run");
    let sample = "out/_test_failures/checked/unique_checked_order_id/as_of=2024-01-31/part-00000.parquet";
    assert!(ws.path(sample).exists());
    ws.write("input/orders/orders.csv", ORDERS.replace("O2,C1,30.00,open", "O7,C1,30.00,open"));
    let manifest = run_in(&ws, &path).await.expect("second run");
    assert_eq!(outcomes(&manifest)[0], ("unique_checked_order_id".to_string(), Status::Pass, 0, 7));
    assert_eq!(manifest.tests[0].failures, None);
    assert!(!ws.path(sample).exists(), "the earlier run's failing rows are gone");
}

#[tokio::test]
async fn a_test_reading_an_absent_optional_source_is_skipped() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", ORDERS);
    let path = ws.write("pipeline.yaml", pipeline("warn"));
    let manifest = run_in(&ws, &path).await.expect("run");
    let skipped = &manifest.tests[5];
    assert_eq!(
        (skipped.name.as_str(), skipped.status, skipped.failing_rows, skipped.reason.as_deref()),
        (
            "relationships_checked_customer_id__customer_id__customers",
            Status::Skipped,
            0,
            Some("`customers` is an optional source without files")
        )
    );
    assert!(!manifest.warnings.iter().any(|w| w.contains("relationships_checked")), "{:?}", manifest.warnings);
}

#[tokio::test]
async fn the_shipped_pipeline_passes_its_tests_on_the_bundled_sample() {
    let ws = Workspace::new();
    let output = ws.path("out").display().to_string();
    let shipped = crate::support::repo().join("pipelines/loyalty.yaml");
    let manifest = run(&shipped, "2026-11-21", &[("output", &output)]).await.expect("the run");
    let not_passing: Vec<_> = manifest.tests.iter().filter(|t| t.status != Status::Pass).collect();
    assert!(not_passing.is_empty(), "{not_passing:#?}");
    let tested: std::collections::BTreeSet<&str> = manifest.tests.iter().map(|t| t.stage.as_str()).collect();
    // Every output table is tested, and the orphans of the staged orders are counted.
    let mut expected: Vec<&str> = manifest.tables.keys().map(String::as_str).collect();
    expected.push("stg_transactions");
    expected.sort();
    assert_eq!(tested.into_iter().collect::<Vec<_>>(), expected);
    let orphans = manifest.tests.iter().find(|t| t.name == "orphan_orders").expect("the orphans test");
    assert_eq!((orphans.kind.as_str(), orphans.failing_rows, orphans.rows), ("relationships", 0, 11_039));
    assert!(!ws.path("out/_test_failures").exists(), "no test has failing rows");
}

/// The ten customers left out of `customers` by [`sample_without_ten_customers`].
fn left_out(n: u32) -> String {
    format!("C{n:08}")
}

/// The bundled sample as input, but for the first ten customers (C00000001..C00000010) in
/// `customers`: their 49 orders (46 up to 2026-10-31) are orphans. Returns the input root.
fn sample_without_ten_customers(ws: &Workspace) -> String {
    let sample = repo().join("data/sample");
    let read = |table: &str| std::fs::read_to_string(sample.join(table).join("part-00000.csv")).expect("sample");
    for table in ["transactions", "loyalty_events", "survey_responses", "wallet"] {
        ws.write(&format!("input/{table}/part-00000.csv"), read(table));
    }
    let left_out: Vec<String> = (1..=10).map(left_out).collect();
    let kept: String = read("customers")
        .lines()
        .filter(|line| !left_out.iter().any(|id| line.starts_with(&format!("{id},"))))
        .map(|line| format!("{line}\n"))
        .collect();
    ws.write("input/customers/part-00000.csv", kept);
    ws.path("input").display().to_string()
}

#[tokio::test]
async fn orphans_and_rows_after_as_of_are_counted_and_warnings_reach_the_report_footer() {
    let ws = Workspace::new();
    let input = sample_without_ten_customers(&ws);
    let output = ws.path("out").display().to_string();
    let set = [("input", input.as_str()), ("output", output.as_str())];
    let shipped = repo().join("pipelines/loyalty.yaml");

    // As of 2026-10-31, 399 of the sample's 11,039 orders are dated later: counted, and
    // left out by stg_transactions (10,640 rows), which counts 46 orphans among them.
    let manifest = run(&shipped, "2026-10-31", &set).await.expect("warnings do not stop the run");
    let freshness = manifest.sources["transactions"].freshness.as_ref().expect("measured");
    assert_eq!((freshness.rows_after_as_of, freshness.status), (399, Status::Pass));
    let orphans = manifest.tests.iter().find(|t| t.name == "orphan_orders").expect("the orphans test");
    assert_eq!((orphans.status, orphans.failing_rows, orphans.rows), (Status::Warn, 46, 10_640));
    let file = ws.path("out/_test_failures/stg_transactions/orphan_orders/as_of=2026-10-31/part-00000.parquet");
    let mut per_customer: BTreeMap<String, usize> = BTreeMap::new();
    for batch in read_parquet(&file) {
        let ids = batch.column_by_name("customer_id").expect("customer_id");
        let ids = datafusion::arrow::compute::cast(ids, &datafusion::arrow::datatypes::DataType::Utf8).expect("text");
        for id in ids.as_string::<i32>().iter().flatten() {
            *per_customer.entry(id.to_string()).or_default() += 1;
        }
    }
    // C00000003 has no order up to as_of.
    let expected: BTreeMap<String, usize> = [(1, 8), (2, 4), (4, 6), (5, 10), (6, 5), (7, 2), (8, 5), (9, 1), (10, 5)]
        .map(|(n, orders)| (left_out(n), orders))
        .into();
    assert_eq!(per_customer, expected);

    // As of 2026-12-01 the newest order is ten days old: a warning, beside the orphans'.
    let manifest = run(&shipped, "2026-12-01", &set).await.expect("warnings do not stop the run");
    let warnings: Vec<String> = manifest.warnings.iter().map(|w| ws.redact(w)).collect();
    let stale = "source `transactions` may be stale: its newest `order_ts` at or before as_of 2026-12-01 is \
                 2026-11-21T22:21:35Z, 10d 1h before the end of as_of (warn_after: 7d) (the end of as_of is midnight \
                 at the start of 2026-12-02 in UTC)";
    let orphans = "stage `stg_transactions`: test `orphan_orders` (warn_if > 0): 49 of 11039 rows have `customer_id` \
                   not in `customers.customer_id`; failing rows (at most 100) in \
                   file://[TMP]/out/_test_failures/stg_transactions/orphan_orders/as_of=2026-12-01";
    // In pipeline order (share_of_wallet comes before clv), whichever stage finished first.
    let counts =
        ["stage `share_of_wallet`: 8 rows are capped_shares", "stage `clv`: 1241 rows are left_out_of_spend_model"];
    assert_eq!(warnings, [stale, orphans, counts[0], counts[1]]);
    let report = |file: &str| {
        ws.redact(&std::fs::read_to_string(ws.path(&format!("out/reports/as_of=2026-12-01/{file}"))).expect("report"))
    };
    let markdown = report("report.md");
    let footer = &markdown[markdown.find("Warnings of the run:").expect("warnings in the Markdown footer")..];
    // Markdown-escaped: the backticks, underscores and `>` show as written.
    let escaped = |text: &str| text.replace('`', "\\`").replace('_', "\\_").replace('>', "\\>");
    let items: String = warnings.iter().map(|w| format!("- {}\n", escaped(w))).collect();
    assert_eq!(footer, format!("Warnings of the run:\n\n{items}"));
    let html = report("report.html");
    let footer = &html[html.find("<p>Warnings of the run:</p>").expect("warnings in the HTML footer")..];
    let items: String = warnings.iter().map(|w| format!("<li>{}</li>\n", w.replace('>', "&gt;"))).collect();
    assert_eq!(&footer[..footer.find("</ul>").expect("a list")], format!("<p>Warnings of the run:</p>\n<ul>\n{items}"));
}

#[tokio::test]
async fn the_orphans_test_stops_the_run_when_set_to_error() {
    let ws = Workspace::new();
    let input = sample_without_ten_customers(&ws);
    let output = ws.path("out").display().to_string();
    let path = shipped_pipeline(
        &ws,
        &[("name: orphan_orders\n        severity: warn", "name: orphan_orders\n        severity: error")],
    );
    let error = run(&path, "2026-10-31", &[("input", &input), ("output", &output)]).await.expect_err("orphans");
    assert_eq!(error.exit_code(), exit_code::DATA);
    assert_eq!(
        ws.redact(&error.to_string()),
        "bad input data: stage `stg_transactions`: 1 data test failed:\n  test `orphan_orders` (error_if > 0): 46 of \
         10640 rows have `customer_id` not in `customers.customer_id`; failing rows (at most 100) in \
         file://[TMP]/out/_test_failures/stg_transactions/orphan_orders/as_of=2026-10-31\n  fix the data or the \
         stage's SQL; a test that should not stop the run can say `severity: warn`, or allow some failing rows with \
         `error_if` (README: Data tests)"
    );
    assert_eq!(
        files_below(&ws.path("out")),
        ["_test_failures/stg_transactions/orphan_orders/as_of=2026-10-31/part-00000.parquet"]
    );
}

#[test]
fn mistakes_in_tests_freshness_and_volume_are_reported_together_with_their_lines() {
    let ws = Workspace::new();
    let path = ws.write(
        "pipeline.yaml",
        r#"name: mistakes
sources:
  orders:
    url: input/orders/
    columns:
      order_id: string
      amount: decimal(18,2)
    freshness: {column: amount, warn_after: 2 days, error_after: 1d}
    volume: {warn_if_change_exceeds: 50, error_if_change_exceeds: 10%}
  undeclared:
    url: input/other/
    freshness: {column: ts}
stages:
  checked:
    query: SELECT * FROM orders
    tests:
      - unique: order_id
        not_null: order_id
      - severity: warn
      - accepted_values: {column: status}
      - relationships: {column: customer_id, to: customers}
      - relationships: {column: customer_id, to: clients.id}
      - accepted_values: {column: order_id, values_from: orders.code}
      - accepted_range: {column: amount, min: 10, max: 1}
      - expression: amount >
      - not_null: order_id
        severity: warn
        error_if: "> 1"
        warn_if: more than one
      - not_null: order_id
      - unique: [order_id, order_id]
      - name: bad name
        not_null: amount
      - relationships: {column: order_id, to: later.order_id}
  later:
    query: SELECT * FROM checked
"#,
    );
    let error = fidelis::config::load(&path).expect_err("mistakes");
    assert_eq!(error.exit_code(), exit_code::CONFIG);
    insta::assert_snapshot!(ws.redact(&error.to_string()));
}

#[tokio::test]
async fn validate_plans_every_test_against_the_columns_of_its_stage() {
    let ws = Workspace::new();
    ws.write("input/orders/orders.csv", "order_id,amount\nO1,10.00\n");
    let path = ws.write(
        "pipeline.yaml",
        r#"name: unplanned
params:
  input: {type: string, default: input}
sources:
  orders:
    url: ${input}/orders/
    columns:
      order_id: string
      amount: decimal(18,2)
stages:
  codes:
    query: SELECT 'O1' AS id
  checked:
    query: SELECT order_id, amount FROM orders
    tests:
      - not_null: customer_id
      - expression: amount + 1
      - expression: discount > 1
      - relationships: {column: order_id, to: codes.code}
      - accepted_range: {column: amount, min: ten}
      - unique: order_id
"#,
    );
    let pipeline = fidelis::config::load(&path).expect("the file is well formed");
    let input = ws.path("input").display().to_string();
    let overrides = crate::support::overrides("2024-01-31", &[("input", &input)]);
    let error = fidelis::run::validate(&pipeline, &overrides).await.expect_err("five tests do not plan");
    assert_eq!(error.exit_code(), exit_code::CONFIG);
    insta::assert_snapshot!(ws.redact(&error.to_string()));
}
