-- The run's parameters as one row, with the values derived from them.
-- Stages CROSS JOIN this instead of repeating the derivations.
SELECT
    $as_of AS as_of,
    -- Months are identified by their first day throughout the pipeline.
    CAST(date_trunc('month', $as_of) AS DATE) AS as_of_month,
    $active_window_days AS active_window_days,
    -- Length of the model time unit in days (recency and T are measured in it).
    CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END AS unit_days,
    -- RFM looks back this many days; 0 means all history.
    CASE WHEN $rfm_lookback_days > 0 THEN $as_of - $rfm_lookback_days END AS rfm_window_start,
    $margin AS margin
