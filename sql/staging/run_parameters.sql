-- The run's parameters as one row, with the values derived from them.
-- Stages CROSS JOIN this instead of repeating the derivations.
SELECT
    $as_of AS as_of,
    $active_window_days AS active_window_days,
    -- Length of the model time unit in days (recency and T are measured in it).
    CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END AS unit_days
