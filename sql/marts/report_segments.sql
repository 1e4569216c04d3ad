-- report_segments (for the report): the RFM segments at as_of, largest revenue first
-- (ties by name). Customers no rule of the segment map matches are `Unassigned`.
--   revenue       the segment's net revenue in the RFM lookback (sum of rfm.monetary)
--   *_share       of all scored customers and of their revenue (null when the total is
--                 not positive)
--   simple_clv    the segment's textbook CLV (clv_simple, scope 'segment')
WITH by_segment AS (
    SELECT COALESCE(segment, 'Unassigned') AS segment, COUNT(*) AS customers, SUM(monetary) AS revenue
    FROM rfm
    GROUP BY COALESCE(segment, 'Unassigned')
),
totals AS (
    SELECT SUM(customers) AS customers, SUM(revenue) AS revenue FROM by_segment
)
SELECT
    s.segment,
    s.customers,
    CAST(s.customers AS DOUBLE) / CAST(t.customers AS DOUBLE) AS customer_share,
    s.revenue,
    CASE WHEN t.revenue > 0 THEN CAST(s.revenue AS DOUBLE) / CAST(t.revenue AS DOUBLE) END AS revenue_share,
    c.simple_clv
FROM by_segment AS s
CROSS JOIN totals AS t
LEFT JOIN clv_simple AS c ON c.scope = 'segment' AND c.key = s.segment
ORDER BY s.revenue DESC NULLS LAST, s.segment
