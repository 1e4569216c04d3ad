-- Loyalty events dated up to as_of, with their calendar day and month.
SELECT
    customer_id,
    local_date(event_ts, $timezone) AS event_date,
    month_start(local_date(event_ts, $timezone)) AS event_month,
    event_type,
    points,
    reward_cost
FROM loyalty_events
WHERE local_date(event_ts, $timezone) <= $as_of
