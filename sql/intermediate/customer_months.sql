-- One row per customer and month with a transaction: net revenue (refunds subtract in
-- their own month) and purchase orders. Monthly sales, share of wallet and buyer spans
-- all start from here, so the transactions are grouped once.
SELECT
    customer_id,
    month_start(order_date) AS month,
    SUM(net_amount) AS revenue,
    SUM(CASE WHEN is_purchase THEN 1 ELSE 0 END) AS orders
FROM stg_transactions
GROUP BY customer_id, month_start(order_date)
-- In the order share_of_wallet merges it with the wallet estimates: the rows come
-- grouped by customer already, so only each customer's months are sorted.
ORDER BY customer_id, month
