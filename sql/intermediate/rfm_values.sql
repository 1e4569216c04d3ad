-- rfm_values: what RFM scores, one row per customer with a purchase day in the lookback
-- (rfm_lookback_days days up to as_of; 0 means all history): days since the last purchase
-- day, purchase days, and net revenue. A stage of its own because `rfm` reads it twice.
WITH days AS (
    SELECT d.customer_id, MAX(d.purchase_date) AS last_purchase_date, COUNT(*) AS frequency
    FROM purchase_days AS d
    WHERE ($rfm_lookback_days = 0 OR d.purchase_date > $as_of - $rfm_lookback_days)
    GROUP BY d.customer_id
),
spend AS (
    SELECT t.customer_id, SUM(t.net_amount) AS monetary
    FROM stg_transactions AS t
    WHERE ($rfm_lookback_days = 0 OR t.order_date > $as_of - $rfm_lookback_days)
    GROUP BY t.customer_id
)
SELECT d.customer_id, $as_of - d.last_purchase_date AS recency_days, d.frequency, s.monetary
FROM days AS d
JOIN spend AS s ON s.customer_id = d.customer_id
WHERE d.frequency > 0
