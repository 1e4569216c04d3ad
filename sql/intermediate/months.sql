-- Calendar months from the first month with a transaction to as_of's month.
-- month_end is the month's last day, or as_of for the month as_of falls in.
WITH bounds AS (
    SELECT month_start(MIN(order_date)) AS first_month FROM stg_transactions
),
series AS (
    SELECT unnest(range(b.first_month, month_start($as_of) + INTERVAL '1 month', INTERVAL '1 month')) AS month
    FROM bounds AS b
    WHERE b.first_month IS NOT NULL
)
SELECT
    s.month,
    LEAST(s.month + INTERVAL '1 month' - INTERVAL '1 day', $as_of) AS month_end,
    s.month + INTERVAL '1 month' - INTERVAL '1 day' <= $as_of AS is_complete,
    months_between(b.first_month, s.month) AS months_of_data
FROM series AS s
CROSS JOIN bounds AS b
