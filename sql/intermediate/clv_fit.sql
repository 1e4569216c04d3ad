-- The fitted CLV models, one row: the purchase model selected in clv_model_selection
-- (the model clv_model names, or with clv_model = auto the one with the lowest holdout
-- MAE) over (frequency, recency, T) of every customer — the full history — and
-- Gamma-Gamma over (frequency, monetary_value) of repeat customers (the fit leaves out
-- one-time buyers and non-positive spend, and counts them). A fit that does not
-- converge, or data with too few repeat buyers, fails the stage with the reason.
SELECT
    clv_fit_purchases(b.model, CAST(c.frequency AS DOUBLE), c.recency, c."T") AS purchase_model,
    clv_fit_spend(CAST(c.frequency AS DOUBLE), c.monetary_value) AS spend_model
FROM customer_history AS c
CROSS JOIN (SELECT model FROM clv_model_selection WHERE selected) AS b
