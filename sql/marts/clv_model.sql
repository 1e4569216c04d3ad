-- clv_model: one row per fitted parameter (shared/METRICS.md). std_error is the square
-- root of the diagonal of the inverse of the observed information matrix (the Hessian
-- of the negative log-likelihood at the optimum) in the parameter's natural scale;
-- null when that matrix is singular or not positive definite (the run warns).
-- customers is the number of customers the fit used; customers_left_out those it
-- could not use (Gamma-Gamma: one-time buyers and repeat customers with non-positive
-- spend).
WITH models AS (
    SELECT purchase_model AS fitted FROM clv_fit
    UNION ALL
    SELECT spend_model FROM clv_fit
)
SELECT
    fitted['model'] AS model,
    unnest(fitted['parameters']) AS parameter,
    unnest(fitted['values']) AS value,
    unnest(fitted['std_errors']) AS std_error,
    fitted['log_likelihood'] AS log_likelihood,
    fitted['customers'] AS customers,
    fitted['converged'] AS converged,
    fitted['iterations'] AS iterations,
    fitted['customers_left_out'] AS customers_left_out
FROM models
