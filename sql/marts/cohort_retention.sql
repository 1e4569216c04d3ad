-- cohort_retention: one row per acquisition cohort and month since acquisition
-- (shared/METRICS.md), period_index 0 .. the month of as_of. revenue is the cohort's
-- net revenue in that month; cumulative_revenue_per_customer sums months 0 .. k.
WITH cohorts AS (
    SELECT acquisition_cohort AS cohort_month, COUNT(*) AS cohort_size
    FROM customer_history
    GROUP BY acquisition_cohort
),
grid AS (
    SELECT c.cohort_month, c.cohort_size, unnest(range(0, months_between(c.cohort_month, $as_of) + 1)) AS period_index
    FROM cohorts AS c
),
-- A cohort's customers active in a month are those with a purchase in it; revenue is
-- net. customer_months has one row per customer and month, so nothing is counted twice.
activity AS (
    SELECT
        s.acquisition_cohort AS cohort_month,
        months_between(s.acquisition_cohort, m.month) AS period_index,
        SUM(CASE WHEN m.orders > 0 THEN 1 ELSE 0 END) AS active_customers,
        SUM(m.revenue) AS revenue
    FROM customer_months AS m
    JOIN customer_history AS s ON s.customer_id = m.customer_id
    GROUP BY s.acquisition_cohort, months_between(s.acquisition_cohort, m.month)
)
SELECT
    g.cohort_month,
    g.period_index,
    g.cohort_size,
    COALESCE(a.active_customers, 0) AS active_customers,
    CAST(COALESCE(a.active_customers, 0) AS DOUBLE) / g.cohort_size AS retention_rate,
    CAST(COALESCE(a.revenue, 0) AS DECIMAL(18, 2)) AS revenue,
    CAST(SUM(COALESCE(a.revenue, 0)) OVER (PARTITION BY g.cohort_month ORDER BY g.period_index ROWS UNBOUNDED PRECEDING)
        AS DOUBLE) / g.cohort_size AS cumulative_revenue_per_customer
FROM grid AS g
LEFT JOIN activity AS a ON a.cohort_month = g.cohort_month AND a.period_index = g.period_index
ORDER BY g.cohort_month, g.period_index
