-- share_of_wallet: one row per customer and month with a wallet estimate
-- (shared/METRICS.md). our_spend is the customer's net revenue in the month.
-- Estimates, first available wins: the wallet input, then the latest survey
-- category_spend of the month (both source 'wallet'), then the Wallet Allocation Rule
-- from the latest survey brand_rank and brands_used (source 'war'):
-- share = (1 - rank / (n + 1)) * (2 / n). Shares above 1 are capped and flagged: the
-- estimate is inconsistent with what the customer spent with us. A WAR row has no
-- category_spend; a negative our_spend (net refunds) gives a share of 0.
WITH our_spend AS (
    SELECT customer_id, month AS period, revenue AS our_spend FROM customer_months
),
-- The latest answer of the month of each kind: a category_spend answer wins over a
-- brand-rank answer whenever one exists in the month, even an earlier one.
survey_spend AS (
    SELECT customer_id, response_month, response_ts, category_spend
    FROM stg_survey_responses
    WHERE category_spend IS NOT NULL
),
survey_war AS (
    SELECT customer_id, response_month, response_ts,
           (1.0 - CAST(brand_rank AS DOUBLE) / (brands_used + 1)) * (2.0 / brands_used) AS war_share
    FROM stg_survey_responses
    WHERE brand_rank IS NOT NULL AND brands_used > 0
),
estimates AS (
    SELECT customer_id, period, category_spend, CAST(NULL AS DOUBLE) AS war_share, 1 AS preference,
           CAST(NULL AS TIMESTAMP) AS answered_at
    FROM stg_wallet
    UNION ALL
    SELECT customer_id, response_month, category_spend, NULL, 2, response_ts FROM survey_spend
    UNION ALL
    SELECT customer_id, response_month, NULL, war_share, 3, response_ts FROM survey_war
),
chosen AS (
    -- The first estimate of each customer and period in this order is the one used.
    -- Ties within a kind (two wallet rows for one month) take the larger estimate, so
    -- reruns agree. (A ROW_NUMBER partitioned by customer and period would do the same,
    -- but DataFusion runs a window once per partition: at a million partitions, slowly.)
    SELECT
        *,
        CASE WHEN LAG(customer_id) OVER ranking = customer_id AND LAG(period) OVER ranking = period THEN 2 ELSE 1 END
            AS choice
    FROM estimates
    WINDOW ranking AS (
        ORDER BY customer_id, period, preference, answered_at DESC NULLS LAST, category_spend DESC NULLS LAST,
            war_share DESC
    )
),
raw_shares AS (
    SELECT
        c.customer_id,
        c.period,
        COALESCE(o.our_spend, 0) AS our_spend,
        c.category_spend,
        CASE
            WHEN c.war_share IS NOT NULL THEN c.war_share
            WHEN c.category_spend > 0 THEN CAST(COALESCE(o.our_spend, 0) AS DOUBLE) / CAST(c.category_spend AS DOUBLE)
            WHEN COALESCE(o.our_spend, 0) > 0 THEN 2.0 -- spend with us against an estimate of 0: inconsistent
        END AS share,
        CASE WHEN c.war_share IS NOT NULL THEN 'war' ELSE 'wallet' END AS source
    FROM chosen AS c
    LEFT JOIN our_spend AS o ON o.customer_id = c.customer_id AND o.period = c.period
    WHERE c.choice = 1
)
SELECT
    customer_id,
    period,
    CAST(our_spend AS DECIMAL(18, 2)) AS our_spend,
    CAST(category_spend AS DECIMAL(18, 2)) AS category_spend,
    GREATEST(LEAST(share, 1.0), 0.0) AS share_of_wallet,
    COALESCE(share > 1.0, false) AS capped,
    source
FROM raw_shares
ORDER BY customer_id, period
