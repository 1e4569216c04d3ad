-- The backtest's calibration customers (shared/METRICS.md, clv_backtest): one row per
-- customer whose first purchase day is on or before the calibration end
-- c = as_of - clv_holdout_days. No rows when clv_holdout_days is 0 (the backtest is
-- off; a negative value counts as 0).
--   frequency         purchase days on or before c, minus the first
--   recency, T        (last purchase day on or before c - first purchase day) and
--                     (c - first purchase day), in time_unit
--   actual_purchases  purchase days in (c, as_of]: what the models must predict
-- The customer id is not kept: the backtest compares totals and frequency buckets.
-- c and the time unit are written out where they are used rather than joined in from
-- a one-row table: constants cost nothing per purchase day, a joined column does.
SELECT
    COUNT(CASE WHEN purchase_date <= $as_of - CAST($clv_holdout_days AS INT) THEN 1 END) - 1 AS frequency,
    (MAX(CASE WHEN purchase_date <= $as_of - CAST($clv_holdout_days AS INT) THEN purchase_date END)
        - MIN(purchase_date))
    / CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END AS recency,
    ($as_of - CAST($clv_holdout_days AS INT) - MIN(purchase_date))
    / CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END AS "T",
    COUNT(CASE WHEN purchase_date > $as_of - CAST($clv_holdout_days AS INT) THEN 1 END) AS actual_purchases
FROM purchase_days
WHERE $clv_holdout_days > 0
GROUP BY customer_id
HAVING MIN(purchase_date) <= $as_of - CAST($clv_holdout_days AS INT)
