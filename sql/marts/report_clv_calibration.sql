-- report_clv_calibration (for the report): the calibration/holdout comparison of the
-- model clv uses (clv_backtest.selected) - predicted against actual mean holdout purchase
-- days by calibration frequency, 0 to 6 then 7+ (the order of the text, '0' < ... < '6'
-- < '7+'). No rows with the backtest off or when the selected model could not be
-- backtested (clv_backtest says why).
SELECT
    c.model,
    c.calibration_frequency,
    c.customers,
    c.actual_mean,
    c.predicted_mean
FROM clv_backtest_calibration AS c
JOIN clv_backtest AS b ON b.model = c.model
WHERE b.selected
ORDER BY c.calibration_frequency
