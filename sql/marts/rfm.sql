-- rfm: one row per customer with a purchase day in the lookback (shared/METRICS.md).
-- Scores are exact integers and tie-safe: with n scored customers and k the number
-- whose value is no better than this customer's (ties included), score = ceil(5k / n).
-- Equal values get equal scores; the most recent, frequent, highest spenders score 5.
-- The segment is the first row of the rfm_segment_map seed (by priority) whose r and f
-- ranges hold the customer's scores.
--
-- k only grows as a value gets better, so each score is a step function of the value
-- with four steps: ceil(5k / n) = 1 + #{s in 1..4 : 5k > s n}, and the values with
-- 5k > s n are those at least as good as the worst of them, the step's threshold. The
-- thresholds come from each measure's distinct values alone, counted and ranked by
-- themselves (a thousand days or purchase counts instead of a row per customer);
-- customers are then scored in one pass, in the order rfm_values keeps, instead of
-- sorting every customer's row once per measure and again by customer. (monetary is
-- never null: every scored customer has orders.)
WITH population AS (
    SELECT COUNT(*) AS n FROM rfm_values
),
-- With "better first" order, rank() is 1 + the number of customers strictly better, so
-- n + 1 - rank is k, the number no better than this one (ties included): over distinct
-- values, n minus the customers of the values before this one in that order.
recency_k AS (
    SELECT v.value, p.n,
           p.n - (SUM(v.customers) OVER (ORDER BY v.value ROWS UNBOUNDED PRECEDING) - v.customers) AS k
    FROM (SELECT recency_days AS value, COUNT(*) AS customers FROM rfm_values GROUP BY recency_days) AS v
    CROSS JOIN population AS p
),
frequency_k AS (
    SELECT v.value, p.n,
           p.n - (SUM(v.customers) OVER (ORDER BY v.value DESC ROWS UNBOUNDED PRECEDING) - v.customers) AS k
    FROM (SELECT frequency AS value, COUNT(*) AS customers FROM rfm_values GROUP BY frequency) AS v
    CROSS JOIN population AS p
),
monetary_k AS (
    SELECT v.value, p.n,
           p.n - (SUM(v.customers) OVER (ORDER BY v.value DESC ROWS UNBOUNDED PRECEDING) - v.customers) AS k
    FROM (SELECT monetary AS value, COUNT(*) AS customers FROM rfm_values GROUP BY monetary) AS v
    CROSS JOIN population AS p
),
-- The worst value of each step: r_s the largest recency_days, f_s and m_s the smallest
-- frequency and monetary with 5k > s n (null when no value has it). One row, read as a
-- scalar subquery: a join with it would lose the order customers come in.
thresholds AS (
    SELECT named_struct(
        'r_1', r.r_1, 'r_2', r.r_2, 'r_3', r.r_3, 'r_4', r.r_4,
        'f_1', f.f_1, 'f_2', f.f_2, 'f_3', f.f_3, 'f_4', f.f_4,
        'm_1', m.m_1, 'm_2', m.m_2, 'm_3', m.m_3, 'm_4', m.m_4
    ) AS t
    FROM (
        SELECT
            MAX(value) FILTER (WHERE 5 * k > n) AS r_1,
            MAX(value) FILTER (WHERE 5 * k > 2 * n) AS r_2,
            MAX(value) FILTER (WHERE 5 * k > 3 * n) AS r_3,
            MAX(value) FILTER (WHERE 5 * k > 4 * n) AS r_4
        FROM recency_k
    ) AS r
    CROSS JOIN (
        SELECT
            MIN(value) FILTER (WHERE 5 * k > n) AS f_1,
            MIN(value) FILTER (WHERE 5 * k > 2 * n) AS f_2,
            MIN(value) FILTER (WHERE 5 * k > 3 * n) AS f_3,
            MIN(value) FILTER (WHERE 5 * k > 4 * n) AS f_4
        FROM frequency_k
    ) AS f
    CROSS JOIN (
        SELECT
            MIN(value) FILTER (WHERE 5 * k > n) AS m_1,
            MIN(value) FILTER (WHERE 5 * k > 2 * n) AS m_2,
            MIN(value) FILTER (WHERE 5 * k > 3 * n) AS m_3,
            MIN(value) FILTER (WHERE 5 * k > 4 * n) AS m_4
        FROM monetary_k
    ) AS m
),
scored AS (
    SELECT
        customer_id,
        recency_days,
        frequency,
        monetary,
        CAST(
            1 + CASE WHEN recency_days <= (SELECT t FROM thresholds)['r_1'] THEN 1 ELSE 0 END
                + CASE WHEN recency_days <= (SELECT t FROM thresholds)['r_2'] THEN 1 ELSE 0 END
                + CASE WHEN recency_days <= (SELECT t FROM thresholds)['r_3'] THEN 1 ELSE 0 END
                + CASE WHEN recency_days <= (SELECT t FROM thresholds)['r_4'] THEN 1 ELSE 0 END
            AS INT
        ) AS r_score,
        CAST(
            1 + CASE WHEN frequency >= (SELECT t FROM thresholds)['f_1'] THEN 1 ELSE 0 END
                + CASE WHEN frequency >= (SELECT t FROM thresholds)['f_2'] THEN 1 ELSE 0 END
                + CASE WHEN frequency >= (SELECT t FROM thresholds)['f_3'] THEN 1 ELSE 0 END
                + CASE WHEN frequency >= (SELECT t FROM thresholds)['f_4'] THEN 1 ELSE 0 END
            AS INT
        ) AS f_score,
        CAST(
            1 + CASE WHEN monetary >= (SELECT t FROM thresholds)['m_1'] THEN 1 ELSE 0 END
                + CASE WHEN monetary >= (SELECT t FROM thresholds)['m_2'] THEN 1 ELSE 0 END
                + CASE WHEN monetary >= (SELECT t FROM thresholds)['m_3'] THEN 1 ELSE 0 END
                + CASE WHEN monetary >= (SELECT t FROM thresholds)['m_4'] THEN 1 ELSE 0 END
            AS INT
        ) AS m_score
    FROM rfm_values
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
FROM segment_grid AS g
RIGHT JOIN scored AS s ON g.r_score = s.r_score AND g.f_score = s.f_score
ORDER BY s.customer_id
