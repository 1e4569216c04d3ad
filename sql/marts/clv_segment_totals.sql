-- clv_segment_totals: what clv_segments' intervals start from, one row per RFM segment
-- (and one for customers of clv without an rfm row, segment null): its customers, their
-- predicted CLV and the group's total under each draw of the models' parameters. A
-- stage of its own because clv_segments reads it three times (its base row, its
-- segments' rows and their intervals), and the draws go over every customer.
WITH settings AS (
    SELECT
        $margin AS margin,
        CAST($monthly_discount_rate AS DOUBLE) AS monthly_discount_rate,
        CAST($clv_horizon_months AS DOUBLE) AS horizon_months,
        365.25 / 12.0 / (CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END) AS units_per_month,
        200 AS draws,
        42 AS seed
),
customers AS (
    SELECT c.frequency, c.recency, c."T", c.monetary_value, c.predicted_clv, r.segment
    FROM clv AS c
    LEFT JOIN rfm AS r ON r.customer_id = c.customer_id
),
-- The models travel on one extra row per group, whose figures are null (the draws
-- skip such rows, COUNT and SUM ignore them), rather than on every customer's row: a
-- joined struct is copied onto each row it meets. A group with a model row and no
-- customers (no customer without an rfm row, say) is dropped.
model_rows AS (
    SELECT
        g.segment,
        CAST(NULL AS BIGINT) AS frequency,
        CAST(NULL AS DOUBLE) AS recency,
        CAST(NULL AS DOUBLE) AS "T",
        CAST(NULL AS DOUBLE) AS monetary_value,
        CAST(NULL AS DOUBLE) AS predicted_clv,
        f.purchase_model,
        f.spend_model
    FROM (SELECT DISTINCT segment FROM rfm UNION ALL SELECT CAST(NULL AS VARCHAR)) AS g
    CROSS JOIN clv_fit AS f
),
customer_rows AS (
    SELECT
        g.segment, g.frequency, g.recency, g."T", g.monetary_value, g.predicted_clv,
        NULL AS purchase_model, NULL AS spend_model
    FROM customers AS g
)
-- One row per segment (and one for customers without a segment), each with the
-- segment's total under every draw; the same seed gives every group the same draws.
SELECT
    g.segment,
    COUNT(g.frequency) AS customers,
    -- Summed exactly (to 10 decimals), so the total does not depend on how the
    -- rows are split over partitions.
    CAST(SUM(CAST(g.predicted_clv AS DECIMAL(38, 10))) AS DOUBLE) AS predicted_clv,
    MAX(s.draws) AS draws,
    clv_value_draws(
        g.purchase_model, g.spend_model, s.margin, s.monthly_discount_rate, s.horizon_months, s.units_per_month,
        s.draws, s.seed, CAST(g.frequency AS DOUBLE), g.recency, g."T", g.monetary_value, g.predicted_clv
    ) AS totals
FROM (SELECT * FROM customer_rows UNION ALL SELECT * FROM model_rows) AS g
CROSS JOIN settings AS s
GROUP BY g.segment
HAVING COUNT(g.frequency) > 0
