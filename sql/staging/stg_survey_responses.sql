-- Survey responses dated up to as_of, with their calendar day and month.
SELECT
    customer_id,
    local_date(response_ts, $timezone) AS response_date,
    month_start(local_date(response_ts, $timezone)) AS response_month,
    response_ts,
    nps_score,
    repurchase_intent,
    upsell_intent,
    category_spend,
    brand_rank,
    brands_used
FROM survey_responses
WHERE local_date(response_ts, $timezone) <= $as_of
