-- report_cohorts (for the report): the cohort retention grid of the report, the latest
-- 13 acquisition cohorts up to the reported month × months since acquisition 0-12
-- (a year of retention), one row per cell. retention_rate is cohort_retention's, null
-- for a month after the reported one (not complete yet) or without a row.
WITH cells AS (
    SELECT c.cohort_month, c.period_index, c.retention_rate
    FROM cohort_retention AS c
    CROSS JOIN report_period AS p
    WHERE c.cohort_month <= p.month AND c.period_index BETWEEN 0 AND 12 AND c.retention_rate IS NOT NULL
),
cohorts AS (
    SELECT DISTINCT cohort_month FROM cells ORDER BY cohort_month DESC LIMIT 13
),
months_since AS (
    SELECT unnest(range(0, 13)) AS period_index
),
grid AS (
    SELECT c.cohort_month, m.period_index FROM cohorts AS c CROSS JOIN months_since AS m
)
SELECT
    g.cohort_month,
    g.period_index,
    CASE WHEN g.period_index <= months_between(g.cohort_month, p.month) THEN x.retention_rate END AS retention_rate
FROM grid AS g
CROSS JOIN report_period AS p
LEFT JOIN cells AS x ON x.cohort_month = g.cohort_month AND x.period_index = g.period_index
ORDER BY g.cohort_month, g.period_index
