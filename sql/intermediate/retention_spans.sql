-- For each customer, the months m in which the customer was active both at the end of
-- month m - lag_months and at the end of month m: lag 1 gives retained customers
-- (kpi_monthly), lag 12 the annual retention behind clv_simple's churn_rate.
-- The two ends may fall in different spells of the same customer (a customer who
-- lapsed in between and came back), hence the pairing of spells.
WITH pairs AS (
    SELECT a.customer_id, a.first_month_active AS a_first, a.last_month_active AS a_last,
           b.first_month_active AS b_first, b.last_month_active AS b_last
    FROM activity_spells AS a
    JOIN activity_spells AS b ON a.customer_id = b.customer_id AND a.spell_number <= b.spell_number
),
spans AS (
    SELECT customer_id, 1 AS lag_months,
           GREATEST(a_first + INTERVAL '1 month', b_first) AS from_month,
           LEAST(a_last + INTERVAL '1 month', b_last) AS to_month
    FROM pairs
    UNION ALL
    SELECT customer_id, 12 AS lag_months,
           GREATEST(a_first + INTERVAL '12 months', b_first) AS from_month,
           LEAST(a_last + INTERVAL '12 months', b_last) AS to_month
    FROM pairs
)
SELECT customer_id, lag_months, from_month, to_month
FROM spans
WHERE from_month <= to_month
