-- For each customer, the months m in which the customer has a purchase day within the
-- 12 calendar months ending with m ("a buyer of the last 12 months"): one row per buyer
-- span (see purchase_days), covering its first purchase month .. its last + 11.
SELECT
    customer_id,
    buyer_span AS span_number,
    month_start(MIN(purchase_date)) AS from_month,
    month_start(MAX(purchase_date)) + INTERVAL '11 months' AS to_month
FROM purchase_days
GROUP BY customer_id, buyer_span
