-- rfm: one row per customer with a purchase day in the lookback (shared/METRICS.md).
-- Scores are exact integers and tie-safe: with n scored customers and k the number
-- whose value is no better than this customer's (ties included), score = ceil(5k / n).
-- Equal values get equal scores; the most recent, frequent, highest spenders score 5.
-- The segment is the first row of the rfm_segment_map seed (by priority) whose r and f
-- ranges hold the customer's scores.
WITH ranked AS (
    -- rank() over "better first" is 1 + the number of customers strictly better, so
    -- n + 1 - rank is k, the number no better than this one (ties included). rank()
    -- streams through the sorted rows; cume_dist() would hold them all in memory.
    SELECT
        c.customer_id,
        c.recency_days,
        c.frequency,
        c.monetary,
        p.n,
        p.n + 1 - rank() OVER (ORDER BY c.recency_days) AS k_r,
        p.n + 1 - rank() OVER (ORDER BY c.frequency DESC) AS k_f,
        p.n + 1 - rank() OVER (ORDER BY c.monetary DESC) AS k_m
    FROM rfm_values AS c
    CROSS JOIN (SELECT COUNT(*) AS n FROM rfm_values) AS p
),
scored AS (
    SELECT
        customer_id,
        recency_days,
        frequency,
        monetary,
        CAST((5 * k_r + n - 1) / n AS INT) AS r_score,
        CAST((5 * k_f + n - 1) / n AS INT) AS f_score,
        CAST((5 * k_m + n - 1) / n AS INT) AS m_score
    FROM ranked
),
-- The map as a grid of the 25 (r_score, f_score) pairs, each with its first matching
-- segment, so customers are matched with an equality join.
segment_grid AS (
    SELECT r_score, f_score, segment
    FROM (
        SELECT
            r.score AS r_score,
            f.score AS f_score,
            m.segment,
            ROW_NUMBER() OVER (PARTITION BY r.score, f.score ORDER BY m.priority) AS match_rank
        FROM (VALUES (1), (2), (3), (4), (5)) AS r(score)
        CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS f(score)
        JOIN stg_rfm_segment_map AS m
            ON r.score BETWEEN m.r_min AND m.r_max AND f.score BETWEEN m.f_min AND m.f_max
    ) AS matches
    WHERE match_rank = 1
)
SELECT
    s.customer_id,
    s.recency_days,
    s.frequency,
    CAST(s.monetary AS DECIMAL(18, 2)) AS monetary,
    s.r_score,
    s.f_score,
    s.m_score,
    concat(CAST(s.r_score AS VARCHAR), CAST(s.f_score AS VARCHAR), CAST(s.m_score AS VARCHAR)) AS rfm_cell,
    g.segment
FROM scored AS s
LEFT JOIN segment_grid AS g ON g.r_score = s.r_score AND g.f_score = s.f_score
ORDER BY s.customer_id
