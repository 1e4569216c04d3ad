-- kpi_monthly: one row per month from the first month with data to as_of's month
-- (shared/METRICS.md). period is the month's first day; S and E are active customers at
-- the day before the month and at its last day (or as_of).
WITH counts AS (
    SELECT * FROM active_counts WHERE population = 'all'
),
new_customers AS (
    SELECT acquisition_cohort AS month, COUNT(*) AS new_customers
    FROM customer_history
    GROUP BY acquisition_cohort
),
-- Time-to-value of customers acquired in the 12 months ending with each month:
-- durations are grouped per cohort so each month combines 12 small histograms.
lttv_histogram AS (
    SELECT cohort_month, days, reached_value, COUNT(*) AS customers
    FROM lttv_durations
    GROUP BY cohort_month, days, reached_value
),
lttv_by_month AS (
    SELECT m.month, km_median(CAST(h.days AS DOUBLE), h.reached_value, h.customers) AS lttv_median_days
    FROM months AS m
    JOIN lttv_histogram AS h ON h.cohort_month > m.month - INTERVAL '12 months' AND h.cohort_month <= m.month
    GROUP BY m.month
),
measures AS (
    SELECT
        m.month,
        m.months_of_data,
        m.is_complete,
        c.customers_start,
        c.customers_end,
        COALESCE(n.new_customers, 0) AS new_customers,
        c.retained_customers,
        -- Entered the active base in the month: active at its end, not at its start.
        c.customers_end - c.retained_customers AS acquired_customers,
        s.revenue,
        s.orders,
        s.buyers,
        s.repeat_buyers,
        s.nrr_current,
        s.nrr_previous
    FROM months AS m
    JOIN counts AS c ON c.month = m.month
    JOIN monthly_sales AS s ON s.month = m.month
    LEFT JOIN new_customers AS n ON n.month = m.month
)
SELECT
    x.month AS period,
    x.customers_start,
    x.customers_end,
    x.new_customers,
    x.acquired_customers - x.new_customers AS reactivated_customers,
    x.acquired_customers,
    x.retained_customers,
    CAST(x.retained_customers AS DOUBLE) / NULLIF(x.customers_start, 0) AS crr,
    1.0 - CAST(x.retained_customers AS DOUBLE) / NULLIF(x.customers_start, 0) AS churn_rate,
    CAST(x.revenue AS DECIMAL(18, 2)) AS revenue,
    x.orders,
    x.buyers,
    CAST(x.revenue AS DOUBLE) / NULLIF(x.orders, 0) AS average_order_value,
    CAST(x.orders AS DOUBLE) / NULLIF(x.buyers, 0) AS purchase_frequency,
    CAST(x.repeat_buyers AS DOUBLE) / NULLIF(x.buyers, 0) AS repeat_customer_rate,
    CASE WHEN x.months_of_data >= 23 THEN CAST(x.nrr_current AS DOUBLE) / NULLIF(CAST(x.nrr_previous AS DOUBLE), 0) END
        AS nrr_12m,
    v.nps,
    -- 0 in a month without answers; null when there is no survey input at all.
    CASE WHEN surveys.answers > 0 THEN COALESCE(v.nps_responses, 0) END AS nps_responses,
    v.loyalty_index,
    l.lttv_median_days,
    x.is_complete
FROM measures AS x
CROSS JOIN stg_survey_input AS surveys
LEFT JOIN monthly_surveys AS v ON v.month = x.month
LEFT JOIN lttv_by_month AS l ON l.month = x.month
ORDER BY x.month
