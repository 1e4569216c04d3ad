-- The backtest's calibration customers (shared/METRICS.md, clv_backtest): one row per
-- customer whose first purchase day is on or before the calibration end
-- c = as_of - clv_holdout_days. No rows when clv_holdout_days is 0 (the backtest is
-- off; a negative value counts as 0).
--   frequency         purchase days on or before c, minus the first
--   recency, T        (last purchase day on or before c - first purchase day) and
--                     (c - first purchase day), in time_unit
--   actual_purchases  purchase days in (c, as_of]: what the models must predict
-- The customer id is not kept: the backtest compares totals and frequency buckets.
WITH settings AS (
    SELECT
        $as_of - CAST($clv_holdout_days AS INT) AS calibration_end,
        CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END AS days_per_unit
)
SELECT
    COUNT(CASE WHEN d.purchase_date <= s.calibration_end THEN 1 END) - 1 AS frequency,
    (MAX(CASE WHEN d.purchase_date <= s.calibration_end THEN d.purchase_date END) - MIN(d.purchase_date))
    / MAX(s.days_per_unit) AS recency,
    (MAX(s.calibration_end) - MIN(d.purchase_date)) / MAX(s.days_per_unit) AS "T",
    COUNT(CASE WHEN d.purchase_date > s.calibration_end THEN 1 END) AS actual_purchases
FROM purchase_days AS d
CROSS JOIN settings AS s
WHERE $clv_holdout_days > 0
GROUP BY d.customer_id
HAVING MIN(d.purchase_date) <= MAX(s.calibration_end)
