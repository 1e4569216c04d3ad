-- clv_segments: the predicted CLV of the whole base and of each RFM segment, with a
-- p10-p90 interval from the uncertainty of the models' parameters. One row with
-- scope 'base' (segment null; every customer of clv) and one per RFM segment
-- (scope 'segment'). Customers without an rfm row (outside rfm_lookback_days) count
-- in the base only.
--   customers                    customers of clv in the group
--   predicted_clv                sum of clv.predicted_clv over them
--   predicted_clv_p10, _p90      10th and 90th percentiles of the group's predicted
--                                CLV over 200 draws of the parameters from their
--                                asymptotic normal distribution (of the log-parameters:
--                                BG/NBD or its alternative, and Gamma-Gamma,
--                                independently), seed 42 — the same numbers every run
--                                on the same data. Null when a model has no standard
--                                errors. The interval reflects the parameters'
--                                uncertainty only (not which customers buy, nor the
--                                model's form); see the README.
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
),
-- One row per segment (and one for customers without a segment), each with the
-- segment's total under every draw; the same seed gives every group the same draws.
groups AS (
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
),
draws AS (
    SELECT segment, unnest(range(draws)) AS draw, unnest(totals) AS total
    FROM groups
),
-- The base's total under each draw: the sum over groups (null if a group has none),
-- added in the order of the segments' names so the result does not depend on the
-- order the groups come in.
base_draws AS (
    SELECT DISTINCT
        draw,
        CASE WHEN COUNT(*) OVER by_segment = COUNT(total) OVER by_segment THEN SUM(total) OVER by_segment END
            AS total
    FROM draws
    WINDOW by_segment AS (
        PARTITION BY draw ORDER BY segment NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    )
),
base AS (
    SELECT DISTINCT
        SUM(customers) OVER by_segment AS customers,
        SUM(predicted_clv) OVER by_segment AS predicted_clv
    FROM groups
    WINDOW by_segment AS (ORDER BY segment NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
segment_intervals AS (
    SELECT segment, percentile_cont(total, 0.1) AS p10, percentile_cont(total, 0.9) AS p90
    FROM draws
    WHERE segment IS NOT NULL
    GROUP BY segment
)
SELECT
    'base' AS scope,
    CAST(NULL AS VARCHAR) AS segment,
    MAX(b.customers) AS customers,
    MAX(b.predicted_clv) AS predicted_clv,
    percentile_cont(d.total, 0.1) AS predicted_clv_p10,
    percentile_cont(d.total, 0.9) AS predicted_clv_p90
FROM base_draws AS d
CROSS JOIN base AS b
UNION ALL
SELECT 'segment', g.segment, g.customers, g.predicted_clv, i.p10, i.p90
FROM groups AS g
JOIN segment_intervals AS i ON i.segment = g.segment
ORDER BY scope, segment
