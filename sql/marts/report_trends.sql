-- report_trends (for the report): the months of the trend charts and table, the
-- reported month and the twelve before it that have data, oldest first: their
-- kpi_monthly figures and the spend-weighted share of wallet, sum(our_spend) /
-- sum(category_spend) over the month's share_of_wallet rows that have a category spend
-- (Wallet Allocation Rule rows have none and cannot be weighted by spend); null when
-- that spend is not positive.
WITH wallet AS (
    SELECT s.period, SUM(s.our_spend) AS our_spend, SUM(s.category_spend) AS category_spend
    FROM share_of_wallet AS s
    CROSS JOIN report_period AS p
    WHERE s.category_spend IS NOT NULL AND s.our_spend IS NOT NULL
        AND s.period > p.month - INTERVAL '13 months' AND s.period <= p.month
    GROUP BY s.period
)
SELECT
    k.period,
    k.customers_end,
    k.new_customers,
    k.crr,
    k.churn_rate,
    k.revenue,
    k.orders,
    k.average_order_value,
    k.repeat_customer_rate,
    k.nps,
    k.nps_responses,
    CASE WHEN w.category_spend > 0 THEN CAST(w.our_spend AS DOUBLE) / CAST(w.category_spend AS DOUBLE) END
        AS share_of_wallet,
    k.lttv_median_days
FROM kpi_monthly AS k
CROSS JOIN report_period AS p
LEFT JOIN wallet AS w ON w.period = k.period
WHERE k.period > p.month - INTERVAL '13 months' AND k.period <= p.month
ORDER BY k.period
