-- Transactions dated up to as_of, each with its calendar day in the pipeline's
-- timezone. is_purchase: the order is a purchase (a missing kind is one), not a
-- refund. net_amount is what the order adds to revenue: refunds subtract on their own
-- day (a purchase's net_amount is its amount, so the amount itself is not kept). Only
-- the columns later stages use, as compactly as they allow (a stage that needs
-- order_id, order_ts, the kind's text or cost can read `transactions`): this is the
-- largest table of a run. Sorted by customer and day, once: the stages that group
-- its rows by customer (purchase days, months, categories, channels) then read them in
-- that order and group them as they stream by, instead of each sorting or hashing
-- every order again (see the README on ordered results).
SELECT
    customer_id,
    local_date(order_ts, $timezone) AS order_date,
    kind IS DISTINCT FROM 'refund' AS is_purchase,
    CASE WHEN kind = 'refund' THEN -amount ELSE amount END AS net_amount,
    channel,
    category,
    discount_amount
FROM transactions
WHERE local_date(order_ts, $timezone) <= $as_of
ORDER BY customer_id, order_date
