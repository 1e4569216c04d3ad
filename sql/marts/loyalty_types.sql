-- loyalty_types: the kind of loyalty of each repeat customer (frequency >= 1), first
-- match wins (shared/METRICS.md); thresholds are pipeline parameters:
--   truly_loyal     latest NPS >= loyal_nps_min, or >= loyal_categories_min distinct
--                   categories with f_score >= loyal_f_score_min
--   price_driven    discounts >= price_discount_share of gross spend (amount + discount)
--   program_driven  a member with a redeem in the last program_redeem_days days (365:
--                   the contract's 12 months)
--   convenience     >= convenience_channel_share of purchase orders in one channel
--   satisfied       every other repeat customer
-- reason names the rule that matched and the customer's figure.
WITH repeaters AS (
    SELECT customer_id, distinct_categories FROM customer_history WHERE frequency >= 1
),
-- Each customer's first answer in this order is the latest (LAG over one order rather
-- than a window per customer: see share_of_wallet).
latest_nps AS (
    SELECT customer_id, nps_score
    FROM (
        SELECT customer_id, nps_score, LAG(customer_id) OVER latest_first AS previous_customer
        FROM stg_survey_responses
        WHERE nps_score IS NOT NULL
        WINDOW latest_first AS (ORDER BY customer_id, response_ts DESC, nps_score DESC)
    ) AS ranked
    WHERE previous_customer IS DISTINCT FROM customer_id
),
-- Purchase orders per customer and channel, with discounts and gross spend (amount +
-- discount), in one pass over the orders. Orders without a channel count in the
-- total but are no channel of their own.
per_channel AS (
    SELECT
        customer_id,
        channel,
        COUNT(*) AS orders,
        SUM(COALESCE(discount_amount, 0)) AS discounts,
        SUM(net_amount + COALESCE(discount_amount, 0)) AS gross_spend
    FROM stg_transactions
    WHERE is_purchase
    GROUP BY customer_id, channel
),
orders AS (
    SELECT
        customer_id,
        CAST(SUM(discounts) AS DOUBLE) / NULLIF(CAST(SUM(gross_spend) AS DOUBLE), 0) AS discount_share,
        CAST(MAX(CASE WHEN channel IS NOT NULL THEN orders END) AS DOUBLE) / NULLIF(SUM(orders), 0)
            AS top_channel_share
    FROM per_channel
    GROUP BY customer_id
),
redeemers AS (
    SELECT DISTINCT e.customer_id
    FROM stg_loyalty_events AS e
    JOIN memberships AS m ON m.customer_id = e.customer_id
    WHERE e.event_type = 'redeem' AND e.event_date > $as_of - $program_redeem_days
),
facts AS (
    SELECT
        r.customer_id,
        n.nps_score,
        r.distinct_categories,
        f.f_score,
        o.discount_share,
        x.customer_id IS NOT NULL AS redeemed,
        o.top_channel_share
    FROM repeaters AS r
    LEFT JOIN latest_nps AS n ON n.customer_id = r.customer_id
    LEFT JOIN rfm AS f ON f.customer_id = r.customer_id
    LEFT JOIN orders AS o ON o.customer_id = r.customer_id
    LEFT JOIN redeemers AS x ON x.customer_id = r.customer_id
)
SELECT
    customer_id,
    CASE
        WHEN nps_score >= $loyal_nps_min THEN 'truly_loyal'
        WHEN distinct_categories >= $loyal_categories_min AND f_score >= $loyal_f_score_min THEN 'truly_loyal'
        WHEN discount_share >= $price_discount_share THEN 'price_driven'
        WHEN redeemed THEN 'program_driven'
        WHEN top_channel_share >= $convenience_channel_share THEN 'convenience'
        ELSE 'satisfied'
    END AS loyalty_type,
    CASE
        WHEN nps_score >= $loyal_nps_min THEN concat('latest NPS ', CAST(nps_score AS VARCHAR))
        WHEN distinct_categories >= $loyal_categories_min AND f_score >= $loyal_f_score_min
            THEN concat(CAST(distinct_categories AS VARCHAR), ' categories with f_score ', CAST(f_score AS VARCHAR))
        WHEN discount_share >= $price_discount_share
            THEN concat('discounts are ', CAST(CAST(round(discount_share * 100) AS BIGINT) AS VARCHAR), '% of gross spend')
        WHEN redeemed THEN 'member who redeemed points recently'
        WHEN top_channel_share >= $convenience_channel_share
            THEN concat(CAST(CAST(round(top_channel_share * 100) AS BIGINT) AS VARCHAR), '% of orders in one channel')
        ELSE 'repeat customer matching no other rule'
    END AS reason
FROM facts
ORDER BY customer_id
