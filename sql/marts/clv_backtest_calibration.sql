-- clv_backtest_calibration: predicted vs actual mean holdout purchase days by
-- calibration frequency, one row per (model, bucket) (shared/METRICS.md): the
-- calibration/holdout comparison of the BTYD literature.
--   calibration_frequency  '0', '1', ..., '6' and '7+' (repeat purchase days in the
--                          calibration period); a bucket without customers has no row
--   customers              calibration customers in the bucket
--   actual_mean            mean purchase days in the holdout
--   predicted_mean         mean conditional expected purchase days over the holdout
-- Models that could not be fitted on the calibration data have no rows (clv_backtest
-- says why).
SELECT
    model,
    CASE WHEN bucket >= 7 THEN '7+' ELSE CAST(bucket AS VARCHAR) END AS calibration_frequency,
    customers,
    actual_purchases / customers AS actual_mean,
    predicted_purchases / customers AS predicted_mean
FROM clv_backtest_errors
ORDER BY model, bucket
