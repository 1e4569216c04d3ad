-- Loyalty members and the month from which each is one: a customer with
-- loyalty_member = true is a member all along (from 1900-01), one with an enroll or
-- earn event from the month of the first. Membership does not end. Retention is
-- measured for all customers, members and non-members (active_counts).
SELECT customer_id, MIN(member_month) AS member_month
FROM (
    SELECT customer_id, DATE '1900-01-01' AS member_month FROM stg_customers WHERE loyalty_member
    UNION ALL
    SELECT customer_id, event_month FROM stg_loyalty_events WHERE event_type IN ('enroll', 'earn')
) AS joins
GROUP BY customer_id
