-- Customers with their signup day in the pipeline's timezone. Empty when the
-- optional customers input is absent.
SELECT
    customer_id,
    local_date(signup_ts, $timezone) AS signup_date,
    acquisition_channel,
    COALESCE(loyalty_member, false) AS loyalty_member,
    loyalty_tier
FROM customers
