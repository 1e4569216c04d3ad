-- Active-customer counts per population and month, by sweeping over month ranges:
-- each range adds 1 from its first month and removes 1 after its last, and a running
-- sum over months gives the count. Measures, for month m:
--   customers_end      active at the end of m                       (E)
--   customers_start    active at the end of m - 1, the day before m (S)
--   retained           active at both                               (E - N)
--   active_12m_before  active at the end of m - 12
--   retained_12m       active at the end of m - 12 and of m
-- A customer counts in a population in month m when m is within its population range.
WITH ranges AS (
    SELECT customer_id, 'customers_end' AS measure, first_month_active AS from_month, last_month_active AS to_month
    FROM activity_spells
    UNION ALL
    SELECT customer_id, 'customers_start', first_month_active + INTERVAL '1 month', last_month_active + INTERVAL '1 month'
    FROM activity_spells
    UNION ALL
    SELECT customer_id, 'active_12m_before', first_month_active + INTERVAL '12 months', last_month_active + INTERVAL '12 months'
    FROM activity_spells
    UNION ALL
    SELECT customer_id, CASE lag_months WHEN 1 THEN 'retained' ELSE 'retained_12m' END, from_month, to_month
    FROM retention_spans
),
in_population AS (
    SELECT
        p.population,
        r.measure,
        GREATEST(r.from_month, COALESCE(p.from_month, r.from_month)) AS from_month,
        LEAST(r.to_month, COALESCE(p.to_month, r.to_month)) AS to_month
    FROM ranges AS r
    JOIN customer_populations AS p ON p.customer_id = r.customer_id
),
deltas AS (
    SELECT population, measure, from_month AS month, 1 AS delta FROM in_population WHERE from_month <= to_month
    UNION ALL
    SELECT population, measure, to_month + INTERVAL '1 month', -1 FROM in_population WHERE from_month <= to_month
),
by_month AS (
    SELECT population, measure, month, SUM(delta) AS delta FROM deltas GROUP BY population, measure, month
),
grid AS (
    SELECT p.population, m.measure, months.month
    FROM (VALUES ('all'), ('member'), ('non_member')) AS p(population)
    CROSS JOIN (VALUES ('customers_end'), ('customers_start'), ('active_12m_before'), ('retained'), ('retained_12m')) AS m(measure)
    CROSS JOIN months
),
counts AS (
    SELECT
        g.population,
        g.measure,
        g.month,
        SUM(COALESCE(b.delta, 0)) OVER (
            PARTITION BY g.population, g.measure ORDER BY g.month ROWS UNBOUNDED PRECEDING
        ) AS customers
    FROM grid AS g
    LEFT JOIN by_month AS b ON b.population = g.population AND b.measure = g.measure AND b.month = g.month
)
SELECT
    population,
    month,
    SUM(CASE WHEN measure = 'customers_start' THEN customers ELSE 0 END) AS customers_start,
    SUM(CASE WHEN measure = 'customers_end' THEN customers ELSE 0 END) AS customers_end,
    SUM(CASE WHEN measure = 'retained' THEN customers ELSE 0 END) AS retained_customers,
    SUM(CASE WHEN measure = 'active_12m_before' THEN customers ELSE 0 END) AS active_12m_before,
    SUM(CASE WHEN measure = 'retained_12m' THEN customers ELSE 0 END) AS retained_12m
FROM counts
GROUP BY population, month
