-- Survey indices per month over each respondent's latest response in that month.
-- An NPS-style index of a 0..10 score is % 9-10 minus % 0-6, in [-100, 100].
WITH latest AS (
    -- The first answer of each customer and month in this order is the latest. Two
    -- answers at the same instant: the higher score counts, so reruns agree. (LAG over
    -- one order rather than a window per customer and month: see share_of_wallet.)
    SELECT
        *,
        CASE
            WHEN LAG(customer_id) OVER latest_first = customer_id AND LAG(response_month) OVER latest_first = response_month
                THEN 2
            ELSE 1
        END AS recency_rank
    FROM stg_survey_responses
    WINDOW latest_first AS (ORDER BY customer_id, response_month, response_ts DESC, nps_score DESC NULLS LAST)
),
indices AS (
    SELECT
        response_month AS month,
        COUNT(nps_score) AS nps_responses,
        100.0 * (SUM(CASE WHEN nps_score >= 9 THEN 1 ELSE 0 END) - SUM(CASE WHEN nps_score <= 6 THEN 1 ELSE 0 END))
            / NULLIF(COUNT(nps_score), 0) AS nps,
        100.0 * (SUM(CASE WHEN repurchase_intent >= 9 THEN 1 ELSE 0 END) - SUM(CASE WHEN repurchase_intent <= 6 THEN 1 ELSE 0 END))
            / NULLIF(COUNT(repurchase_intent), 0) AS repurchase_index,
        100.0 * (SUM(CASE WHEN upsell_intent >= 9 THEN 1 ELSE 0 END) - SUM(CASE WHEN upsell_intent <= 6 THEN 1 ELSE 0 END))
            / NULLIF(COUNT(upsell_intent), 0) AS upsell_index
    FROM latest
    WHERE recency_rank = 1
    GROUP BY response_month
)
SELECT
    month,
    nps,
    nps_responses,
    -- The mean of the indices that have responses.
    (COALESCE(nps, 0) + COALESCE(repurchase_index, 0) + COALESCE(upsell_index, 0))
        / NULLIF(
            CASE WHEN nps IS NULL THEN 0 ELSE 1 END + CASE WHEN repurchase_index IS NULL THEN 0 ELSE 1 END
                + CASE WHEN upsell_index IS NULL THEN 0 ELSE 1 END,
            0
        ) AS loyalty_index
FROM indices
