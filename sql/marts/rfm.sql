-- rfm: one row per customer with a purchase day in the lookback (shared/METRICS.md).
-- Scores are exact integers and tie-safe: with n scored customers and k the number
-- whose value is no better than this customer's (ties included), score = ceil(5k / n).
-- Equal values get equal scores; the most recent, frequent, highest spenders score 5.
-- The segment is the first row of the rfm_segment_map seed (by priority) whose r and f
-- ranges hold the customer's scores.
WITH days AS (
    SELECT d.customer_id, MAX(d.purchase_date) AS last_purchase_date, COUNT(*) AS frequency
    FROM purchase_days AS d
    -- rfm_lookback_days = 0 means all history.
    WHERE ($rfm_lookback_days = 0 OR d.purchase_date > $as_of - $rfm_lookback_days)
    GROUP BY d.customer_id
),
spend AS (
    SELECT t.customer_id, SUM(t.net_amount) AS monetary
    FROM stg_transactions AS t
    WHERE ($rfm_lookback_days = 0 OR t.order_date > $as_of - $rfm_lookback_days)
    GROUP BY t.customer_id
),
per_customer AS (
    SELECT d.customer_id, d.last_purchase_date, d.frequency, s.monetary
    FROM days AS d
    JOIN spend AS s ON s.customer_id = d.customer_id
),
ranked AS (
    SELECT
        c.customer_id,
        $as_of - c.last_purchase_date AS recency_days,
        c.frequency,
        c.monetary,
        COUNT(*) OVER () AS n,
        -- cume_dist() is k / n with ties included (the share of rows ordered at or before
        -- this one's value); k is recovered exactly by rounding, and scores use integers.
        cume_dist() OVER (ORDER BY $as_of - c.last_purchase_date DESC) AS share_r,
        cume_dist() OVER (ORDER BY c.frequency) AS share_f,
        cume_dist() OVER (ORDER BY c.monetary) AS share_m
    FROM per_customer AS c
    WHERE c.frequency > 0
),
scored AS (
    SELECT
        customer_id,
        recency_days,
        frequency,
        monetary,
        CAST((5 * CAST(round(share_r * n) AS BIGINT) + n - 1) / n AS INT) AS r_score,
        CAST((5 * CAST(round(share_f * n) AS BIGINT) + n - 1) / n AS INT) AS f_score,
        CAST((5 * CAST(round(share_m * n) AS BIGINT) + n - 1) / n AS INT) AS m_score
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
        JOIN rfm_segment_map AS m
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
