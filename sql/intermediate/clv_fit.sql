-- The fitted CLV models, one row: the purchase model chosen by clv_model (BG/NBD by
-- default; Pareto/NBD or MBG/NBD) over (frequency, recency, T) of every customer, and
-- Gamma-Gamma over (frequency, monetary_value) of repeat customers (the fit leaves out
-- one-time buyers and non-positive spend, and counts them). A fit that does not
-- converge, or data with too few repeat buyers, fails the stage with the reason.
SELECT
    clv_fit_purchases($clv_model, CAST(frequency AS DOUBLE), recency, "T") AS purchase_model,
    clv_fit_spend(CAST(frequency AS DOUBLE), monetary_value) AS spend_model
FROM customer_summary
