//! Properties that hold on any data: the whole pipeline runs on generated samples
//! (several seeds and sizes) and each invariant is a SQL query over the published
//! tables that must find no violations.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use fidelis::config::Format;
use fidelis::sample_data::{self, SampleSpec};
use fidelis::storage::Storage;

use crate::support::{Workspace, partition_file, repo, run};

/// (name, query counting violations)
const INVARIANTS: &[(&str, &str)] = &[
    (
        "E = retained + acquired",
        "SELECT COUNT(*) FROM kpi_monthly WHERE customers_end <> retained_customers + acquired_customers",
    ),
    (
        "acquired = new + reactivated",
        "SELECT COUNT(*) FROM kpi_monthly WHERE acquired_customers <> new_customers + reactivated_customers",
    ),
    ("reactivated >= 0", "SELECT COUNT(*) FROM kpi_monthly WHERE reactivated_customers < 0"),
    (
        "crr in [0, 1], churn = 1 - crr",
        "SELECT COUNT(*) FROM kpi_monthly WHERE crr < 0 OR crr > 1 OR abs(churn_rate - (1 - crr)) > 1e-12",
    ),
    (
        "S is the previous month's E",
        "SELECT COUNT(*) FROM kpi_monthly a JOIN kpi_monthly b ON b.period = a.period + INTERVAL '1 month' \
         WHERE b.customers_start <> a.customers_end",
    ),
    (
        "only the last month may be incomplete",
        "SELECT COUNT(*) FROM kpi_monthly WHERE NOT is_complete AND period <> (SELECT MAX(period) FROM kpi_monthly)",
    ),
    (
        "cohort sizes sum to the customer count",
        "SELECT (SELECT SUM(cohort_size) FROM (SELECT DISTINCT cohort_month, cohort_size FROM cohort_retention)) \
         - (SELECT COUNT(*) FROM customer_summary)",
    ),
    (
        "month 0 retains the whole cohort",
        "SELECT COUNT(*) FROM cohort_retention WHERE period_index = 0 AND retention_rate <> 1.0",
    ),
    ("retention in [0, 1]", "SELECT COUNT(*) FROM cohort_retention WHERE retention_rate < 0 OR retention_rate > 1"),
    (
        "new customers sum to the customer count",
        "SELECT SUM(new_customers) - (SELECT COUNT(*) FROM customer_summary) FROM kpi_monthly",
    ),
    (
        "frequency = purchase days - 1",
        "SELECT COUNT(*) FROM customer_summary WHERE frequency <> purchase_days - 1 OR orders < purchase_days",
    ),
    ("recency <= T", "SELECT COUNT(*) FROM customer_summary WHERE recency > \"T\" OR recency < 0"),
    (
        "scores in 1..5",
        "SELECT COUNT(*) FROM rfm WHERE r_score NOT BETWEEN 1 AND 5 OR f_score NOT BETWEEN 1 AND 5 OR m_score NOT BETWEEN 1 AND 5",
    ),
    ("every RFM customer has a segment", "SELECT COUNT(*) FROM rfm WHERE segment IS NULL"),
    (
        "RFM scores all customers (all history)",
        "SELECT (SELECT COUNT(*) FROM rfm) - (SELECT COUNT(*) FROM customer_summary)",
    ),
    (
        "some customer scores 5 on each axis",
        "SELECT 3 - (MAX(r_score) = 5)::INT - (MAX(f_score) = 5)::INT - (MAX(m_score) = 5)::INT FROM rfm",
    ),
    (
        "equal values get equal scores",
        "SELECT COUNT(*) FROM (SELECT frequency FROM rfm GROUP BY frequency HAVING COUNT(DISTINCT f_score) > 1)",
    ),
    ("shares in [0, 1]", "SELECT COUNT(*) FROM share_of_wallet WHERE share_of_wallet < 0 OR share_of_wallet > 1"),
    ("capped shares are at 1", "SELECT COUNT(*) FROM share_of_wallet WHERE capped AND share_of_wallet <> 1.0"),
    ("p_alive in [0, 1]", "SELECT COUNT(*) FROM clv WHERE p_alive < 0 OR p_alive > 1"),
    (
        "CLV predictions are non-negative",
        "SELECT COUNT(*) FROM clv WHERE predicted_clv < 0 OR expected_purchases < 0 OR expected_order_value <= 0",
    ),
    ("one clv row per customer", "SELECT (SELECT COUNT(*) FROM clv) - (SELECT COUNT(*) FROM customer_summary)"),
    (
        "LTTV counts are consistent",
        "SELECT COUNT(*) FROM lttv WHERE reached_value > customers OR share_within_30d > share_within_90d",
    ),
    (
        "the LTTV curve rises",
        "SELECT COUNT(*) FROM (SELECT reached_share - LAG(reached_share) OVER (ORDER BY days) AS d FROM lttv_curve) WHERE d < 0",
    ),
    (
        "one loyalty type per repeat customer",
        "SELECT (SELECT COUNT(*) FROM loyalty_types) - (SELECT COUNT(*) FROM customer_summary WHERE frequency >= 1)",
    ),
    (
        "loyalty rates in [0, 1]",
        "SELECT COUNT(*) FROM loyalty_program WHERE member_crr > 1 OR non_member_crr > 1 OR members_active < 0",
    ),
];

async fn check(customers: usize, seed: u64, as_of: &str) {
    let ws = Workspace::new();
    let spec = SampleSpec { customers, seed, end_date: as_of.parse().expect("a date"), years: 3 };
    let input = Storage::new().resolve(&ws.path("input").display().to_string()).expect("a location");
    sample_data::write(&spec, &input, Format::Csv).await.expect("sample written");
    let (input, output) = (ws.path("input").display().to_string(), ws.path("out").display().to_string());
    let manifest = run(&repo().join("pipelines/loyalty.yaml"), as_of, &[("input", &input), ("output", &output)])
        .await
        .expect("the pipeline runs on generated data");

    let ctx = SessionContext::new();
    for table in manifest.tables.keys() {
        let file = partition_file(&ws.path("out"), table, as_of).display().to_string();
        ctx.register_parquet(table.as_str(), &file, ParquetReadOptions::default()).await.expect("register");
    }
    let mut broken = Vec::new();
    for (name, query) in INVARIANTS {
        let batches = ctx.sql(query).await.expect(query).collect().await.expect(query);
        let column = batches[0].column(0);
        let violations = column.as_primitive_opt::<Int64Type>().map(|c| c.value(0)).unwrap_or_else(|| {
            datafusion::arrow::compute::cast(column, &datafusion::arrow::datatypes::DataType::Int64)
                .expect("a count")
                .as_primitive::<Int64Type>()
                .value(0)
        });
        if column.is_null(0) || violations != 0 {
            broken.push(format!("{name}: {violations} ({query})"));
        }
    }
    assert!(
        broken.is_empty(),
        "seed {seed}, {customers} customers, as of {as_of}: invariants broken:\n{}",
        broken.join("\n")
    );
    // Capped shares are counted in the manifest.
    let capped =
        manifest.stages.iter().find(|s| s.name == "share_of_wallet").and_then(|s| s.counts.get("capped_shares"));
    assert!(capped.is_some());
}

#[tokio::test]
async fn invariants_hold_on_generated_samples() {
    // A month-end as_of (every month complete) and a mid-month one.
    for (customers, seed, as_of) in [(1500, 1, "2026-10-31"), (2500, 2, "2026-10-15")] {
        check(customers, seed, as_of).await;
    }
}
