-- Sales per month, and over the 12 months ending with it:
--   revenue, orders, buyers            net revenue, purchase orders, distinct buyers in the month
--   repeat_buyers                      buyers with a purchase day before the month: every
--                                      buyer but those whose first purchase day is in it
--   revenue_12m, orders_12m, buyers_12m  the same over the 12 months ending with the month
--   nrr_current, nrr_previous          net revenue of G in the 12 months ending with the
--                                      month, and in the 12 months before; G = customers
--                                      with a purchase day in those earlier 12 months
-- Rolling distinct counts and G's revenue are sweeps over the month ranges of
-- sales_ranges (months since 1970-01).
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
    FROM customer_history
    GROUP BY acquisition_cohort
),
-- Each range of sales_ranges adds its amount from its first month and removes it
-- after its last.
deltas AS (
    SELECT measure, from_month AS month, amount FROM sales_ranges
    UNION ALL
    SELECT measure, to_month + 1, -amount FROM sales_ranges
),
by_month AS (
    SELECT
        month,
        SUM(CASE WHEN measure = 'buyers_12m' THEN amount ELSE 0 END) AS buyers_12m,
        SUM(CASE WHEN measure = 'nrr_current' THEN amount ELSE 0 END) AS nrr_current,
        SUM(CASE WHEN measure = 'nrr_previous' THEN amount ELSE 0 END) AS nrr_previous
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
