-- The populations whose retention is measured, as month ranges per customer
-- (NULL = unbounded): everyone ('all'), loyalty members and non-members.
-- A member, in a month, is a customer with loyalty_member = true or with an enroll or
-- earn event on or before the month's end; membership does not end.
WITH member_since AS (
    SELECT customer_id, MIN(member_month) AS member_month
    FROM (
        SELECT customer_id, DATE '1900-01-01' AS member_month FROM stg_customers WHERE loyalty_member
        UNION ALL
        SELECT customer_id, event_month FROM stg_loyalty_events WHERE event_type IN ('enroll', 'earn')
    ) AS joins
    GROUP BY customer_id
),
buyers AS (
    SELECT DISTINCT customer_id FROM activity_spells
)
SELECT customer_id, 'all' AS population, CAST(NULL AS DATE) AS from_month, CAST(NULL AS DATE) AS to_month
FROM buyers
UNION ALL
SELECT b.customer_id, 'member', m.member_month, CAST(NULL AS DATE)
FROM buyers AS b
JOIN member_since AS m ON m.customer_id = b.customer_id
UNION ALL
SELECT b.customer_id, 'non_member', CAST(NULL AS DATE), m.member_month - INTERVAL '1 month'
FROM buyers AS b
LEFT JOIN member_since AS m ON m.customer_id = b.customer_id
