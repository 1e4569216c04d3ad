-- One row per customer and purchase day: a customer's purchase orders on one day are
-- one purchase day, their amounts summed. Refunds never change purchase days.
--   day_number      1 for the customer's first purchase day, 2 for the second, ...
--                   (a gap of one day makes every purchase day an island of its own)
--   activity_spell  the customer's activity spell the day belongs to: purchase days
--                   less than active_window_days apart chain into one spell (a day d
--                   keeps a customer active on days d .. d + window - 1)
--   buyer_span      the customer's buyer span: purchase months at most 12 months apart
--                   chain (a purchase in month p makes a buyer of the 12 months ending
--                   with each of p .. p + 11)
-- island_number takes the customer as its key, so all three share one sort by customer
-- and day (see the README on island_number).
SELECT
    customer_id,
    order_date AS purchase_date,
    SUM(net_amount) AS amount,
    COUNT(*) AS orders,
    island_number(customer_id, order_date, 1) OVER by_day AS day_number,
    island_number(customer_id, order_date, $active_window_days) OVER by_day AS activity_spell,
    island_number(customer_id, months_between(DATE '1970-01-01', order_date), 13) OVER by_day AS buyer_span
FROM stg_transactions
WHERE is_purchase
GROUP BY customer_id, order_date
WINDOW by_day AS (ORDER BY customer_id, order_date)
