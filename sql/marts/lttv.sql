-- lttv: loyalty time-to-value per acquisition cohort month (shared/METRICS.md).
-- share_within_Nd is null for cohorts whose last day is less than N days before as_of
-- (not every customer of theirs could have reached value within N days yet).
-- median_days is the Kaplan-Meier median with censoring at as_of.
SELECT
    d.cohort_month,
    COUNT(*) AS customers,
    SUM(CASE WHEN d.reached_value THEN 1 ELSE 0 END) AS reached_value,
    CASE
        WHEN $as_of - (d.cohort_month + INTERVAL '1 month' - INTERVAL '1 day') >= 30
        THEN CAST(SUM(CASE WHEN d.reached_value AND d.days <= 30 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*)
    END AS share_within_30d,
    CASE
        WHEN $as_of - (d.cohort_month + INTERVAL '1 month' - INTERVAL '1 day') >= 90
        THEN CAST(SUM(CASE WHEN d.reached_value AND d.days <= 90 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*)
    END AS share_within_90d,
    km_median(CAST(d.days AS DOUBLE), d.reached_value, 1) AS median_days
FROM lttv_durations AS d
GROUP BY d.cohort_month
ORDER BY d.cohort_month
