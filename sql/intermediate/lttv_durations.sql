-- Loyalty time-to-value, one row per acquired customer: the acquisition day (signup
-- when known, else the first purchase day), the first value moment on or after it
-- (lttv_value_moment: second_purchase | first_redeem | tier_change), and the days in
-- between. Customers who have not reached value are censored at as_of.
WITH signups AS (
    SELECT customer_id, MIN(signup_date) AS signup_date
    FROM stg_customers
    WHERE signup_date <= $as_of
    GROUP BY customer_id
),
acquired AS (
    SELECT
        COALESCE(s.customer_id, c.customer_id) AS customer_id,
        COALESCE(s.signup_date, c.first_purchase_date) AS acquisition_date
    FROM signups AS s
    FULL OUTER JOIN customer_history AS c ON c.customer_id = s.customer_id
),
moments AS (
    SELECT customer_id, purchase_date AS moment_date, 'second_purchase' AS moment
    FROM purchase_days
    WHERE day_number = 2
    UNION ALL
    SELECT customer_id, event_date, 'first_redeem' FROM stg_loyalty_events WHERE event_type = 'redeem'
    UNION ALL
    SELECT customer_id, event_date, 'tier_change' FROM stg_loyalty_events WHERE event_type = 'tier_change'
),
-- Each customer's first value moment on or after acquisition (none: censored).
reached AS (
    SELECT a.customer_id, a.acquisition_date, MIN(m.moment_date) AS value_date
    FROM acquired AS a
    LEFT JOIN moments AS m
        ON m.customer_id = a.customer_id AND m.moment = $lttv_value_moment AND m.moment_date >= a.acquisition_date
    WHERE a.acquisition_date IS NOT NULL
    GROUP BY a.customer_id, a.acquisition_date
)
SELECT
    customer_id,
    acquisition_date,
    month_start(acquisition_date) AS cohort_month,
    value_date,
    value_date IS NOT NULL AS reached_value,
    COALESCE(value_date, $as_of) - acquisition_date AS days
FROM reached
