-- For each customer, the months m in which the customer has a purchase day within the
-- 12 calendar months ending with m ("a buyer of the last 12 months"). A purchase in
-- month p covers months p .. p + 11; purchase months at most 12 months apart chain.
WITH purchase_months AS (
    SELECT customer_id, month FROM customer_months WHERE orders > 0
),
marked AS (
    SELECT
        customer_id,
        month,
        CASE
            WHEN months_between(LAG(month) OVER (PARTITION BY customer_id ORDER BY month), month) <= 12 THEN 0
            ELSE 1
        END AS starts_span
    FROM purchase_months
),
numbered AS (
    SELECT customer_id, month,
           SUM(starts_span) OVER (PARTITION BY customer_id ORDER BY month ROWS UNBOUNDED PRECEDING) AS span_number
    FROM marked
)
SELECT customer_id, span_number, MIN(month) AS from_month, MAX(month) + INTERVAL '11 months' AS to_month
FROM numbered
GROUP BY customer_id, span_number
