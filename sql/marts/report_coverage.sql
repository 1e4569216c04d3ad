-- report_coverage (for the report): the purchases the run covers, one row: the first
-- and last purchase day of any customer and the customers (null without any).
SELECT
    MIN(first_purchase_date) AS first_purchase_date,
    MAX(last_purchase_date) AS last_purchase_date,
    CASE WHEN COUNT(*) > 0 THEN COUNT(*) END AS customers
FROM customer_summary
