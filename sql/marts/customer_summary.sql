-- customer_summary: one row per customer with a purchase day up to as_of
-- (shared/METRICS.md), as computed in customer_history. No ORDER BY: customer_history
-- is sorted by customer_id, and scanning it keeps that order.
SELECT
    customer_id,
    first_purchase_date,
    last_purchase_date,
    purchase_days,
    orders,
    revenue,
    frequency,
    recency,
    "T",
    monetary_value,
    recency_days,
    distinct_categories,
    acquisition_cohort
FROM customer_history
