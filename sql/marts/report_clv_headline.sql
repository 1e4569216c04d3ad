-- report_clv_headline (for the report): the predicted CLV of the base, the sum of
-- clv.predicted_clv over every customer (a value that is not a finite number left out;
-- null without any), in the shape of report_headlines. The sum is exact (the values to
-- ten decimals, as decimals), so it does not depend on the order rows arrive in. It is a snapshot at as_of
-- (period), not a monthly figure: a run computes one snapshot, so the comparison
-- columns are null. A table of its own because clv may be missing (clv_fit with
-- on_error: warn), and the other headlines must not go missing with it.
WITH total AS (
    SELECT CAST(SUM(CAST(predicted_clv AS DECIMAL(38, 10))) AS DOUBLE) AS value
    FROM clv
    WHERE NOT isnan(predicted_clv) AND abs(predicted_clv) <> CAST('Infinity' AS DOUBLE)
)
SELECT
    'predicted_clv' AS figure,
    'money' AS kind,
    true AS higher_is_better,
    CASE WHEN t.value IS NULL THEN 'no_data' ELSE 'ok' END AS status,
    p.as_of AS period,
    t.value,
    p.previous_month AS previous_period,
    CAST(NULL AS DOUBLE) AS previous_value,
    CAST(NULL AS DOUBLE) AS previous_change,
    CAST(NULL AS DOUBLE) AS previous_relative,
    CAST(NULL AS DOUBLE) AS previous_delta,
    CAST(NULL AS VARCHAR) AS previous_direction,
    CAST(NULL AS VARCHAR) AS previous_sentiment,
    p.year_ago_month AS year_ago_period,
    CAST(NULL AS DOUBLE) AS year_ago_value,
    CAST(NULL AS DOUBLE) AS year_ago_change,
    CAST(NULL AS DOUBLE) AS year_ago_relative,
    CAST(NULL AS DOUBLE) AS year_ago_delta,
    CAST(NULL AS VARCHAR) AS year_ago_direction,
    CAST(NULL AS VARCHAR) AS year_ago_sentiment
FROM total AS t
CROSS JOIN report_period AS p
