-- loyalty_program: one row per month (shared/METRICS.md); empty without loyalty events.
-- A member, in a month, is a customer with loyalty_member = true or an enroll or earn
-- event on or before the month's end (memberships). member_crr and
-- non_member_crr are kpi_monthly's crr over each population.
WITH has_events AS (
    SELECT COUNT(*) AS events FROM stg_loyalty_events
),
events AS (
    SELECT
        event_month AS month,
        SUM(CASE WHEN event_type = 'earn' THEN points ELSE 0 END) AS points_earned,
        SUM(CASE WHEN event_type = 'redeem' THEN points ELSE 0 END) AS points_redeemed,
        SUM(COALESCE(reward_cost, 0)) AS reward_cost,
        SUM(CASE WHEN event_type IN ('referral', 'review', 'social_share') THEN 1 ELSE 0 END) AS engagement_actions
    FROM stg_loyalty_events
    GROUP BY event_month
),
-- customer_months: one row per customer and month, net revenue and purchase orders.
sales AS (
    SELECT
        c.month,
        m.member_month IS NOT NULL AND m.member_month <= c.month AS is_member,
        c.revenue,
        c.orders
    FROM customer_months AS c
    LEFT JOIN memberships AS m ON m.customer_id = c.customer_id
),
sales_by_month AS (
    SELECT
        month,
        SUM(CASE WHEN is_member AND orders > 0 THEN 1 ELSE 0 END) AS members_active,
        SUM(CASE WHEN is_member THEN revenue ELSE 0 END) AS member_revenue,
        SUM(CASE WHEN NOT is_member THEN revenue ELSE 0 END) AS non_member_revenue,
        SUM(CASE WHEN is_member THEN orders ELSE 0 END) AS member_orders,
        SUM(CASE WHEN NOT is_member THEN orders ELSE 0 END) AS non_member_orders
    FROM sales
    GROUP BY month
),
crr AS (
    SELECT
        month,
        MAX(CASE WHEN population = 'member' THEN CAST(retained_customers AS DOUBLE) / NULLIF(customers_start, 0) END)
            AS member_crr,
        MAX(CASE WHEN population = 'non_member' THEN CAST(retained_customers AS DOUBLE) / NULLIF(customers_start, 0) END)
            AS non_member_crr
    FROM active_counts
    GROUP BY month
)
SELECT
    m.month AS period,
    COALESCE(s.members_active, 0) AS members_active,
    COALESCE(e.points_earned, 0) AS points_earned,
    COALESCE(e.points_redeemed, 0) AS points_redeemed,
    CAST(e.points_redeemed AS DOUBLE) / NULLIF(e.points_earned, 0) AS redemption_rate,
    CAST(COALESCE(e.reward_cost, 0) AS DECIMAL(18, 2)) AS reward_cost,
    CAST(COALESCE(s.member_revenue, 0) AS DECIMAL(18, 2)) AS member_revenue,
    CAST(COALESCE(s.non_member_revenue, 0) AS DECIMAL(18, 2)) AS non_member_revenue,
    CAST(s.member_revenue AS DOUBLE) / NULLIF(s.member_orders, 0) AS member_aov,
    CAST(s.non_member_revenue AS DOUBLE) / NULLIF(s.non_member_orders, 0) AS non_member_aov,
    c.member_crr,
    c.non_member_crr,
    CAST(COALESCE(e.reward_cost, 0) AS DOUBLE) / NULLIF(CAST(s.member_revenue AS DOUBLE), 0) AS reward_cost_ratio,
    COALESCE(e.engagement_actions, 0) AS engagement_actions
FROM months AS m
CROSS JOIN has_events AS h
LEFT JOIN events AS e ON e.month = m.month
LEFT JOIN sales_by_month AS s ON s.month = m.month
LEFT JOIN crr AS c ON c.month = m.month
WHERE h.events > 0
ORDER BY m.month
