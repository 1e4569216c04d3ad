-- clv_backtest: how well each purchase model predicted a held-out period, one row per
-- model (shared/METRICS.md).
--   calibration_end         c = as_of - clv_holdout_days; holdout_end = as_of;
--                           holdout_length = (as_of - c) in time_unit
--   customers               calibration customers (first purchase day <= c)
--   actual_purchases        purchase days in (c, as_of], summed over them
--   predicted_purchases     the model's conditional expected repeat purchase days over
--                           the holdout given each customer's calibration history, summed
--   total_error             predicted_purchases / actual_purchases - 1
--   mae, rmse               mean absolute and root-mean-square per-customer error
--   calibration_log_likelihood  the fit's maximised log-likelihood on the calibration data
--   selected                the model clv uses (the rule is in clv_model_selection)
-- Beyond the contract:
--   status                  backtested | not_fitted | off (clv_holdout_days = 0)
--   reason                  why a model was not backtested (null when it was)
--   selection_reason        on the selected row: which rule chose the model (null elsewhere)
SELECT
    model,
    CASE WHEN backtest_on THEN calibration_end END AS calibration_end,
    CASE WHEN backtest_on THEN $as_of END AS holdout_end,
    CASE WHEN backtest_on THEN holdout_length END AS holdout_length,
    CASE WHEN backtest_on THEN calibration_customers END AS customers,
    CAST(actual_purchases AS BIGINT) AS actual_purchases,
    predicted_purchases,
    predicted_purchases / NULLIF(actual_purchases, 0) - 1 AS total_error,
    mae,
    rmse,
    CASE WHEN mae IS NOT NULL THEN fitted['log_likelihood'] END AS calibration_log_likelihood,
    selected,
    CASE WHEN NOT backtest_on THEN 'off' WHEN mae IS NULL THEN 'not_fitted' ELSE 'backtested' END AS status,
    CASE
        WHEN NOT backtest_on THEN 'the backtest is off (clv_holdout_days = 0)'
        WHEN calibration_customers = 0 THEN concat(
            'no customer has a first purchase day on or before the calibration end ',
            CAST(calibration_end AS VARCHAR),
            ': the history is shorter than the holdout (clv_holdout_days = ',
            CAST($clv_holdout_days AS VARCHAR),
            '); shorten clv_holdout_days, or set it to 0 to turn the backtest off'
        )
        WHEN mae IS NULL THEN fitted['failure']
    END AS reason,
    selection_reason
FROM clv_model_selection
ORDER BY preference
