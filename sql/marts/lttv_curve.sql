-- lttv_curve (an addition to the contract's tables, for the report): the Kaplan-Meier
-- curve of time to the first value moment for customers acquired in the 12 months
-- ending with as_of's month, censored at as_of. One row per day on which someone
-- reached value: reached_share = 1 - S(days), with S(t) = product over event days
-- t_i <= t of (1 - reached_i / at_risk_i) (Kaplan & Meier 1958).
WITH recent AS (
    SELECT d.days, d.reached_value
    FROM lttv_durations AS d
    WHERE d.cohort_month > month_start($as_of) - INTERVAL '12 months'
),
by_day AS (
    SELECT
        days,
        SUM(CASE WHEN reached_value THEN 1 ELSE 0 END) AS reached,
        COUNT(*) AS leaving
    FROM recent
    GROUP BY days
),
at_risk AS (
    SELECT
        days,
        reached,
        SUM(leaving) OVER (ORDER BY days DESC ROWS UNBOUNDED PRECEDING) AS customers_at_risk
    FROM by_day
)
SELECT
    days,
    customers_at_risk,
    reached,
    1.0 - exp(SUM(ln(1.0 - CAST(reached AS DOUBLE) / customers_at_risk)) OVER (ORDER BY days ROWS UNBOUNDED PRECEDING))
        AS reached_share
FROM at_risk
WHERE reached > 0
ORDER BY days
