-- One row per customer and purchase day: a customer's purchase orders on one day are
-- one purchase day, their amounts summed. Refunds never change purchase days.
SELECT
    customer_id,
    order_date AS purchase_date,
    SUM(amount) AS amount,
    COUNT(*) AS orders,
    ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY order_date) AS day_number
FROM stg_transactions
WHERE kind = 'purchase'
GROUP BY customer_id, order_date
