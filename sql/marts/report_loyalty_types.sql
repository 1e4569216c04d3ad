-- report_loyalty_types (for the report): repeat customers by loyalty type at as_of,
-- the five types of loyalty_types in the order of their rules (every one, also without
-- customers), then any other type by name; no rows when loyalty_types has none.
--   revenue   their net revenue to date (sum of customer_summary.revenue; null without any)
--   *_share   of all typed customers and of their revenue (null when the total is not
--             positive)
WITH rules (position, loyalty_type) AS (
    VALUES (1, 'truly_loyal'), (2, 'price_driven'), (3, 'program_driven'), (4, 'convenience'), (5, 'satisfied')
),
typed AS (
    SELECT t.loyalty_type, COUNT(*) AS customers, SUM(s.revenue) AS revenue
    FROM loyalty_types AS t
    LEFT JOIN customer_summary AS s ON s.customer_id = t.customer_id
    WHERE t.loyalty_type IS NOT NULL
    GROUP BY t.loyalty_type
),
every_type AS (
    SELECT
        COALESCE(r.position, 6) AS position,
        COALESCE(r.loyalty_type, t.loyalty_type) AS loyalty_type,
        COALESCE(t.customers, 0) AS customers,
        t.revenue
    FROM rules AS r
    FULL JOIN typed AS t ON t.loyalty_type = r.loyalty_type
),
totals AS (
    SELECT SUM(customers) AS customers, SUM(revenue) AS revenue FROM every_type
)
SELECT
    e.loyalty_type,
    e.customers,
    CASE WHEN t.customers > 0 THEN CAST(e.customers AS DOUBLE) / CAST(t.customers AS DOUBLE) END AS customer_share,
    e.revenue,
    CASE WHEN t.revenue > 0 THEN CAST(e.revenue AS DOUBLE) / CAST(t.revenue AS DOUBLE) END AS revenue_share
FROM every_type AS e
CROSS JOIN totals AS t
CROSS JOIN (SELECT COUNT(*) AS rows FROM loyalty_types) AS l
WHERE l.rows > 0
ORDER BY e.position, e.loyalty_type
