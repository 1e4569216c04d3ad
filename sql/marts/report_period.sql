-- report_period (for the report): the month the report shows and the months it is
-- compared with, one row. The reported month is the latest complete month of
-- kpi_monthly: a run in the middle of a month reports the last full month, not a
-- partial one that would look like a collapse. Without a complete month (a run in the
-- first month of data) it is as_of's month, and month_is_complete is false.
WITH reported AS (
    SELECT COALESCE(MAX(period) FILTER (WHERE is_complete), month_start($as_of)) AS month
    FROM kpi_monthly
)
SELECT
    r.month,
    COALESCE(k.is_complete, false) AS month_is_complete,
    r.month - INTERVAL '1 month' AS previous_month,
    r.month - INTERVAL '12 months' AS year_ago_month,
    $as_of AS as_of
FROM reported AS r
LEFT JOIN kpi_monthly AS k ON k.period = r.month
