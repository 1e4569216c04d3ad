-- Wallet estimates for months up to as_of's month (period is the month's first day).
SELECT customer_id, period, category_spend
FROM wallet
WHERE period <= month_start($as_of)
