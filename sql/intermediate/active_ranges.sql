-- Activity ranges for the monthly active counts (active_counts), counted: how many
-- customers have each range of months (months since 1970-01) of each measure, by
-- their member month. Measures, for month m:
--   customers_end      active at the end of m                       (E)
--   customers_start    active at the end of m - 1, the day before m (S)
--   retained           active at both                               (E - N)
--   active_12m_before  active at the end of m - 12
--   retained_12m       active at the end of m - 12 and of m
-- Alike ranges are counted together, so the sweep in active_counts works on thousands
-- of rows, not millions. Months are integers here: cheap arithmetic on millions of
-- ranges.
WITH spells AS (
    SELECT
        customer_id,
        months_between(DATE '1970-01-01', first_month_active) AS first_month,
        months_between(DATE '1970-01-01', last_month_active) AS last_month
    FROM activity_spells
),
ranges AS (
    SELECT customer_id, 'customers_end' AS measure, first_month AS from_month, last_month AS to_month FROM spells
    UNION ALL
    SELECT customer_id, 'customers_start', first_month + 1, last_month + 1 FROM spells
    UNION ALL
    SELECT customer_id, 'active_12m_before', first_month + 12, last_month + 12 FROM spells
    UNION ALL
    SELECT customer_id, CASE lag_months WHEN 1 THEN 'retained' ELSE 'retained_12m' END, from_month, to_month
    FROM retention_spans
)
SELECT measure, from_month, to_month, member_from, COUNT(*) AS customers
FROM (
    SELECT r.measure, r.from_month, r.to_month, months_between(DATE '1970-01-01', m.member_month) AS member_from
    FROM ranges AS r
    LEFT JOIN memberships AS m ON m.customer_id = r.customer_id
) AS with_membership
GROUP BY measure, from_month, to_month, member_from
