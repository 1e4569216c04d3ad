-- Month ranges behind the rolling measures of monthly_sales, summed: for each measure
-- and range of months (months since 1970-01), the customers or revenue it adds to
-- each month in it.
--   buyers_12m    customers: a buyer span covers the months m whose 12 months ending
--                 with m hold a purchase day
--   nrr_current   revenue of G(m) in the 12 months ending with m
--   nrr_previous  revenue of G(m) in the 12 months before those
-- G(m) = customers with a purchase day in the 12 months ending with m - 12.
-- Alike ranges are summed together, so monthly_sales sweeps over thousands of rows,
-- not millions; months are integers, cheap arithmetic on millions of rows.
WITH spans AS (
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
-- Rows with the same four ranges summed first: a few thousand rows, not millions, to
-- split into the two measures below.
g_ranges AS (
    SELECT current_from, current_to, previous_from, previous_to, SUM(revenue) AS revenue
    FROM g_revenue
    GROUP BY current_from, current_to, previous_from, previous_to
)
SELECT 'buyers_12m' AS measure, from_month, to_month, CAST(COUNT(*) AS DECIMAL(28, 2)) AS amount
FROM spans
GROUP BY from_month, to_month
UNION ALL
-- Both nrr measures from one pass over g_ranges (a CTE is computed per reference).
SELECT measure, from_month, to_month, SUM(revenue)
FROM (
    SELECT
        m.measure,
        g.revenue,
        CASE m.measure WHEN 'nrr_current' THEN g.current_from ELSE g.previous_from END AS from_month,
        CASE m.measure WHEN 'nrr_current' THEN g.current_to ELSE g.previous_to END AS to_month
    FROM g_ranges AS g
    CROSS JOIN (VALUES ('nrr_current'), ('nrr_previous')) AS m(measure)
) AS nrr
WHERE from_month <= to_month
GROUP BY measure, from_month, to_month
