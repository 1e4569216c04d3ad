-- clv: one row per customer in customer_summary (shared/METRICS.md).
--   p_alive               P(alive | frequency, recency, T); under BG/NBD a one-time buyer
--                         is alive with probability 1 by construction (use mbg_nbd if that
--                         matters for you)
--   expected_purchases    conditional expected repeat purchase days over clv_horizon_months
--   expected_order_value  Gamma-Gamma expected spend per purchase day (the population
--                         mean for customers without repeat purchases)
--   predicted_clv         sum over months i = 1..H of (E[X(i months)] - E[X(i-1 months)])
--                         x expected_order_value x margin / (1 + monthly_discount_rate)^i
--   historical_clv        net revenue to date x margin
-- The settings are constants and the fitted models one row, read as scalar subqueries:
-- a join with them would lose the order customer_history keeps, and the customers would
-- be sorted again.
WITH settings AS (
    SELECT
        $margin AS margin,
        CAST($monthly_discount_rate AS DOUBLE) AS monthly_discount_rate,
        CAST($clv_horizon_months AS DOUBLE) AS horizon_months,
        -- A model month is 365.25 / 12 days, in the model's time unit.
        365.25 / 12.0 / (CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END) AS units_per_month
),
predicted AS (
    SELECT
        c.customer_id,
        c.frequency,
        c.recency,
        c."T",
        c.monetary_value,
        c.revenue,
        clv_p_alive((SELECT purchase_model FROM clv_fit), CAST(c.frequency AS DOUBLE), c.recency, c."T") AS p_alive,
        clv_expected_purchases(
            (SELECT purchase_model FROM clv_fit),
            (SELECT horizon_months * units_per_month FROM settings),
            CAST(c.frequency AS DOUBLE),
            c.recency,
            c."T"
        ) AS expected_purchases,
        clv_expected_spend((SELECT spend_model FROM clv_fit), CAST(c.frequency AS DOUBLE), c.monetary_value)
            AS expected_order_value,
        (SELECT purchase_model FROM clv_fit) AS purchase_model
    FROM customer_history AS c
)
SELECT
    customer_id,
    frequency,
    recency,
    "T",
    monetary_value,
    p_alive,
    expected_purchases,
    expected_order_value,
    clv_predicted_value(
        purchase_model,
        CAST(frequency AS DOUBLE),
        recency,
        "T",
        expected_order_value,
        (SELECT margin FROM settings),
        (SELECT monthly_discount_rate FROM settings),
        (SELECT horizon_months FROM settings),
        (SELECT units_per_month FROM settings)
    ) AS predicted_clv,
    CAST(revenue AS DOUBLE) * (SELECT margin FROM settings) AS historical_clv
FROM predicted
ORDER BY customer_id
