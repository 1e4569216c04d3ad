-- The backtest's predictions against what happened, summed per model and calibration
-- frequency bucket (0, 1, ..., 6, 7+). For each calibration customer, predicted =
-- conditional expected repeat purchase days over the holdout (clv_holdout_days in
-- time_unit) given the calibration history; actual = purchase days in the holdout.
-- The sums give clv_backtest (over all buckets) and clv_backtest_calibration (per
-- bucket) without keeping a row per customer and model. Models that could not be
-- fitted have no rows.
WITH predicted AS (
    SELECT
        f.model,
        LEAST(c.frequency, 7) AS bucket,
        CAST(c.actual_purchases AS DOUBLE) AS actual,
        clv_expected_purchases(
            f.fitted,
            CAST($clv_holdout_days AS DOUBLE) / CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END,
            CAST(c.frequency AS DOUBLE),
            c.recency,
            c."T"
        ) AS predicted
    FROM clv_calibration AS c
    CROSS JOIN clv_backtest_fits AS f
    WHERE f.fitted['values'] IS NOT NULL
)
SELECT
    model,
    bucket,
    COUNT(*) AS customers,
    SUM(actual) AS actual_purchases,
    -- Summed exactly (to 10 decimals), so the sums do not depend on the order the rows
    -- arrive in, which the partitions (or a cluster's executors) decide.
    CAST(SUM(CAST(predicted AS DECIMAL(38, 10))) AS DOUBLE) AS predicted_purchases,
    CAST(SUM(CAST(abs(predicted - actual) AS DECIMAL(38, 10))) AS DOUBLE) AS absolute_error,
    CAST(SUM(CAST((predicted - actual) * (predicted - actual) AS DECIMAL(38, 10))) AS DOUBLE) AS squared_error
FROM predicted
GROUP BY model, bucket
