-- Sales per month, and over the 12 months ending with it:
--   revenue, orders, buyers            net revenue, purchase orders, distinct buyers in the month
--   repeat_buyers                      buyers with a purchase day before the month
--   revenue_12m, orders_12m, buyers_12m  the same over the 12 months ending with the month
--   nrr_current, nrr_previous          net revenue of G in the 12 months ending with the
--                                      month, and in the 12 months before; G = customers
--                                      with a purchase day in those earlier 12 months
-- Rolling distinct counts and G's revenue are sweeps over month ranges (see activity_spells).
WITH monthly AS (
    SELECT
        r.month,
        SUM(r.revenue) AS revenue,
        SUM(r.orders) AS orders,
        SUM(CASE WHEN r.orders > 0 THEN 1 ELSE 0 END) AS buyers,
        SUM(CASE WHEN r.orders > 0 AND c.first_purchase_date < r.month THEN 1 ELSE 0 END) AS repeat_buyers
    FROM customer_months AS r
    LEFT JOIN customer_summary AS c ON c.customer_id = r.customer_id
    GROUP BY r.month
),
-- G's months: a customer is in G(m) when m - 12 is within one of its buyer spans.
g_revenue AS (
    SELECT
        r.revenue,
        GREATEST(r.month, b.from_month + INTERVAL '12 months') AS current_from,
        LEAST(r.month + INTERVAL '11 months', b.to_month + INTERVAL '12 months') AS current_to,
        GREATEST(r.month + INTERVAL '12 months', b.from_month + INTERVAL '12 months') AS previous_from,
        LEAST(r.month + INTERVAL '23 months', b.to_month + INTERVAL '12 months') AS previous_to
    FROM customer_months AS r
    JOIN buyer_spans AS b ON b.customer_id = r.customer_id
),
deltas AS (
    SELECT 'buyers_12m' AS measure, from_month AS month, CAST(1 AS DECIMAL(28, 2)) AS delta FROM buyer_spans
    UNION ALL
    SELECT 'buyers_12m', to_month + INTERVAL '1 month', CAST(-1 AS DECIMAL(28, 2)) FROM buyer_spans
    UNION ALL
    SELECT 'nrr_current', current_from, revenue FROM g_revenue WHERE current_from <= current_to
    UNION ALL
    SELECT 'nrr_current', current_to + INTERVAL '1 month', -revenue FROM g_revenue WHERE current_from <= current_to
    UNION ALL
    SELECT 'nrr_previous', previous_from, revenue FROM g_revenue WHERE previous_from <= previous_to
    UNION ALL
    SELECT 'nrr_previous', previous_to + INTERVAL '1 month', -revenue FROM g_revenue WHERE previous_from <= previous_to
),
by_month AS (
    SELECT
        month,
        SUM(CASE WHEN measure = 'buyers_12m' THEN delta ELSE 0 END) AS buyers_12m,
        SUM(CASE WHEN measure = 'nrr_current' THEN delta ELSE 0 END) AS nrr_current,
        SUM(CASE WHEN measure = 'nrr_previous' THEN delta ELSE 0 END) AS nrr_previous
    FROM deltas
    GROUP BY month
)
SELECT
    m.month,
    COALESCE(s.revenue, 0) AS revenue,
    COALESCE(s.orders, 0) AS orders,
    COALESCE(s.buyers, 0) AS buyers,
    COALESCE(s.repeat_buyers, 0) AS repeat_buyers,
    SUM(COALESCE(s.revenue, 0)) OVER twelve_months AS revenue_12m,
    SUM(COALESCE(s.orders, 0)) OVER twelve_months AS orders_12m,
    CAST(SUM(COALESCE(d.buyers_12m, 0)) OVER running AS BIGINT) AS buyers_12m,
    SUM(COALESCE(d.nrr_current, 0)) OVER running AS nrr_current,
    SUM(COALESCE(d.nrr_previous, 0)) OVER running AS nrr_previous
FROM months AS m
LEFT JOIN monthly AS s ON s.month = m.month
LEFT JOIN by_month AS d ON d.month = m.month
WINDOW
    twelve_months AS (ORDER BY m.month ROWS BETWEEN 11 PRECEDING AND CURRENT ROW),
    running AS (ORDER BY m.month ROWS UNBOUNDED PRECEDING)
