-- Each customer's purchase history, one row per customer with a purchase day up to
-- as_of: the rows of the customer_summary mart (shared/METRICS.md), which the CLV fit,
-- time-to-value, monthly sales and the customer-level marts read. recency and T are in
-- the pipeline's time_unit. Sorted by customer_id: the CLV fit sums over the customers
-- in this order, and customer_summary publishes it as it is.
WITH per_customer AS (
    SELECT
        customer_id,
        MIN(purchase_date) AS first_purchase_date,
        MAX(purchase_date) AS last_purchase_date,
        COUNT(*) AS purchase_days,
        SUM(orders) AS orders,
        -- The first purchase day is not a repeat purchase.
        SUM(CASE WHEN day_number > 1 THEN amount END) AS repeat_amount
    FROM purchase_days
    GROUP BY customer_id
),
-- Categories counted by grouping on them first: cheaper than COUNT(DISTINCT), whose
-- accumulator keeps a set per customer.
per_category AS (
    SELECT customer_id, category, SUM(net_amount) AS revenue, bool_or(is_purchase) AS bought
    FROM stg_transactions
    GROUP BY customer_id, category
),
orders AS (
    SELECT
        customer_id,
        SUM(revenue) AS revenue,
        COUNT(CASE WHEN bought THEN category END) AS distinct_categories
    FROM per_category
    GROUP BY customer_id
)
SELECT
    c.customer_id,
    c.first_purchase_date,
    c.last_purchase_date,
    c.purchase_days,
    c.orders,
    CAST(o.revenue AS DECIMAL(18, 2)) AS revenue,
    c.purchase_days - 1 AS frequency,
    -- time_unit: week = 7 days, day = 1 day.
    (c.last_purchase_date - c.first_purchase_date) / CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END AS recency,
    ($as_of - c.first_purchase_date) / CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END AS "T",
    CASE
        WHEN c.purchase_days > 1 THEN CAST(c.repeat_amount AS DOUBLE) / (c.purchase_days - 1)
        ELSE 0.0
    END AS monetary_value,
    $as_of - c.last_purchase_date AS recency_days,
    o.distinct_categories,
    month_start(c.first_purchase_date) AS acquisition_cohort
FROM per_customer AS c
JOIN orders AS o ON o.customer_id = c.customer_id
ORDER BY c.customer_id
