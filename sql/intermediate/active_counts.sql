-- Active-customer counts per population and month, by sweeping over the month ranges
-- of active_ranges: each range adds its customers from its first month and removes
-- them after its last, and a running sum over months gives the count (measures: see
-- active_ranges). Populations: 'all' customers; 'member' from the customer's
-- member_month on; 'non_member' until the month before (every month for a customer
-- who never joined).
WITH in_population AS (
    SELECT 'all' AS population, measure, from_month, to_month, customers FROM active_ranges
    UNION ALL
    SELECT 'member', measure, GREATEST(from_month, member_from), to_month, customers
    FROM active_ranges
    WHERE member_from IS NOT NULL
    UNION ALL
    SELECT
        'non_member',
        measure,
        from_month,
        CASE WHEN member_from IS NULL THEN to_month ELSE LEAST(to_month, member_from - 1) END,
        customers
    FROM active_ranges
),
deltas AS (
    SELECT population, measure, from_month AS month, customers AS delta FROM in_population WHERE from_month <= to_month
    UNION ALL
    SELECT population, measure, to_month + 1, -customers FROM in_population WHERE from_month <= to_month
),
by_month AS (
    SELECT population, measure, month, SUM(delta) AS delta FROM deltas GROUP BY population, measure, month
),
grid AS (
    SELECT p.population, m.measure, months.month, months_between(DATE '1970-01-01', months.month) AS month_number
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
    LEFT JOIN by_month AS b ON b.population = g.population AND b.measure = g.measure AND b.month = g.month_number
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
