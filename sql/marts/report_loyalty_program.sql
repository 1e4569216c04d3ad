-- report_loyalty_program (for the report): the loyalty_program rows of the reported
-- month, the month before and the same month a year before (reference: month,
-- previous_month, year_ago_month), in that order. A month without a loyalty_program row
-- (no loyalty events) has nulls.
WITH months AS (
    SELECT
        unnest(['month', 'previous_month', 'year_ago_month']) AS reference,
        unnest([month, previous_month, year_ago_month]) AS period,
        unnest([1, 2, 3]) AS position
    FROM report_period
)
SELECT
    m.reference,
    m.period,
    l.members_active,
    l.points_earned,
    l.points_redeemed,
    l.redemption_rate,
    l.reward_cost,
    l.member_revenue,
    l.non_member_revenue,
    l.member_aov,
    l.non_member_aov,
    l.member_crr,
    l.non_member_crr,
    l.reward_cost_ratio,
    l.engagement_actions
FROM months AS m
LEFT JOIN loyalty_program AS l ON l.period = m.period
ORDER BY m.position
