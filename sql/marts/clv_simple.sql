-- clv_simple: the textbook CLV (shared/METRICS.md), one row per month with 12 months
-- of history (scope 'month', key YYYY-MM) and one per RFM segment as of as_of (scope
-- 'segment'). Over the 12 months ending with the month (or as_of):
-- average_order_value = revenue / orders, purchase_frequency = orders / distinct
-- buyers, customer_value = AOV x frequency; churn_rate is the annual churn
-- 1 - (active at the end of m-12 and at the end of m) / (active at the end of m-12).
-- Segment rows use the base's annual churn at as_of: a segment's own churn would be
-- circular, since segments are defined by recency.
WITH base AS (
    SELECT
        m.month,
        m.months_of_data,
        s.revenue_12m,
        s.orders_12m,
        s.buyers_12m,
        1.0 - CAST(c.retained_12m AS DOUBLE) / NULLIF(c.active_12m_before, 0) AS churn_rate
    FROM months AS m
    JOIN monthly_sales AS s ON s.month = m.month
    JOIN active_counts AS c ON c.month = m.month AND c.population = 'all'
),
by_month AS (
    SELECT
        'month' AS scope,
        to_char(month, '%Y-%m') AS key,
        CAST(revenue_12m AS DOUBLE) / NULLIF(orders_12m, 0) AS average_order_value,
        CAST(orders_12m AS DOUBLE) / NULLIF(buyers_12m, 0) AS purchase_frequency,
        churn_rate
    FROM base
    WHERE months_of_data >= 11
),
-- Every RFM segment has a row, also one whose customers bought nothing in the window.
-- Each customer's net revenue and purchase orders in the 12 months ending with as_of's.
segment_window AS (
    SELECT r.segment, SUM(m.revenue) AS revenue, SUM(m.orders) AS orders
    FROM rfm AS r
    LEFT JOIN customer_months AS m
        ON m.customer_id = r.customer_id AND m.month > month_start($as_of) - INTERVAL '12 months'
    GROUP BY r.customer_id, r.segment
),
-- Segments are summed first, then given the base's churn at as_of (one row): joining
-- the churn to every customer would hold them all in memory.
segment_totals AS (
    SELECT
        segment,
        SUM(revenue) AS revenue,
        SUM(orders) AS orders,
        SUM(CASE WHEN orders > 0 THEN 1 ELSE 0 END) AS buyers
    FROM segment_window
    WHERE segment IS NOT NULL
    GROUP BY segment
),
by_segment AS (
    SELECT
        'segment' AS scope,
        t.segment AS key,
        CAST(t.revenue AS DOUBLE) / NULLIF(t.orders, 0) AS average_order_value,
        CAST(t.orders AS DOUBLE) / NULLIF(t.buyers, 0) AS purchase_frequency,
        b.churn_rate
    FROM segment_totals AS t
    CROSS JOIN (SELECT churn_rate FROM base WHERE month = month_start($as_of)) AS b
),
both_scopes AS (
    SELECT * FROM by_month
    UNION ALL
    SELECT * FROM by_segment
)
SELECT
    x.scope,
    x.key,
    x.average_order_value,
    x.purchase_frequency,
    x.average_order_value * x.purchase_frequency AS customer_value,
    x.churn_rate,
    1.0 / NULLIF(x.churn_rate, 0) AS customer_lifespan_years,
    x.average_order_value * x.purchase_frequency / NULLIF(x.churn_rate, 0) * $margin AS simple_clv
FROM both_scopes AS x
ORDER BY x.scope, x.key
