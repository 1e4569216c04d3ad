-- clv_model: one row per fitted parameter (shared/METRICS.md). customers is the number
-- of customers the fit used; customers_left_out those it could not use (Gamma-Gamma:
-- one-time buyers and repeat customers with non-positive spend).
WITH models AS (
    SELECT purchase_model AS fitted FROM clv_fit
    UNION ALL
    SELECT spend_model FROM clv_fit
)
SELECT
    fitted['model'] AS model,
    unnest(fitted['parameters']) AS parameter,
    unnest(fitted['values']) AS value,
    fitted['log_likelihood'] AS log_likelihood,
    fitted['customers'] AS customers,
    fitted['converged'] AS converged,
    fitted['iterations'] AS iterations,
    fitted['customers_left_out'] AS customers_left_out
FROM models
