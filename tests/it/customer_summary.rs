//! customer_summary checked value by value against hand computations
//! (fixture: tests/fixtures/summary, timezone Europe/Rome, as_of 2024-03-31, weeks).
//!
//! - C1: one purchase day → frequency 0, recency 0, monetary_value 0; T = 81 days / 7.
//! - C2: two orders on 2024-01-05 (naive times, Rome) are one purchase day of 50;
//!   2024-02-01 is the second (40); a refund of 10 lowers revenue (80) but not
//!   monetary_value (40); two categories.
//! - C3: 2024-02-29T23:30Z is 2024-03-01 00:30 in Rome, the same day as a 10:00+01:00
//!   order; 2024-03-20T08:00-05:00 is the second day; 2024-03-31T22:30Z is April 1
//!   in Rome, after as_of, and does not count.
//! - C4: a refund dated after as_of does not count; no category → 0 categories.
//! - C5 has only a refund and C6 only buys after as_of: neither is a customer yet.

use crate::support::{Workspace, repo, run_only, table};

#[tokio::test]
async fn customer_summary_matches_hand_computed_values() {
    let out = Workspace::new();
    let output = out.path("out").display().to_string();
    let input = repo().join("tests/fixtures/summary").display().to_string();
    let manifest = run_only(
        &repo().join("pipelines/loyalty.yaml"),
        "2024-03-31",
        &[("input", &input), ("output", &output), ("timezone", "Europe/Rome")],
        &["customer_summary"],
    )
    .await
    .expect("the run succeeds");

    assert_eq!(manifest.tables["customer_summary"].rows, 4);
    let expected = "\
+-------------+---------------------+--------------------+---------------+--------+---------+-----------+--------------------+--------------------+----------------+--------------+---------------------+--------------------+
| customer_id | first_purchase_date | last_purchase_date | purchase_days | orders | revenue | frequency | recency            | T                  | monetary_value | recency_days | distinct_categories | acquisition_cohort |
+-------------+---------------------+--------------------+---------------+--------+---------+-----------+--------------------+--------------------+----------------+--------------+---------------------+--------------------+
| C1          | 2024-01-10          | 2024-01-10         | 1             | 1      | 50.00   | 0         | 0.0                | 11.571428571428571 | 0.0            | 81           | 1                   | 2024-01-01         |
| C2          | 2024-01-05          | 2024-02-01         | 2             | 3      | 80.00   | 1         | 3.857142857142857  | 12.285714285714286 | 40.0           | 59           | 2                   | 2024-01-01         |
| C3          | 2024-03-01          | 2024-03-20         | 2             | 3      | 30.00   | 1         | 2.7142857142857144 | 4.285714285714286  | 10.0           | 11           | 2                   | 2024-03-01         |
| C4          | 2024-03-10          | 2024-03-10         | 1             | 1      | 100.00  | 0         | 0.0                | 3.0                | 0.0            | 21           | 0                   | 2024-03-01         |
+-------------+---------------------+--------------------+---------------+--------+---------+-----------+--------------------+--------------------+----------------+--------------+---------------------+--------------------+";
    assert_eq!(table(&out.path("out"), "customer_summary", "2024-03-31"), expected);
}

#[tokio::test]
async fn time_unit_day_measures_recency_and_t_in_days() {
    let out = Workspace::new();
    let output = out.path("out").display().to_string();
    let input = repo().join("tests/fixtures/summary").display().to_string();
    run_only(
        &repo().join("pipelines/loyalty.yaml"),
        "2024-03-31",
        &[("input", &input), ("output", &output), ("timezone", "Europe/Rome"), ("time_unit", "day")],
        &["customer_summary"],
    )
    .await
    .expect("the run succeeds");
    let printed = table(&out.path("out"), "customer_summary", "2024-03-31");
    let c2 = printed.lines().find(|l| l.starts_with("| C2")).expect("C2's row");
    assert!(c2.contains("| 27.0 ") && c2.contains("| 86.0 "), "{c2}");
}
