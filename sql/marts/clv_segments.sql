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
WITH draws AS (
    SELECT segment, unnest(range(draws)) AS draw, unnest(totals) AS total
    FROM clv_segment_totals
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
    FROM clv_segment_totals
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
FROM clv_segment_totals AS g
JOIN segment_intervals AS i ON i.segment = g.segment
ORDER BY scope, segment
