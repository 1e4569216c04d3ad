-- cohort_retention: one row per acquisition cohort and month since acquisition
-- (shared/METRICS.md), period_index 0 .. the month of as_of. revenue is the cohort's
-- net revenue in that month; cumulative_revenue_per_customer sums months 0 .. k.
WITH cohorts AS (
    SELECT acquisition_cohort AS cohort_month, COUNT(*) AS cohort_size
    FROM customer_summary
    GROUP BY acquisition_cohort
),
grid AS (
    SELECT c.cohort_month, c.cohort_size, unnest(range(0, months_between(c.cohort_month, $as_of) + 1)) AS period_index
    FROM cohorts AS c
),
active AS (
    SELECT
        s.acquisition_cohort AS cohort_month,
        months_between(s.acquisition_cohort, d.purchase_date) AS period_index,
        COUNT(DISTINCT d.customer_id) AS active_customers
    FROM purchase_days AS d
    JOIN customer_summary AS s ON s.customer_id = d.customer_id
    GROUP BY s.acquisition_cohort, months_between(s.acquisition_cohort, d.purchase_date)
),
revenue AS (
    SELECT
        s.acquisition_cohort AS cohort_month,
        months_between(s.acquisition_cohort, t.order_date) AS period_index,
        SUM(t.net_amount) AS revenue
    FROM stg_transactions AS t
    JOIN customer_summary AS s ON s.customer_id = t.customer_id
    GROUP BY s.acquisition_cohort, months_between(s.acquisition_cohort, t.order_date)
)
SELECT
    g.cohort_month,
    g.period_index,
    g.cohort_size,
    COALESCE(a.active_customers, 0) AS active_customers,
    CAST(COALESCE(a.active_customers, 0) AS DOUBLE) / g.cohort_size AS retention_rate,
    CAST(COALESCE(r.revenue, 0) AS DECIMAL(18, 2)) AS revenue,
    CAST(SUM(COALESCE(r.revenue, 0)) OVER (PARTITION BY g.cohort_month ORDER BY g.period_index ROWS UNBOUNDED PRECEDING)
        AS DOUBLE) / g.cohort_size AS cumulative_revenue_per_customer
FROM grid AS g
LEFT JOIN active AS a ON a.cohort_month = g.cohort_month AND a.period_index = g.period_index
LEFT JOIN revenue AS r ON r.cohort_month = g.cohort_month AND r.period_index = g.period_index
ORDER BY g.cohort_month, g.period_index
