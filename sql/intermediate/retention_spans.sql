-- For each customer, the months m in which the customer was active both at the end of
-- month m - lag_months and at the end of month m: lag 1 gives retained customers
-- (kpi_monthly), lag 12 the annual retention behind clv_simple's churn_rate.
-- The two ends may fall in different spells of the same customer (a customer who
-- lapsed in between and came back), hence the pairing of spells. Months are integers
-- (months since 1970-01), as active_ranges counts them.
WITH spells AS (
    SELECT
        customer_id,
        spell_number,
        months_between(DATE '1970-01-01', first_month_active) AS first_month,
        months_between(DATE '1970-01-01', last_month_active) AS last_month
    FROM activity_spells
),
pairs AS (
    SELECT a.customer_id, a.first_month AS a_first, a.last_month AS a_last,
           b.first_month AS b_first, b.last_month AS b_last
    FROM spells AS a
    JOIN spells AS b ON a.customer_id = b.customer_id AND a.spell_number <= b.spell_number
),
-- Both lags from one pass over the pairs (a CTE is computed per reference).
spans AS (
    SELECT
        p.customer_id,
        l.lag_months,
        GREATEST(p.a_first + l.lag_months, p.b_first) AS from_month,
        LEAST(p.a_last + l.lag_months, p.b_last) AS to_month
    FROM pairs AS p
    CROSS JOIN (VALUES (1), (12)) AS l(lag_months)
)
SELECT customer_id, lag_months, from_month, to_month
FROM spans
WHERE from_month <= to_month
