-- Activity spells: the periods in which a customer is continuously active, i.e. has a
-- purchase day in the trailing active_window_days (purchase_days numbers the spells:
-- purchase days less than a window apart chain into one).
--
-- Monthly counts only ask "active at the end of month m?" (the month's last day, or
-- as_of in as_of's month). A spell answers yes for a contiguous range of months,
-- [first_month_active, last_month_active]; later stages count customers by sweeping
-- over these ranges, which stays linear in the number of spells however many
-- customers and months there are (no customers x months join).
WITH spells AS (
    SELECT customer_id, activity_spell AS spell_number, MIN(purchase_date) AS spell_start,
           MAX(purchase_date) AS last_purchase_date
    FROM purchase_days
    GROUP BY customer_id, activity_spell
),
bounded AS (
    SELECT
        s.customer_id,
        s.spell_number,
        s.spell_start,
        s.last_purchase_date + $active_window_days - 1 AS active_until
    FROM spells AS s
)
SELECT
    customer_id,
    spell_number,
    spell_start,
    active_until,
    month_start(spell_start) AS first_month_active,
    -- The last month whose end the spell covers: as_of's month if still active at
    -- as_of, else the month before the one in which the customer became inactive.
    CASE
        WHEN active_until >= $as_of THEN month_start($as_of)
        ELSE month_start(active_until + 1) - INTERVAL '1 month'
    END AS last_month_active
FROM bounded
