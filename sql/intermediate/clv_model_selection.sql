-- The backtest of every purchase model and the model clv uses, one row per model
-- (bg_nbd, mbg_nbd, pareto_nbd): the holdout totals and errors of clv_backtest_errors
-- and the selection rule. clv_fit refits the selected model on the full history;
-- the clv_backtest mart publishes these rows.
--   selected            clv_model when it names one; with clv_model = auto the lowest
--                       mae (ties: bg_nbd, then mbg_nbd, then pareto_nbd); bg_nbd when
--                       no model has an mae (backtest off or nothing fitted)
--   selection_reason    on the selected row: which rule chose the model (null elsewhere)
WITH models (model, preference) AS (
    VALUES ('bg_nbd', 1), ('mbg_nbd', 2), ('pareto_nbd', 3)
),
settings AS (
    SELECT
        $clv_holdout_days > 0 AS backtest_on,
        $as_of - CAST($clv_holdout_days AS INT) AS calibration_end,
        CAST($clv_holdout_days AS DOUBLE) / CASE $time_unit WHEN 'week' THEN 7.0 ELSE 1.0 END AS holdout_length
),
calibration AS (
    SELECT COUNT(*) AS customers FROM clv_calibration
),
totals AS (
    SELECT
        model,
        SUM(customers) AS customers,
        SUM(actual_purchases) AS actual_purchases,
        -- Exactly, as clv_backtest_errors sums them: the same totals in any row order.
        CAST(SUM(CAST(predicted_purchases AS DECIMAL(38, 10))) AS DOUBLE) AS predicted_purchases,
        CAST(SUM(CAST(absolute_error AS DECIMAL(38, 10))) AS DOUBLE) AS absolute_error,
        CAST(SUM(CAST(squared_error AS DECIMAL(38, 10))) AS DOUBLE) AS squared_error
    FROM clv_backtest_errors
    GROUP BY model
),
scored AS (
    SELECT
        m.model,
        m.preference,
        s.backtest_on,
        s.calibration_end,
        s.holdout_length,
        k.customers AS calibration_customers,
        f.fitted,
        t.actual_purchases,
        t.predicted_purchases,
        t.absolute_error / t.customers AS mae,
        sqrt(t.squared_error / t.customers) AS rmse
    FROM models AS m
    CROSS JOIN settings AS s
    CROSS JOIN calibration AS k
    LEFT JOIN clv_backtest_fits AS f ON f.model = m.model
    LEFT JOIN totals AS t ON t.model = m.model
),
-- The backtested models by mae, ties by preference; sharing = models with the same mae.
best AS (
    SELECT
        model,
        mae,
        ROW_NUMBER() OVER (ORDER BY mae, preference) AS rank,
        COUNT(*) OVER (PARTITION BY mae) AS sharing
    FROM scored
    WHERE mae IS NOT NULL
),
choice AS (
    SELECT
        CASE
            WHEN $clv_model <> 'auto' THEN $clv_model
            ELSE COALESCE(MAX(CASE WHEN rank = 1 THEN model END), 'bg_nbd')
        END AS model,
        CASE
            WHEN $clv_model <> 'auto' THEN concat('clv_model: ', $clv_model, ' (set in the pipeline)')
            WHEN NOT $clv_holdout_days > 0 THEN
                'clv_model: auto with the backtest off (clv_holdout_days = 0): bg_nbd, the default model'
            WHEN COUNT(model) = 0 THEN
                'clv_model: auto, but no model could be backtested (see reason): bg_nbd, the default model'
            WHEN MAX(CASE WHEN rank = 1 THEN sharing END) > 1 THEN concat(
                'clv_model: auto: the lowest holdout MAE (',
                CAST(round(MIN(mae), 4) AS VARCHAR),
                '), shared by several models: the first of bg_nbd, mbg_nbd, pareto_nbd wins ties'
            )
            ELSE concat(
                'clv_model: auto: the lowest holdout MAE of ',
                CAST(COUNT(model) AS VARCHAR),
                ' backtested models (',
                CAST(round(MIN(mae), 4) AS VARCHAR),
                ')'
            )
        END AS selection_reason
    FROM best
)
SELECT
    s.model,
    s.preference,
    s.backtest_on,
    s.calibration_end,
    s.holdout_length,
    s.calibration_customers,
    s.fitted,
    s.actual_purchases,
    s.predicted_purchases,
    s.mae,
    s.rmse,
    s.model = c.model AS selected,
    CASE WHEN s.model = c.model THEN c.selection_reason END AS selection_reason
FROM scored AS s
CROSS JOIN choice AS c
