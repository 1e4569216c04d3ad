//! The KPI report: the shipped report marts computed by DataFusion over a hand-made
//! fixture of the marts they read, and the shipped templates rendered over them (pinned
//! by snapshots of the report tables, of the Markdown and of the HTML's element tree);
//! escaping, skipped tables, locales, template and pipeline errors; the documented SQL
//! that reproduces the report's figures; and the sample report in headless Chromium.
//!
//! The fixture is a run as of 2024-03-14, so March 2024 is incomplete and the
//! reported month is February 2024, compared with January 2024 and February 2023:
//!
//! - kpi_monthly, Jan 2023 – Mar 2024. February 2024 against January: active customers
//!   and revenue up (good), CRR down and churn up by 1 pp (bad), NPS down 2.5 points
//!   (bad), median time to value unchanged (neutral). Against February 2023 everything
//!   improved, including time to value (41 → 31 days: lower is better). June 2023 has
//!   no survey responses: NPS is null there (a gap in the chart).
//! - rfm: 12 customers. C11's segment is `<script>alert("x")</script>` (a segment map
//!   may name segments anything: it must show as text); C12 matched no rule of the map.
//! - clv: C01–C13 (C13 has no RFM row: counted in the base's CLV, in no segment).
//! - share_of_wallet: February 2024 has wallet rows, a Wallet Allocation Rule row without
//!   a category spend (left out of the spend-weighted share) and a capped row:
//!   320 / 1,120 = 28.6 %; January 160 / 820 = 19.5 %; February 2023 70 / 400 = 17.5 %.
//!   Its shares 0, 0.1, 0.3, 0.4, 0.5 and 1 fall in the bins from 0, 10, 20 (0.3 / 0.1 is
//!   2.999… in floating point), 40, 50 and 90 %: the last bin holds a share of 1.
//! - loyalty_program: only February 2023, January and February 2024.
//! - the manifest is fixed, so nothing depends on the clock.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use fidelis::config::{ParamValue, Pipeline, Report};
use fidelis::manifest::Manifest;
use fidelis::memory::MemoryBudget;
use fidelis::report::{RenderedFile, ReportRequest, Tables, read_tables, render};
use fidelis::results::Results;
use futures::TryStreamExt;
use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::support::{Workspace, overrides, query, repo, run};

const AS_OF: &str = "2024-03-14";

// ---------------------------------------------------------------------------
// The fixture
// ---------------------------------------------------------------------------

fn text(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn float(values: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(values.to_vec()))
}

fn int(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

/// Money as the pipeline writes it: DECIMAL(18,2).
fn money(values: &[Option<f64>]) -> ArrayRef {
    let cents: Vec<Option<i128>> = values.iter().map(|v| v.map(|v| (v * 100.0).round() as i128)).collect();
    Arc::new(Decimal128Array::from(cents).with_precision_and_scale(18, 2).expect("a valid decimal type"))
}

fn day(date: &str) -> i32 {
    let date: chrono::NaiveDate = date.parse().expect("a YYYY-MM-DD date");
    (date - chrono::NaiveDate::default()).num_days() as i32
}

fn dates(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(Date32Array::from(values.iter().map(|v| v.map(day)).collect::<Vec<_>>()))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Vec<RecordBatch> {
    let fields: Vec<Field> = columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    vec![RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("a valid batch")]
}

/// `(month, customers_end, new_customers, crr, revenue, orders, repeat_customer_rate,
/// nps, nps_responses, lttv_median_days)`; March 2024 is incomplete.
type KpiRow = (&'static str, i64, i64, Option<f64>, f64, i64, f64, Option<f64>, i64, Option<f64>);
const KPI_MONTHLY: [KpiRow; 15] = [
    ("2023-01-01", 800, 120, None, 40_000.00, 800, 0.00, Some(20.0), 40, None),
    ("2023-02-01", 850, 90, Some(0.91), 42_000.00, 840, 0.35, Some(22.5), 42, Some(41.0)),
    ("2023-03-01", 880, 80, Some(0.92), 43_500.50, 850, 0.40, Some(25.0), 38, Some(40.0)),
    ("2023-04-01", 900, 70, Some(0.92), 45_000.00, 880, 0.42, Some(24.0), 35, Some(39.0)),
    ("2023-05-01", 930, 75, Some(0.93), 46_000.00, 900, 0.44, Some(26.0), 40, Some(38.0)),
    ("2023-06-01", 950, 60, Some(0.93), 47_000.00, 910, 0.45, None, 0, Some(38.0)),
    ("2023-07-01", 960, 55, Some(0.92), 46_500.00, 905, 0.46, Some(27.5), 44, Some(37.0)),
    ("2023-08-01", 975, 50, Some(0.93), 48_000.00, 930, 0.47, Some(28.0), 45, Some(36.0)),
    ("2023-09-01", 990, 52, Some(0.94), 49_500.00, 950, 0.48, Some(30.0), 47, Some(35.0)),
    ("2023-10-01", 1_010, 58, Some(0.94), 51_000.00, 975, 0.49, Some(31.5), 50, Some(34.0)),
    ("2023-11-01", 1_040, 70, Some(0.95), 56_000.00, 1_050, 0.50, Some(33.0), 52, Some(33.0)),
    ("2023-12-01", 1_080, 85, Some(0.95), 64_000.00, 1_200, 0.52, Some(34.0), 55, Some(32.0)),
    ("2024-01-01", 1_070, 40, Some(0.93), 50_000.00, 980, 0.53, Some(35.0), 48, Some(31.0)),
    ("2024-02-01", 1_090, 45, Some(0.92), 52_500.00, 1_000, 0.55, Some(32.5), 46, Some(31.0)),
    ("2024-03-01", 1_060, 20, Some(0.90), 21_000.00, 400, 0.58, Some(30.0), 20, Some(30.0)),
];

fn kpi_monthly() -> Vec<RecordBatch> {
    let rows = &KPI_MONTHLY;
    let col = |f: fn(&KpiRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    batch(vec![
        ("period", dates(&rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>())),
        ("customers_end", int(&rows.iter().map(|r| Some(r.1)).collect::<Vec<_>>())),
        ("new_customers", int(&rows.iter().map(|r| Some(r.2)).collect::<Vec<_>>())),
        ("crr", float(&col(|r| r.3))),
        ("churn_rate", float(&col(|r| r.3.map(|crr| 1.0 - crr)))),
        ("revenue", money(&col(|r| Some(r.4)))),
        ("orders", int(&rows.iter().map(|r| Some(r.5)).collect::<Vec<_>>())),
        ("average_order_value", float(&col(|r| Some(r.4 / r.5 as f64)))),
        ("repeat_customer_rate", float(&col(|r| Some(r.6)))),
        ("nps", float(&col(|r| r.7))),
        ("nps_responses", int(&rows.iter().map(|r| Some(r.8)).collect::<Vec<_>>())),
        ("lttv_median_days", float(&col(|r| r.9))),
        ("is_complete", Arc::new(BooleanArray::from(rows.iter().map(|r| r.0 != "2024-03-01").collect::<Vec<_>>()))),
    ])
}

/// Every cohort from January 2023: all of it active in month 0, then 25 % plus a
/// share fading with the months, a little better for every third cohort.
fn cohort_retention() -> Vec<RecordBatch> {
    let (mut cohorts, mut indexes, mut rates) = (Vec::new(), Vec::new(), Vec::new());
    for c in 0..15_i64 {
        let cohort = format!("{}-{:02}-01", 2023 + c / 12, c % 12 + 1);
        for k in 0..15 - c {
            cohorts.push(cohort.clone());
            indexes.push(Some(k));
            rates.push(Some(if k == 0 { 1.0 } else { 0.25 + 0.15 / k as f64 + 0.02 * (c % 3) as f64 }));
        }
    }
    let cohorts: Vec<Option<&str>> = cohorts.iter().map(|c| Some(c.as_str())).collect();
    batch(vec![("cohort_month", dates(&cohorts)), ("period_index", int(&indexes)), ("retention_rate", float(&rates))])
}

const SCRIPT_SEGMENT: &str = "<script>alert(\"x\")</script>";

/// `(customer, segment, monetary, predicted_clv, loyalty_type, first and last purchase)`.
type Customer = (&'static str, Option<&'static str>, f64, f64, Option<&'static str>, &'static str, &'static str);
const CUSTOMERS: [Customer; 12] = [
    ("C01", Some("Champions"), 900.00, 1_200.00, Some("truly_loyal"), "2023-01-03", "2024-03-12"),
    ("C02", Some("Champions"), 750.00, 950.00, Some("truly_loyal"), "2023-01-15", "2024-03-10"),
    ("C03", Some("Loyal Customers"), 600.00, 700.00, Some("program_driven"), "2023-02-02", "2024-02-27"),
    ("C04", Some("Loyal Customers"), 480.00, 520.00, Some("price_driven"), "2023-03-09", "2024-02-20"),
    ("C05", Some("Potential Loyalists"), 300.00, 400.00, Some("convenience"), "2023-06-11", "2024-03-01"),
    ("C06", Some("New Customers"), 120.00, 260.00, None, "2024-03-05", "2024-03-05"),
    ("C07", Some("At Risk"), 350.00, 150.00, Some("satisfied"), "2023-01-20", "2023-09-30"),
    ("C08", Some("At Risk"), 200.00, 90.00, Some("satisfied"), "2023-04-04", "2023-10-12"),
    ("C09", Some("Hibernating"), 60.00, 30.00, None, "2023-02-14", "2023-02-14"),
    ("C10", Some("Hibernating"), 40.00, 10.50, None, "2023-05-21", "2023-05-21"),
    ("C11", Some(SCRIPT_SEGMENT), 100.00, 75.00, Some("satisfied"), "2023-08-08", "2024-01-09"),
    ("C12", None, 50.00, 20.00, None, "2023-11-30", "2023-12-24"),
];

fn rfm() -> Vec<RecordBatch> {
    batch(vec![
        ("customer_id", text(&CUSTOMERS.iter().map(|c| Some(c.0)).collect::<Vec<_>>())),
        ("monetary", money(&CUSTOMERS.iter().map(|c| Some(c.2)).collect::<Vec<_>>())),
        ("segment", text(&CUSTOMERS.iter().map(|c| c.1).collect::<Vec<_>>())),
    ])
}

/// The `clv` table is built here because the report must work before (and without)
/// the pipeline's own: C13 bought only outside the RFM lookback.
fn clv() -> Vec<RecordBatch> {
    let ids: Vec<Option<&str>> = CUSTOMERS.iter().map(|c| Some(c.0)).chain([Some("C13")]).collect();
    let predicted: Vec<Option<f64>> = CUSTOMERS.iter().map(|c| Some(c.3)).chain([Some(5.0)]).collect();
    let n = ids.len();
    batch(vec![
        ("customer_id", text(&ids)),
        ("frequency", float(&vec![Some(1.0); n])),
        ("recency", float(&vec![Some(10.0); n])),
        ("T", float(&vec![Some(50.0); n])),
        ("monetary_value", float(&vec![Some(40.0); n])),
        ("p_alive", float(&vec![Some(0.8); n])),
        ("expected_purchases", float(&vec![Some(2.0); n])),
        ("expected_order_value", float(&vec![Some(45.0); n])),
        ("predicted_clv", float(&predicted)),
        ("historical_clv", float(&vec![Some(100.0); n])),
    ])
}

fn clv_simple() -> Vec<RecordBatch> {
    batch(vec![
        ("scope", text(&[Some("month"), Some("segment"), Some("segment"), Some("segment"), Some("segment")])),
        (
            "key",
            text(&[Some("2024-02"), Some("Champions"), Some("Loyal Customers"), Some("At Risk"), Some("Hibernating")]),
        ),
        ("simple_clv", float(&[Some(640.0), Some(1_500.0), Some(1_100.0), Some(300.0), Some(80.0)])),
    ])
}

/// `(period, customer, our_spend, category_spend, share_of_wallet, source)`.
type WalletRow = (&'static str, &'static str, f64, Option<f64>, f64, &'static str);

fn share_of_wallet() -> Vec<RecordBatch> {
    let rows: [WalletRow; 11] = [
        ("2023-02-01", "C01", 50.0, Some(250.0), 0.2, "wallet"),
        ("2023-02-01", "C02", 20.0, Some(150.0), 0.1333, "wallet"),
        ("2024-01-01", "C01", 80.0, Some(300.0), 0.2667, "wallet"),
        ("2024-01-01", "C02", 50.0, Some(120.0), 0.4167, "wallet"),
        ("2024-01-01", "C03", 30.0, Some(400.0), 0.075, "wallet"),
        ("2024-02-01", "C01", 90.0, Some(300.0), 0.3, "wallet"),
        ("2024-02-01", "C02", 60.0, Some(120.0), 0.5, "wallet"),
        ("2024-02-01", "C03", 40.0, Some(400.0), 0.1, "wallet"),
        ("2024-02-01", "C04", 25.0, None, 0.4, "war"),
        ("2024-02-01", "C05", 0.0, Some(200.0), 0.0, "wallet"),
        ("2024-02-01", "C06", 130.0, Some(100.0), 1.0, "wallet"),
    ];
    batch(vec![
        ("customer_id", text(&rows.iter().map(|r| Some(r.1)).collect::<Vec<_>>())),
        ("period", dates(&rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>())),
        ("our_spend", money(&rows.iter().map(|r| Some(r.2)).collect::<Vec<_>>())),
        ("category_spend", money(&rows.iter().map(|r| r.3).collect::<Vec<_>>())),
        ("share_of_wallet", float(&rows.iter().map(|r| Some(r.4)).collect::<Vec<_>>())),
        ("capped", Arc::new(BooleanArray::from(rows.iter().map(|r| r.1 == "C06").collect::<Vec<_>>()))),
        ("source", text(&rows.iter().map(|r| Some(r.5)).collect::<Vec<_>>())),
    ])
}

fn lttv_curve() -> Vec<RecordBatch> {
    let points = [(3, 0.05), (10, 0.12), (21, 0.25), (30, 0.33), (45, 0.41), (60, 0.47), (90, 0.55), (120, 0.58)];
    batch(vec![
        ("days", int(&points.iter().map(|p| Some(p.0)).collect::<Vec<_>>())),
        ("reached_share", float(&points.iter().map(|p| Some(p.1)).collect::<Vec<_>>())),
    ])
}

fn loyalty_program() -> Vec<RecordBatch> {
    // February 2023, January 2024, February 2024.
    let f = |values: [f64; 3]| float(&values.map(Some));
    batch(vec![
        ("period", dates(&[Some("2023-02-01"), Some("2024-01-01"), Some("2024-02-01")])),
        ("members_active", int(&[Some(310), Some(400), Some(420)])),
        ("points_earned", int(&[Some(38_000), Some(50_500), Some(52_000)])),
        ("points_redeemed", int(&[Some(11_400), Some(17_000), Some(18_200)])),
        ("redemption_rate", f([0.3, 17_000.0 / 50_500.0, 0.35])),
        ("reward_cost", money(&[Some(1_140.0), Some(1_700.0), Some(1_820.0)])),
        ("member_revenue", money(&[Some(24_000.0), Some(30_000.0), Some(31_500.0)])),
        ("non_member_revenue", money(&[Some(18_000.0), Some(20_000.0), Some(21_000.0)])),
        ("member_aov", f([57.5, 60.0, 61.76])),
        ("non_member_aov", f([42.0, 43.0, 43.75])),
        ("member_crr", f([0.94, 0.95, 0.95])),
        ("non_member_crr", f([0.87, 0.9, 0.88])),
        ("reward_cost_ratio", f([1_140.0 / 24_000.0, 1_700.0 / 30_000.0, 1_820.0 / 31_500.0])),
        ("engagement_actions", int(&[Some(90), Some(120), Some(135)])),
    ])
}

fn loyalty_types() -> Vec<RecordBatch> {
    let typed: Vec<&Customer> = CUSTOMERS.iter().filter(|c| c.4.is_some()).collect();
    batch(vec![
        ("customer_id", text(&typed.iter().map(|c| Some(c.0)).collect::<Vec<_>>())),
        ("loyalty_type", text(&typed.iter().map(|c| c.4).collect::<Vec<_>>())),
        ("reason", text(&typed.iter().map(|_| Some("fixture")).collect::<Vec<_>>())),
    ])
}

fn customer_summary() -> Vec<RecordBatch> {
    let all: Vec<(&str, &str, &str, f64)> =
        CUSTOMERS.iter().map(|c| (c.0, c.5, c.6, c.2)).chain([("C13", "2023-01-02", "2023-01-02", 15.0)]).collect();
    batch(vec![
        ("customer_id", text(&all.iter().map(|c| Some(c.0)).collect::<Vec<_>>())),
        ("first_purchase_date", dates(&all.iter().map(|c| Some(c.1)).collect::<Vec<_>>())),
        ("last_purchase_date", dates(&all.iter().map(|c| Some(c.2)).collect::<Vec<_>>())),
        ("revenue", money(&all.iter().map(|c| Some(c.3)).collect::<Vec<_>>())),
    ])
}

fn flags(values: &[bool]) -> ArrayRef {
    Arc::new(BooleanArray::from(values.to_vec()))
}

/// The reason clv_model_selection gives for the fixture's choice of MBG/NBD.
const SELECTION_REASON: &str = "clv_model: auto: the lowest holdout MAE of 2 backtested models (0.85)";

/// BG/NBD and MBG/NBD backtested (MBG/NBD has the lower MAE and is selected),
/// Pareto/NBD not fitted on the calibration period.
fn clv_backtest() -> Vec<RecordBatch> {
    let models = [Some("bg_nbd"), Some("mbg_nbd"), Some("pareto_nbd")];
    batch(vec![
        ("model", text(&models)),
        ("calibration_end", dates(&[Some("2023-09-14"); 3])),
        ("holdout_end", dates(&[Some(AS_OF); 3])),
        ("holdout_length", float(&[Some(182.0); 3])),
        ("customers", int(&[Some(10); 3])),
        ("actual_purchases", int(&[Some(24); 3])),
        ("predicted_purchases", float(&[Some(22.5), Some(23.1), None])),
        ("total_error", float(&[Some(22.5 / 24.0 - 1.0), Some(23.1 / 24.0 - 1.0), None])),
        ("mae", float(&[Some(0.9), Some(0.85), None])),
        ("rmse", float(&[Some(1.25), Some(1.2), None])),
        ("calibration_log_likelihood", float(&[Some(-80.5), Some(-80.1), None])),
        ("selected", flags(&[false, true, false])),
        ("status", text(&[Some("backtested"), Some("backtested"), Some("not_fitted")])),
        ("reason", text(&[None, None, Some("the likelihood did not converge in 200 iterations")])),
        ("selection_reason", text(&[None, Some(SELECTION_REASON), None])),
    ])
}

/// `(model, calibration_frequency, customers, actual_mean, predicted_mean)`, not in
/// order: the report mart orders the buckets.
type CalibrationRow = (&'static str, &'static str, i64, f64, f64);

fn clv_backtest_calibration() -> Vec<RecordBatch> {
    let rows: [CalibrationRow; 6] = [
        ("mbg_nbd", "7+", 2, 4.5, 4.1),
        ("mbg_nbd", "0", 5, 0.4, 0.5),
        ("mbg_nbd", "1", 3, 1.0, 0.9),
        ("bg_nbd", "0", 5, 0.4, 0.55),
        ("bg_nbd", "1", 3, 1.0, 0.85),
        ("bg_nbd", "7+", 2, 4.5, 3.9),
    ];
    batch(vec![
        ("model", text(&rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>())),
        ("calibration_frequency", text(&rows.iter().map(|r| Some(r.1)).collect::<Vec<_>>())),
        ("customers", int(&rows.iter().map(|r| Some(r.2)).collect::<Vec<_>>())),
        ("actual_mean", float(&rows.iter().map(|r| Some(r.3)).collect::<Vec<_>>())),
        ("predicted_mean", float(&rows.iter().map(|r| Some(r.4)).collect::<Vec<_>>())),
    ])
}

/// The base's predicted CLV with its p10-p90 interval, and one segment's.
fn clv_segments() -> Vec<RecordBatch> {
    batch(vec![
        ("scope", text(&[Some("segment"), Some("base")])),
        ("segment", text(&[Some("Champions"), None])),
        ("customers", int(&[Some(2), Some(13)])),
        ("predicted_clv", float(&[Some(1_900.0), Some(12_345.6)])),
        ("predicted_clv_p10", float(&[Some(1_700.0), Some(11_020.4)])),
        ("predicted_clv_p90", float(&[Some(2_150.0), Some(13_890.2)])),
    ])
}

/// clv_backtest of a run with `clv_holdout_days: 0`: every model off, BG/NBD used.
fn clv_backtest_off() -> Vec<RecordBatch> {
    let models = [Some("bg_nbd"), Some("mbg_nbd"), Some("pareto_nbd")];
    let off = "the backtest is off (clv_holdout_days = 0)";
    let reason = "clv_model: auto with the backtest off (clv_holdout_days = 0): bg_nbd, the default model";
    batch(vec![
        ("model", text(&models)),
        ("calibration_end", dates(&[None; 3])),
        ("holdout_end", dates(&[None; 3])),
        ("holdout_length", float(&[None; 3])),
        ("customers", int(&[None; 3])),
        ("actual_purchases", int(&[None; 3])),
        ("predicted_purchases", float(&[None; 3])),
        ("total_error", float(&[None; 3])),
        ("mae", float(&[None; 3])),
        ("rmse", float(&[None; 3])),
        ("calibration_log_likelihood", float(&[None; 3])),
        ("selected", flags(&[true, false, false])),
        ("status", text(&[Some("off"); 3])),
        ("reason", text(&[Some(off); 3])),
        ("selection_reason", text(&[Some(reason), None, None])),
    ])
}

fn fixture_tables() -> Tables {
    let mut tables = Tables::new();
    tables.insert("kpi_monthly".into(), kpi_monthly());
    tables.insert("cohort_retention".into(), cohort_retention());
    tables.insert("rfm".into(), rfm());
    tables.insert("clv".into(), clv());
    tables.insert("clv_simple".into(), clv_simple());
    tables.insert("share_of_wallet".into(), share_of_wallet());
    tables.insert("lttv_curve".into(), lttv_curve());
    tables.insert("loyalty_program".into(), loyalty_program());
    tables.insert("loyalty_types".into(), loyalty_types());
    tables.insert("customer_summary".into(), customer_summary());
    tables.insert("clv_backtest".into(), clv_backtest());
    tables.insert("clv_backtest_calibration".into(), clv_backtest_calibration());
    tables.insert("clv_segments".into(), clv_segments());
    tables
}

/// The fixture without rows: a run over inputs without data.
fn empty_tables() -> Tables {
    fixture_tables().into_iter().map(|(name, batches)| (name, vec![batches[0].slice(0, 0)])).collect()
}

/// A run manifest with fixed ids and times; the wallet input was absent.
fn fixture_manifest() -> Manifest {
    let source = |status: &str, read: u64, quarantined: u64| {
        json!({"url": "file:///data/raw", "status": status, "files": [], "rows_read": read,
               "rows_loaded": read - quarantined, "rows_quarantined": quarantined})
    };
    serde_json::from_value(json!({
        "pipeline": "loyalty",
        "pipeline_file": "pipelines/loyalty.yaml",
        "fidelis_version": "0.1.0",
        "run_id": "20240315T020000000Z-4242",
        "as_of": AS_OF,
        "started_at": "2024-03-15T02:00:00.000Z",
        "finished_at": "2024-03-15T02:00:09.500Z",
        "parameters": {"clv_horizon_months": 12, "lttv_value_moment": "second_purchase", "currency": "EUR"},
        "sources": {
            "transactions": source("loaded", 1_250, 3),
            "customers": source("loaded", 13, 0),
            "wallet": source("absent", 0, 0)
        },
        "metrics_without_data": ["share_of_wallet from the wallet input"],
        "warnings": ["source `transactions`: 3 rows quarantined"]
    }))
    .expect("a manifest")
}

/// The shipped pipeline.
fn shipped() -> Pipeline {
    fidelis::config::load(&repo().join("pipelines/loyalty.yaml")).expect("the shipped pipeline loads")
}

/// The shipped pipeline's parameters for a run as of the fixture's day, with `set`.
fn params(set: &[(&str, &str)]) -> IndexMap<String, ParamValue> {
    fidelis::plan::bind(&shipped(), &overrides(AS_OF, set)).expect("the parameters bind").params
}

/// The tables the shipped reports declare, as the shipped pipeline computes them from
/// `marts` (the fixture's tables): its report stages run by DataFusion in pipeline
/// order (each registered for the next ones, as in a run). A table of the fixture left
/// out of `marts` stands for a skipped stage: the report stages reading it are skipped,
/// as a run skips them.
async fn report_tables(marts: &Tables) -> Tables {
    let pipeline = shipped();
    let params = params(&[]);
    let spill = tempfile::tempdir().expect("a spill folder");
    let results = Results::new(MemoryBudget::resolve(None), spill.path(), 1).expect("results");
    let ctx = fidelis::run::session_on(Arc::clone(results.runtime()), &results.budget());
    for (name, batches) in marts {
        let table = MemTable::try_new(batches[0].schema(), vec![batches.to_vec()]).expect("a table");
        ctx.register_table(name.as_str(), Arc::new(table)).expect("registered");
    }
    let declared: Vec<&String> = pipeline.reports.iter().flat_map(|r| &r.tables).collect();
    let fixture: Vec<String> = fixture_tables().into_keys().collect();
    let mut wanted: Vec<&str> = declared.iter().map(|t| t.as_str()).collect();
    let mut index = 0;
    while let Some(&name) = wanted.get(index) {
        index += 1;
        if let Some(stage) = pipeline.stage(name).filter(|_| !fixture.iter().any(|f| f == name)) {
            for dependency in &stage.depends_on {
                if !wanted.contains(&dependency.as_str()) {
                    wanted.push(dependency);
                }
            }
        }
    }
    let mut computed = Tables::new();
    let to_run = pipeline.stages.iter().filter(|s| wanted.contains(&s.name.as_str()) && !fixture.contains(&s.name));
    for stage in to_run {
        if !stage.depends_on.iter().all(|d| marts.contains_key(d) || computed.contains_key(d)) {
            continue;
        }
        let executed = fidelis::stages::execute(&ctx.state(), stage, &params, &results).await.expect("the stage runs");
        let stored = Arc::new(executed.result);
        ctx.register_table(stage.name.as_str(), stored.table()).expect("registered");
        let mut batches: Vec<_> = stored.batches().try_collect().await.expect("the stage's rows");
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(Arc::clone(&stored.schema)));
        }
        computed.insert(stage.name.clone(), batches);
    }
    declared
        .into_iter()
        .filter_map(|name| Some((name.clone(), computed.get(name).or_else(|| marts.get(name))?.clone())))
        .collect()
}

/// Renders the shipped reports over `tables` with the shipped pipeline's parameters.
fn render_with(
    tables: &Tables,
    manifest: &Manifest,
    params: &IndexMap<String, ParamValue>,
) -> fidelis::Result<Vec<RenderedFile>> {
    let pipeline = shipped();
    render(&ReportRequest {
        params,
        manifest,
        tables,
        templates_dir: &pipeline.templates_dir,
        reports: &pipeline.reports,
    })
}

/// The rendered file at `path`, as text.
fn file<'a>(files: &'a [RenderedFile], path: &str) -> &'a str {
    let found = files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("no {path} among the reports"));
    std::str::from_utf8(&found.bytes).expect("UTF-8")
}

/// The shipped reports over the fixture, in English and euros.
async fn fixture_reports() -> Vec<RenderedFile> {
    let tables = report_tables(&fixture_tables()).await;
    render_with(&tables, &fixture_manifest(), &params(&[])).expect("the fixture renders")
}

// ---------------------------------------------------------------------------
// The HTML's element tree, for a structural snapshot
// ---------------------------------------------------------------------------

/// An element: tag with its id, class and lang, and its children.
struct Element {
    label: String,
    children: Vec<Node>,
}

enum Node {
    Element(Element),
    Text(String),
}

/// Elements that have no end tag.
const VOID: [&str; 6] = ["meta", "link", "br", "hr", "img", "input"];

/// The value of attribute `name` in a tag's attribute text.
fn attribute(attributes: &str, name: &str) -> Option<String> {
    let start = attributes.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = attributes[start..].find('"')? + start;
    Some(attributes[start..end].to_string())
}

/// Parses the report's HTML (which fidelis writes well-formed) into elements. An
/// `<svg>` becomes one element labelled with its title and viewBox, and `<style>`
/// loses its content: the charts and the stylesheet have their own tests.
fn parse_html(html: &str) -> Vec<Node> {
    let mut stack: Vec<Element> = vec![Element { label: String::new(), children: Vec::new() }];
    let mut rest = html;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            push_text(&mut stack, rest);
            break;
        };
        push_text(&mut stack, &rest[..open]);
        rest = &rest[open..];
        let close = rest.find('>').expect("a closed tag");
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let element = stack.pop().expect("an open element");
            assert!(element.label.starts_with(name), "</{name}> closes {}", element.label);
            stack.last_mut().expect("a parent").children.push(Node::Element(element));
            continue;
        }
        let (name, attributes) = tag.split_once(' ').map_or((tag, String::new()), |(n, a)| (n, format!(" {a}")));
        let mut label = name.to_string();
        for (key, mark) in [("id", "#"), ("class", "."), ("lang", " lang=")] {
            if let Some(value) = attribute(&attributes, key) {
                label.push_str(mark);
                label.push_str(&value.replace(' ', "."));
            }
        }
        if name == "svg" {
            let end = rest.find("</svg>").expect("a closed svg");
            let title = rest.find("<title>").map(|t| &rest[t + 7..t + 7 + rest[t + 7..].find('<').unwrap_or(0)]);
            let view_box = attribute(&attributes, "viewBox").unwrap_or_default();
            let svg = format!("svg viewBox=\"{view_box}\" title={:?}", title.unwrap_or(""));
            stack.last_mut().expect("a parent").children.push(Node::Element(Element { label: svg, children: vec![] }));
            rest = &rest[end + 6..];
        } else if name == "style" {
            let end = rest.find("</style>").expect("a closed style");
            stack.last_mut().expect("a parent").children.push(Node::Element(Element { label, children: vec![] }));
            rest = &rest[end + 8..];
        } else if VOID.contains(&name) || tag.ends_with('/') {
            stack.last_mut().expect("a parent").children.push(Node::Element(Element { label, children: vec![] }));
        } else {
            stack.push(Element { label, children: Vec::new() });
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements: {:?}", stack.iter().map(|e| &e.label).collect::<Vec<_>>());
    stack.pop().map(|root| root.children).unwrap_or_default()
}

fn push_text(stack: &mut [Element], text: &str) {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !collapsed.is_empty() {
        stack.last_mut().expect("a parent").children.push(Node::Text(collapsed));
    }
}

/// One line per element, indented by depth; an element holding only text shows it
/// on its own line.
fn outline(nodes: &[Node], depth: usize, out: &mut String) {
    for node in nodes {
        let indent = "  ".repeat(depth);
        match node {
            Node::Text(text) => out.push_str(&format!("{indent}{text:?}\n")),
            Node::Element(e) => match e.children.as_slice() {
                [Node::Text(text)] => out.push_str(&format!("{indent}{} {text:?}\n", e.label)),
                children => {
                    out.push_str(&format!("{indent}{}\n", e.label));
                    outline(children, depth + 1, out);
                }
            },
        }
    }
}

fn html_outline(html: &str) -> String {
    let mut out = String::new();
    outline(&parse_html(html), 0, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Tests on the fixture
// ---------------------------------------------------------------------------

/// Every table the reports declare, as text.
fn tables_text(tables: &Tables) -> String {
    tables
        .iter()
        .map(|(name, batches)| format!("{name}\n{}\n", pretty_format_batches(batches).expect("printable")))
        .collect()
}

#[tokio::test]
async fn report_tables_of_the_fixture() {
    let tables = report_tables(&fixture_tables()).await;
    insta::assert_snapshot!(tables_text(&tables));
}

#[tokio::test]
async fn markdown_report_of_the_fixture() {
    let files = fixture_reports().await;
    assert_eq!(files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["report.html", "report.md"]);
    insta::assert_snapshot!(file(&files, "report.md"));
}

#[tokio::test]
async fn html_report_structure_of_the_fixture() {
    let files = fixture_reports().await;
    let html = file(&files, "report.html");
    insta::assert_snapshot!(html_outline(html));
}

#[tokio::test]
async fn the_html_report_is_one_offline_document() {
    let files = fixture_reports().await;
    let html = file(&files, "report.html");
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
    for reference in ["<script", "<link", "src=", "href=", "url(", "@import", "@font-face"] {
        assert!(!html.contains(reference), "the report must not reference `{reference}`");
    }
    assert_eq!(html.matches("<svg ").count(), 10, "ten charts");
}

#[tokio::test]
async fn markup_in_names_is_text_in_both_reports() {
    let files = fixture_reports().await;
    let html = file(&files, "report.html");
    let markdown = file(&files, "report.md");
    assert!(!html.contains(SCRIPT_SEGMENT) && !markdown.contains(SCRIPT_SEGMENT));
    // The segments table and the chart labels show the name as text.
    assert!(html.contains("<th scope=\"row\">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</th>"), "{html}");
    assert!(html.contains(">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</text>"));
    assert!(markdown.contains("| \\<script\\>alert(\"x\")\\</script\\> | 1 |"), "{markdown}");
}

#[tokio::test]
async fn a_run_without_data_says_no_data_instead_of_failing() {
    let tables = report_tables(&empty_tables()).await;
    let files = render_with(&tables, &fixture_manifest(), &params(&[])).expect("renders without any row");
    let html = file(&files, "report.html");
    let markdown = file(&files, "report.md");
    // Without kpi_monthly rows the reported month is as_of's, which is not complete.
    assert!(html.contains("<h1>March 2024</h1>"), "{html}");
    assert!(html.contains("March 2024 is not complete yet"));
    // Ten tiles, each with a value and two comparisons, all without data.
    // Eleven with the CLV section's predicted CLV of the base.
    assert_eq!(html.matches("<p class=\"tile-value\">no data</p>").count(), 11);
    assert_eq!(html.matches("</dt><dd>no data</dd></div>").count(), 20);
    assert_eq!(html.matches("font-style=\"italic\">no data</text>").count(), 9, "every chart says no data");
    assert!(markdown.contains("| Net revenue | no data | no data | no data |"), "{markdown}");
    assert!(markdown.contains("| no data | | | | | | |"), "an empty segments table says so");
}

/// The "How good is the CLV model" section, from clv_backtest, report_clv_calibration
/// (the selected model's buckets, in order) and clv_segments: the same numbers in both
/// reports.
#[tokio::test]
async fn the_clv_model_section_shows_the_backtest_the_calibration_plot_and_the_interval() {
    let files = fixture_reports().await;
    let markdown = file(&files, "report.md");
    let section = markdown.split("## How good is the CLV model").nth(1).expect("the section");
    let section = section.split("\n## ").next().expect("up to the next section");
    insta::assert_snapshot!(section, @r"
    Predicted CLV of the base at Mar 14, 2024: €12,346 (p10–p90: €11,020 – €13,890).

    Each purchase model is fitted on the history up to September 14, 2023 and predicts the purchase days of those 10 customers up to March 14, 2024. Model used: **MBG/NBD** — clv\_model: auto: the lowest holdout MAE of 2 backtested models (0.85).

    | Model | Status | Actual purchases | Predicted purchases | Total error | MAE | RMSE |
    |---|---|---:|---:|---:|---:|---:|
    | BG/NBD | backtested | 24 | 22.5 | -6.2% | 0.9000 | 1.2500 |
    | MBG/NBD (used) | backtested | 24 | 23.1 | -3.7% | 0.8500 | 1.2000 |
    | Pareto/NBD | not fitted: the likelihood did not converge in 200 iterations | 24 | no data | no data | no data | no data |

    Mean purchase days in the holdout by repeat purchase days in the calibration period (MBG/NBD):

    | Calibration purchase days | Customers | Actual | Predicted |
    |---|---:|---:|---:|
    | 0 | 5 | 0.40 | 0.50 |
    | 1 | 3 | 1.00 | 0.90 |
    | 7+ | 2 | 4.50 | 4.10 |
    ");
    let html = file(&files, "report.html");
    assert!(html.contains("<p class=\"tile-value\">€12,346</p>"), "{html}");
    assert!(html.contains("<p class=\"tile-note\">p10–p90: €11,020 – €13,890</p>"));
    assert!(html.contains(
        "<tr class=\"selected\"><th scope=\"row\">MBG/NBD (used)</th><td>backtested</td><td class=\"num\">24</td>\
         <td class=\"num\">23.1</td><td class=\"num\">-3.7%</td><td class=\"num\">0.8500</td><td class=\"num\">1.2000</td></tr>"
    ));
    assert!(
        html.contains("<title>Mean purchase days in the holdout by purchase days in the calibration period</title>")
    );
}

/// With `clv_holdout_days: 0` the section says the backtest is off and which model is
/// used, instead of empty tables; the interval is still shown.
#[tokio::test]
async fn with_the_backtest_off_the_clv_model_section_says_so() {
    let mut marts = fixture_tables();
    marts.insert("clv_backtest".into(), clv_backtest_off());
    marts.insert("clv_backtest_calibration".into(), vec![clv_backtest_calibration()[0].slice(0, 0)]);
    let tables = report_tables(&marts).await;
    assert_eq!(tables["report_clv_calibration"].iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    let files = render_with(&tables, &fixture_manifest(), &params(&[])).expect("renders");
    let markdown = file(&files, "report.md");
    let section = markdown.split("## How good is the CLV model").nth(1).expect("the section");
    let section = section.split("\n## ").next().expect("up to the next section");
    insta::assert_snapshot!(section, @r"
    Predicted CLV of the base at Mar 14, 2024: €12,346 (p10–p90: €11,020 – €13,890).

    The backtest is off (clv_holdout_days = 0): the purchase models are not checked against a holdout period.
    Model used: **BG/NBD** — clv\_model: auto with the backtest off (clv\_holdout\_days = 0): bg\_nbd, the default model.
    ");
    let html = file(&files, "report.html");
    assert!(html.contains(
        "<p class=\"notice\">The backtest is off (clv_holdout_days = 0): the purchase models are not checked against a holdout period.</p>"
    ));
    assert!(!html.contains("Holdout backtest of the purchase models"), "no backtest table");
    assert_eq!(html.matches("<svg ").count(), 9, "no calibration plot");
}

/// With `on_error: warn` a model that cannot be fitted skips clv, and the report marts
/// reading it: the report shows the rest.
#[tokio::test]
async fn the_clv_tables_may_be_skipped() {
    let mut marts = fixture_tables();
    marts.shift_remove("clv");
    let tables = report_tables(&marts).await;
    assert!(!tables.contains_key("report_clv_headline") && !tables.contains_key("report_clv_distribution"));
    let files = render_with(&tables, &fixture_manifest(), &params(&[])).expect("renders without clv");
    let markdown = file(&files, "report.md");
    assert!(
        markdown.contains("| Predicted CLV of the base (at Mar 14, 2024) | no data | no data | no data |"),
        "{markdown}"
    );
    assert!(markdown.contains("| Champions | 2 | 16.7% | €1,650 | 41.8% | no data | €1,500.00 |"), "{markdown}");
    assert!(
        file(&files, "report.html")
            .contains("<title>Predicted CLV per customer by RFM segment, next 12 months</title>")
    );
}

/// A quantile interpolates between order statistics (Hyndman & Fan type 7, as R and
/// NumPy): of 1, 2, 3, 4, 5 (in any order) p10 is 1.4; one value is every quantile; a
/// value that is not a finite number is left out.
#[tokio::test]
async fn clv_quantiles_interpolate_between_order_statistics() {
    let values: [(&str, &str, f64); 7] = [
        ("A1", "A", 4.0),
        ("A2", "A", 1.0),
        ("A3", "A", 5.0),
        ("A4", "A", 2.0),
        ("A5", "A", 3.0),
        ("B1", "B", 7.0),
        ("B2", "B", f64::NAN),
    ];
    let mut marts = fixture_tables();
    marts.insert(
        "rfm".into(),
        batch(vec![
            ("customer_id", text(&values.iter().map(|v| Some(v.0)).collect::<Vec<_>>())),
            ("monetary", money(&values.iter().map(|_| Some(10.0)).collect::<Vec<_>>())),
            ("segment", text(&values.iter().map(|v| Some(v.1)).collect::<Vec<_>>())),
        ]),
    );
    marts.insert(
        "clv".into(),
        batch(vec![
            ("customer_id", text(&values.iter().map(|v| Some(v.0)).collect::<Vec<_>>())),
            ("predicted_clv", float(&values.iter().map(|v| Some(v.2)).collect::<Vec<_>>())),
        ]),
    );
    let tables = report_tables(&marts).await;
    insta::assert_snapshot!(pretty_format_batches(&tables["report_clv_distribution"]).expect("printable"), @r"
    +---------+-----------+-----------------------+-----+-----+--------+-----+-----+
    | segment | customers | average_predicted_clv | p10 | p25 | median | p75 | p90 |
    +---------+-----------+-----------------------+-----+-----+--------+-----+-----+
    | A       | 5         | 3.0                   | 1.4 | 2.0 | 3.0    | 4.0 | 4.6 |
    | B       | 1         | 7.0                   | 7.0 | 7.0 | 7.0    | 7.0 | 7.0 |
    +---------+-----------+-----------------------+-----+-----+--------+-----+-----+
    ");
}

#[tokio::test]
async fn locale_and_currency_format_numbers_months_and_money() {
    let tables = report_tables(&fixture_tables()).await;
    let params = params(&[("locale", "it-IT"), ("currency", "USD")]);
    let files = render_with(&tables, &fixture_manifest(), &params).expect("renders in Italian");
    let markdown = file(&files, "report.md").replace('\u{a0}', " ");
    assert!(markdown.starts_with("# loyalty · Loyalty KPI report · febbraio 2024\n"), "{markdown}");
    assert!(markdown.contains("| Net revenue | 52.500 USD | ▲ +5,0% (better) | ▲ +25,0% (better) |"), "{markdown}");
    assert!(markdown.contains("| Churn rate | 8,0% | ▲ +1,0 p.p. (worse) | ▼ -1,0 p.p. (better) |"), "{markdown}");
    assert!(markdown.contains("- As of: 14 marzo 2024"), "{markdown}");
    let html = file(&files, "report.html");
    assert!(html.contains("<html lang=\"it-IT\">"));
}

/// `params` of the shipped pipeline with `name` set to `value`, which the pipeline's
/// `allowed` values would refuse: the renderer checks too.
fn with_param(name: &str, value: &str) -> IndexMap<String, ParamValue> {
    let mut params = params(&[]);
    params.insert(name.into(), ParamValue::String(value.into()));
    params
}

#[test]
fn bad_locale_and_currency_are_usage_errors() {
    let tables = Tables::new();
    let error =
        render_with(&tables, &fixture_manifest(), &with_param("locale", "xx-XX")).expect_err("an unknown locale");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    assert!(error.to_string().contains("parameter `locale`: unknown locale \"xx-XX\""), "{error}");
    let error =
        render_with(&tables, &fixture_manifest(), &with_param("currency", "euro")).expect_err("not an ISO code");
    assert!(error.to_string().contains("parameter `currency`: \"euro\" is not an ISO 4217 code"), "{error}");
}

/// Renders `template` (written as `templates/t.html.tera` with the shipped layout's
/// neighbours absent) into `t.html`, reading `report_segments`, for template errors.
fn render_one(ws: &Workspace, template: &str) -> fidelis::Result<Vec<RenderedFile>> {
    ws.write("templates/t.html.tera", template);
    let reports =
        [Report { template: "t.html.tera".into(), path: "t.html".into(), tables: vec!["report_segments".into()] }];
    render(&ReportRequest {
        params: &params(&[]),
        manifest: &fixture_manifest(),
        tables: &Tables::new(),
        templates_dir: &ws.path("templates"),
        reports: &reports,
    })
}

#[test]
fn template_errors_name_the_template_and_carry_teras_message() {
    let ws = Workspace::new();
    let error = render_one(&ws, "<p>{{ params.margni }}</p>").expect_err("an unknown variable");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    insta::assert_snapshot!("unknown_variable", ws.redact(&error.to_string()));
    let error = render_one(&ws, "<p>{{ params.margin | currency(decimal=0) }}</p>").expect_err("a bad argument");
    insta::assert_snapshot!("bad_filter_argument", ws.redact(&error.to_string()));
    let error = render_one(&ws, "<p>{% if params.margin %}</p>").expect_err("a syntax error");
    insta::assert_snapshot!("syntax_error", ws.redact(&error.to_string()));
}

#[test]
fn chart_functions_check_their_arguments() {
    let ws = Workspace::new();
    let cases = [
        (
            "{{ bar_chart(rows=tables.report_segments, category=\"segment\", serie=[\"x\"], title=\"t\") }}",
            "bar_chart: unknown argument(s) serie; accepted: rows, title, format, decimals, category, series, names, \
             value_label",
        ),
        (
            "{{ histogram(rows=params.margin, from=\"a\", to=\"b\", count=\"c\", title=\"t\") }}",
            "histogram: argument `rows` must be a table's rows",
        ),
        (
            "{{ line_chart(rows=tables.report_segments, x=\"period\", series=[\"crr\"], names=[], title=\"t\") }}",
            "line_chart: `series` has 1 columns but `names` 0 names",
        ),
        (
            "{{ line_chart(rows=tables.report_segments, x=\"period\", series=[], names=[], title=\"t\", format=\"money\") }}",
            "line_chart: argument `format` must be \"percent\", \"number\" or \"currency\", got \"money\"",
        ),
    ];
    for (template, expected) in cases {
        let error = render_one(&ws, template).expect_err(template).to_string();
        assert!(error.contains(expected), "{template}: {error}");
    }
}

#[test]
fn a_custom_template_sees_tables_parameters_and_the_run_and_is_escaped_for_its_output() {
    let ws = Workspace::new();
    let files = render_one(
        &ws,
        "{{ params.as_of }} {{ tables.report_segments | length }} {{ run.pipeline }} <{{ params.locale }}>",
    )
    .expect("renders");
    assert_eq!(file(&files, "t.html"), "2024-03-14 0 loyalty <en-US>");
    ws.write("templates/t.txt.tera", "{{ report.currency_symbol }} {{ run.warnings | length }} <{{ run.run_id }}>");
    let reports = [Report { template: "t.txt.tera".into(), path: "notes.txt".into(), tables: Vec::new() }];
    let files = render(&ReportRequest {
        params: &params(&[("currency", "GBP")]),
        manifest: &fixture_manifest(),
        tables: &Tables::new(),
        templates_dir: &ws.path("templates"),
        reports: &reports,
    })
    .expect("renders");
    assert_eq!(file(&files, "notes.txt"), "£ 1 <20240315T020000000Z-4242>");
}

#[test]
fn validate_names_the_tables_a_template_reads_without_declaring_them() {
    let ws = Workspace::new();
    ws.write("templates/t.html.tera", "{% include \"part.tera\" %}{{ tables.report_segments | length }}");
    ws.write("templates/part.tera", "{% for t in tables.report_trends %}{{ tables.report_cohorts }}{% endfor %}");
    let reports =
        [Report { template: "t.html.tera".into(), path: "t.html".into(), tables: vec!["report_segments".into()] }];
    let error = fidelis::report::check(&reports, &ws.path("templates"), &params(&[]), Path::new("pipelines/p.yaml"))
        .expect_err("undeclared tables");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::CONFIG);
    insta::assert_snapshot!(ws.redact(&error.to_string()));
    let error =
        fidelis::report::check(&reports, &ws.path("templates"), &with_param("locale", "xx"), Path::new("p.yaml"))
            .expect_err("a bad locale");
    assert!(error.to_string().contains("parameter `locale`: unknown locale \"xx\""), "{error}");
    ws.write("templates/part.tera", "");
    fidelis::report::check(&reports, &ws.path("templates"), &params(&[]), Path::new("p.yaml")).expect("declared");
}

#[test]
fn report_tables_must_be_published_stages_and_paths_stay_in_the_report_folder() {
    let ws = Workspace::new();
    ws.write("templates/t.tera", "");
    let pipeline = ws.write(
        "p.yaml",
        r#"name: test
templates_dir: templates
sources:
  orders: {url: orders.csv, columns: {id: integer}}
stages:
  counted: {query: SELECT COUNT(*) AS n FROM orders}
  kept: {query: SELECT * FROM counted}
outputs: {root: out, tables: [counted]}
reports:
  - {template: t.tera, path: ../report.html, tables: [counted, kept, nowhere]}
"#,
    );
    let error = fidelis::config::load(&pipeline).expect_err("three problems");
    insta::assert_snapshot!(ws.redact(&error.to_string()));
}

/// The SQL blocks of docs/report-context.md marked `reproduces` run over the published
/// tables of the sample run: each returns the figure the report table holds.
#[tokio::test(flavor = "multi_thread")]
async fn the_documented_sql_reproduces_the_report_figures() {
    let ws = Workspace::new();
    let as_of = "2026-11-21";
    let output = ws.path("out");
    let input = repo().join("data/sample").display().to_string();
    run(&repo().join("pipelines/loyalty.yaml"), as_of, &[("input", &input), ("output", &output.display().to_string())])
        .await
        .expect("the sample run");
    let docs = std::fs::read_to_string(repo().join("docs/report-context.md")).expect("the docs");
    let blocks: Vec<&str> = docs.split("```sql reproduces\n").skip(1).filter_map(|b| b.split("```").next()).collect();
    assert_eq!(blocks.len(), 2, "two documented figures");
    let checks = [
        ("SELECT value AS figure FROM report_headlines WHERE figure = 'share_of_wallet'", ["report_headlines"]),
        (
            "SELECT median AS figure FROM report_clv_distribution WHERE segment = 'Champions'",
            ["report_clv_distribution"],
        ),
    ];
    for (sql, (expected, tables)) in blocks.iter().zip(checks) {
        let mut read = vec!["kpi_monthly", "share_of_wallet", "rfm", "clv"];
        read.extend(tables);
        let figure = |batches: Vec<RecordBatch>| pretty_format_batches(&batches).expect("printable").to_string();
        let documented = figure(query(&output, as_of, &read, sql).await);
        assert_eq!(documented, figure(query(&output, as_of, &read, expected).await), "{sql}");
        assert!(!documented.contains("|              |"), "the figure has a value: {documented}");
    }
}

#[tokio::test]
async fn fidelis_report_without_a_published_run_is_a_data_error() {
    let ws = Workspace::new();
    let output = ws.path("out").display().to_string();
    let error = fidelis::run::report(&shipped(), &overrides(AS_OF, &[("output", &output)]))
        .await
        .expect_err("nothing is published");
    assert_eq!(error.exit_code(), fidelis::error::exit_code::DATA);
    assert!(error.to_string().contains("no run is published for as_of 2024-03-14 under file://"), "{error}");
    assert!(error.to_string().contains("fidelis run PIPELINE --as-of 2024-03-14"), "{error}");
}

// ---------------------------------------------------------------------------
// The sample report in headless Chromium
// ---------------------------------------------------------------------------

/// The Chromium binary; `CHROMIUM` overrides the Debian path `scripts/test` installs.
fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// How long any one step in the browser may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// Headless Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: requests on fd 3, replies and events on fd 4, each
/// message JSON ending in a NUL byte). No port, no network, no extra crate.
struct Browser {
    child: Child,
    requests: std::process::ChildStdin,
    replies: Receiver<Value>,
    next_id: u64,
    /// Every event received so far, in order.
    events: Vec<Value>,
    stderr: PathBuf,
}

impl Browser {
    fn start(profile: &Path, stderr: PathBuf) -> Browser {
        let chromium = chromium_path();
        assert!(
            chromium.exists(),
            "{} not found: install Chromium (`apt-get install chromium`, as scripts/test does) or set CHROMIUM",
            chromium.display()
        );
        // The shell maps the pipes to the descriptors Chromium expects, then gets out of the way.
        let script = format!(
            "exec \"$0\" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
             --disable-component-update --disable-sync --hide-scrollbars --user-data-dir='{}' \
             --remote-debugging-pipe about:blank 3<&0 4>&1 0</dev/null 1>/dev/null",
            profile.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .arg(&chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("a log file"))
            .spawn()
            .expect("start chromium");
        let requests = child.stdin.take().expect("a request pipe");
        let mut output = child.stdout.take().expect("a reply pipe");
        let (send, replies) = channel();
        std::thread::spawn(move || {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 65_536];
            while let Ok(n) = output.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
                while let Some(end) = buffer.iter().position(|b| *b == 0) {
                    let message: Vec<u8> = buffer.drain(..=end).collect();
                    let Ok(value) = serde_json::from_slice::<Value>(&message[..end]) else { continue };
                    if send.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        Browser { child, requests, replies, next_id: 0, events: Vec::new(), stderr }
    }

    /// The next message, failing the test with Chromium's log after the timeout.
    fn receive(&mut self, deadline: Instant) -> Value {
        match self.replies.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => panic!("Chromium did not answer in time; its log:\n{}", self.log()),
            Err(RecvTimeoutError::Disconnected) => panic!("Chromium exited; its log:\n{}", self.log()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends a command (to a page when `session` is given) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.requests.write_all(&bytes).and_then(|()| self.requests.flush()).expect("send to chromium");
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        loop {
            let reply = self.receive(deadline);
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
            self.events.push(reply);
        }
    }

    /// Waits for the event `method` (which may have arrived already).
    fn wait_for(&mut self, method: &str) {
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        while !self.events.iter().any(|e| e["method"] == json!(method)) {
            let event = self.receive(deadline);
            self.events.push(event);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decodes standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|group| {
            let bits = group.iter().enumerate().fold(0u32, |acc, (i, d)| acc | u32::from(*d) << (18 - 6 * i));
            let bytes = bits.to_be_bytes();
            bytes[1..group.len()].to_vec()
        })
        .collect()
}

/// What the page says about itself once loaded: its size, its scripts, and every SVG's
/// rendered box and number of drawn shapes.
const INSPECT: &str = r#"JSON.stringify({
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
  scripts: document.scripts.length,
  svgs: [...document.querySelectorAll("svg")].map(s => {
    const box = s.getBoundingClientRect();
    return {
      title: (s.querySelector("title") || {}).textContent,
      width: box.width,
      height: box.height,
      shapes: s.querySelectorAll("rect, path, line, circle").length
    };
  })
})"#;

/// Runs the shipped pipeline on the bundled sample data, reads the published tables
/// back, renders the reports, and opens the HTML in headless Chromium: the page loads
/// without errors or requests beyond itself, and each of the nine charts is drawn at
/// a plausible size. With `FIDELIS_UPDATE_SCREENSHOT=1` the screenshot replaces
/// docs/report.png (the README shows it).
#[tokio::test(flavor = "multi_thread")]
async fn sample_report_renders_in_headless_chromium() {
    let ws = Workspace::new();
    let as_of = "2026-11-21";
    let output = ws.path("out").display().to_string();
    let input = repo().join("data/sample").display().to_string();
    let pipeline_file = repo().join("pipelines/loyalty.yaml");
    run(&pipeline_file, as_of, &[("input", &input), ("output", &output)]).await.expect("the sample run");
    let pipeline = fidelis::config::load(&pipeline_file).expect("the pipeline loads");
    let root = fidelis::storage::Storage::new().resolve(&output).expect("the output root");
    let day = as_of.parse().expect("a date");
    let manifest = fidelis::publish::published::read(&root, day)
        .await
        .expect("the partition reads")
        .expect("the run published its manifest");
    let tables = read_tables(&pipeline.reports, |table| fidelis::publish::layout::table_file(&root, table, day))
        .await
        .expect("read");
    let declared: Vec<&String> = pipeline.reports[0].tables.iter().collect();
    assert_eq!(tables.keys().collect::<Vec<_>>(), declared, "exactly the tables the reports declare are read back");
    let params = fidelis::plan::bind(&pipeline, &overrides(as_of, &[])).expect("the parameters bind").params;
    let files = render(&ReportRequest {
        params: &params,
        manifest: &manifest,
        tables: &tables,
        templates_dir: &pipeline.templates_dir,
        reports: &pipeline.reports,
    })
    .expect("the sample renders");
    for path in ["report.html", "report.md"] {
        let published =
            std::fs::read_to_string(ws.path(&format!("out/reports/as_of={as_of}/{path}"))).expect("published");
        assert_eq!(file(&files, path), published, "rendering the published tables again gives the run's {path}");
    }
    let html_path = ws.write("report.html", file(&files, "report.html"));
    let markdown = file(&files, "report.md");
    assert!(markdown.contains("# loyalty · Loyalty KPI report · October 2026"), "{markdown}");
    assert!(!markdown.contains("Predicted CLV of the base (at Nov 21, 2026) | no data"), "the sample has CLV");

    let mut browser = Browser::start(&ws.path("profile"), ws.path("chromium.log"));
    let target = browser.call(None, "Target.createTarget", json!({"url": "about:blank"}));
    let attached =
        browser.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
    let session = attached["sessionId"].as_str().expect("a session").to_string();
    let page = Some(session.as_str());
    for domain in ["Page.enable", "Runtime.enable", "Log.enable", "Network.enable"] {
        browser.call(page, domain, json!({}));
    }
    let (width, viewport_height) = (1100, 900);
    browser.call(
        page,
        "Emulation.setDeviceMetricsOverride",
        json!({"width": width, "height": viewport_height, "deviceScaleFactor": 1, "mobile": false}),
    );
    let url = format!("file://{}", html_path.display());
    let navigated = browser.call(page, "Page.navigate", json!({"url": url}));
    assert!(navigated.get("errorText").is_none(), "navigation failed: {navigated}");
    browser.wait_for("Page.loadEventFired");

    let inspected = browser.call(page, "Runtime.evaluate", json!({"expression": INSPECT, "returnByValue": true}));
    let page_facts: Value =
        serde_json::from_str(inspected["result"]["value"].as_str().expect("a JSON string")).expect("JSON");
    let height = page_facts["height"].as_u64().expect("a height");
    let screenshot = browser.call(
        page,
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true,
               "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}),
    );
    let png = base64_decode(screenshot["data"].as_str().expect("PNG data"));
    browser.call(None, "Browser.close", json!({}));

    // Loaded without errors: no exception, no error logged, nothing fetched but the file.
    let problems: Vec<&Value> = browser
        .events
        .iter()
        .filter(|e| {
            let method = e["method"].as_str().unwrap_or_default();
            method == "Runtime.exceptionThrown"
                || method == "Network.loadingFailed"
                || (method == "Log.entryAdded" && e["params"]["entry"]["level"] == json!("error"))
                || (method == "Runtime.consoleAPICalled" && e["params"]["type"] == json!("error"))
        })
        .collect();
    assert!(problems.is_empty(), "the page reported problems: {problems:#?}");
    let requested: Vec<&str> = browser
        .events
        .iter()
        .filter(|e| e["method"] == json!("Network.requestWillBeSent"))
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .collect();
    assert_eq!(requested, [url.as_str()], "the report loads nothing but itself");

    // The charts rendered: ten SVGs about as wide as the page's column, each with
    // shapes drawn in it.
    assert_eq!(page_facts["scripts"], json!(0));
    let svgs = page_facts["svgs"].as_array().expect("svgs");
    assert_eq!(svgs.len(), 10, "{page_facts:#}");
    for svg in svgs {
        let (w, h) = (svg["width"].as_f64().unwrap_or(0.0), svg["height"].as_f64().unwrap_or(0.0));
        assert!((700.0..=1000.0).contains(&w) && (100.0..=1500.0).contains(&h), "implausible size: {svg}");
        assert!(svg["shapes"].as_u64().unwrap_or(0) >= 5, "an empty chart: {svg}");
    }
    assert!(!svgs.iter().any(|s| s["title"].as_str().is_none()), "every chart has a title");

    // The screenshot is a PNG of the whole page (IHDR: width and height, big-endian).
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let dimension = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    assert_eq!((dimension(16), u64::from(dimension(20))), (width, height));
    assert!(png.len() > 100_000, "a suspiciously small screenshot: {} bytes", png.len());
    if std::env::var_os("FIDELIS_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(repo().join("docs/report.png"), &png).expect("write docs/report.png");
    }
}
