-- Sales per month, and over the 12 months ending with it:
--   revenue, orders, buyers            net revenue, purchase orders, distinct buyers in the month
--   repeat_buyers                      buyers with a purchase day before the month: every
--                                      buyer but those whose first purchase day is in it
--   revenue_12m, orders_12m, buyers_12m  the same over the 12 months ending with the month
--   nrr_current, nrr_previous          net revenue of G in the 12 months ending with the
--                                      month, and in the 12 months before; G = customers
--                                      with a purchase day in those earlier 12 months
-- Rolling distinct counts and G's revenue are sweeps over month ranges (see
-- activity_spells). The sweeps count months as integers (months since 1970-01), which
-- is much cheaper than date arithmetic over millions of rows.
WITH monthly AS (
    SELECT
        month,
        SUM(revenue) AS revenue,
        SUM(orders) AS orders,
        SUM(CASE WHEN orders > 0 THEN 1 ELSE 0 END) AS buyers
    FROM customer_months
    GROUP BY month
),
first_time_buyers AS (
    SELECT acquisition_cohort AS month, COUNT(*) AS buyers
    FROM customer_summary
    GROUP BY acquisition_cohort
),
spans AS (
    SELECT
        customer_id,
        months_between(DATE '1970-01-01', from_month) AS from_month,
        months_between(DATE '1970-01-01', to_month) AS to_month
    FROM buyer_spans
),
-- G's months: a customer is in G(m) when m - 12 is within one of its buyer spans; the
-- revenue of month r counts in nrr_current for m in r .. r + 11, in nrr_previous for
-- m in r + 12 .. r + 23.
g_revenue AS (
    SELECT
        r.revenue,
        GREATEST(r.month, b.from_month + 12) AS current_from,
        LEAST(r.month + 11, b.to_month + 12) AS current_to,
        GREATEST(r.month + 12, b.from_month + 12) AS previous_from,
        LEAST(r.month + 23, b.to_month + 12) AS previous_to
    FROM (SELECT customer_id, months_between(DATE '1970-01-01', month) AS month, revenue FROM customer_months) AS r
    JOIN spans AS b ON b.customer_id = r.customer_id
),
-- Each range adds its value from its first month and removes it after its last.
deltas AS (
    SELECT from_month AS month, 1 AS buyers_12m, 0 AS nrr_current, 0 AS nrr_previous FROM spans
    UNION ALL
    SELECT to_month + 1, -1, 0, 0 FROM spans
    UNION ALL
    SELECT current_from, 0, revenue, 0 FROM g_revenue WHERE current_from <= current_to
    UNION ALL
    SELECT current_to + 1, 0, -revenue, 0 FROM g_revenue WHERE current_from <= current_to
    UNION ALL
    SELECT previous_from, 0, 0, revenue FROM g_revenue WHERE previous_from <= previous_to
    UNION ALL
    SELECT previous_to + 1, 0, 0, -revenue FROM g_revenue WHERE previous_from <= previous_to
),
by_month AS (
    SELECT month, SUM(buyers_12m) AS buyers_12m, SUM(nrr_current) AS nrr_current, SUM(nrr_previous) AS nrr_previous
    FROM deltas
    GROUP BY month
)
SELECT
    m.month,
    COALESCE(s.revenue, 0) AS revenue,
    COALESCE(s.orders, 0) AS orders,
    COALESCE(s.buyers, 0) AS buyers,
    COALESCE(s.buyers, 0) - COALESCE(f.buyers, 0) AS repeat_buyers,
    SUM(COALESCE(s.revenue, 0)) OVER twelve_months AS revenue_12m,
    SUM(COALESCE(s.orders, 0)) OVER twelve_months AS orders_12m,
    CAST(SUM(COALESCE(d.buyers_12m, 0)) OVER running AS BIGINT) AS buyers_12m,
    SUM(COALESCE(d.nrr_current, 0)) OVER running AS nrr_current,
    SUM(COALESCE(d.nrr_previous, 0)) OVER running AS nrr_previous
FROM months AS m
LEFT JOIN monthly AS s ON s.month = m.month
LEFT JOIN first_time_buyers AS f ON f.month = m.month
LEFT JOIN by_month AS d ON d.month = months_between(DATE '1970-01-01', m.month)
WINDOW
    twelve_months AS (ORDER BY m.month ROWS BETWEEN 11 PRECEDING AND CURRENT ROW),
    running AS (ORDER BY m.month ROWS UNBOUNDED PRECEDING)
