-- The backtest's fits: every purchase model fitted by maximum likelihood on the
-- calibration customers alone (clv_calibration), one row per model. A model that
-- cannot be fitted (it does not converge, too few repeat buyers, no calibration
-- customers) comes back with null parameters and the reason in fitted['failure']
-- instead of stopping the run.
SELECT 'bg_nbd' AS model, clv_try_fit_purchases('bg_nbd', CAST(frequency AS DOUBLE), recency, "T") AS fitted
FROM clv_calibration
UNION ALL
SELECT 'mbg_nbd', clv_try_fit_purchases('mbg_nbd', CAST(frequency AS DOUBLE), recency, "T")
FROM clv_calibration
UNION ALL
SELECT 'pareto_nbd', clv_try_fit_purchases('pareto_nbd', CAST(frequency AS DOUBLE), recency, "T")
FROM clv_calibration
