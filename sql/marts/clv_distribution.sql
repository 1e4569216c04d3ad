-- clv_distribution: predicted CLV per customer of rfm by RFM segment (`Unassigned` when
-- the segment map gives the customer none), one row per segment with customers: those
-- with a predicted CLV (a value that is not a finite number left out), their mean (of
-- the values to ten decimals, summed exactly: the same whatever order rows arrive in),
-- and the quantiles p10, p25, median, p75 and p90. A quantile q of n sorted values
-- v(0..n-1) interpolates linearly between order statistics (Hyndman & Fan 1996, type 7,
-- the default of R and NumPy): at h = q (n - 1), v(floor h) + (h - floor h)
-- (v(floor h + 1) - v(floor h)). Exact: the values are ranked once per segment, and each
-- quantile picks its two order statistics from the ranks. A stage of its own, reading
-- only rfm and clv, so that this pass over every customer runs as soon as they are done
-- rather than after report_segments (which waits for clv_simple).
WITH customer_clv AS (
    SELECT COALESCE(r.segment, 'Unassigned') AS segment, c.predicted_clv
    FROM rfm AS r
    JOIN clv AS c ON c.customer_id = r.customer_id
    WHERE NOT isnan(c.predicted_clv) AND abs(c.predicted_clv) <> CAST('Infinity' AS DOUBLE)
),
ranked AS (
    SELECT
        segment,
        predicted_clv,
        ROW_NUMBER() OVER (PARTITION BY segment ORDER BY predicted_clv) - 1 AS position,
        -- The order of the rank, over the whole segment: one sort for both.
        COUNT(*) OVER (
            PARTITION BY segment ORDER BY predicted_clv ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS customers
    FROM customer_clv
),
-- For each quantile, the order statistics at floor(h) and floor(h) + 1 (the last one
-- at most).
picked AS (
    SELECT
        segment,
        MAX(customers) AS customers,
        CAST(SUM(CAST(predicted_clv AS DECIMAL(38, 10))) AS DOUBLE) / MAX(customers) AS average_predicted_clv,
        MAX(CASE WHEN position = floor(0.1 * (customers - 1)) THEN predicted_clv END) AS p10_below,
        MAX(CASE WHEN position = LEAST(floor(0.1 * (customers - 1)) + 1, customers - 1) THEN predicted_clv END)
            AS p10_above,
        MAX(CASE WHEN position = floor(0.25 * (customers - 1)) THEN predicted_clv END) AS p25_below,
        MAX(CASE WHEN position = LEAST(floor(0.25 * (customers - 1)) + 1, customers - 1) THEN predicted_clv END)
            AS p25_above,
        MAX(CASE WHEN position = floor(0.5 * (customers - 1)) THEN predicted_clv END) AS median_below,
        MAX(CASE WHEN position = LEAST(floor(0.5 * (customers - 1)) + 1, customers - 1) THEN predicted_clv END)
            AS median_above,
        MAX(CASE WHEN position = floor(0.75 * (customers - 1)) THEN predicted_clv END) AS p75_below,
        MAX(CASE WHEN position = LEAST(floor(0.75 * (customers - 1)) + 1, customers - 1) THEN predicted_clv END)
            AS p75_above,
        MAX(CASE WHEN position = floor(0.9 * (customers - 1)) THEN predicted_clv END) AS p90_below,
        MAX(CASE WHEN position = LEAST(floor(0.9 * (customers - 1)) + 1, customers - 1) THEN predicted_clv END)
            AS p90_above
    FROM ranked
    GROUP BY segment
)
SELECT
    segment,
    customers,
    average_predicted_clv,
    p10_below + (p10_above - p10_below) * (0.1 * (customers - 1) - floor(0.1 * (customers - 1))) AS p10,
    p25_below + (p25_above - p25_below) * (0.25 * (customers - 1) - floor(0.25 * (customers - 1))) AS p25,
    median_below + (median_above - median_below) * (0.5 * (customers - 1) - floor(0.5 * (customers - 1)))
        AS median,
    p75_below + (p75_above - p75_below) * (0.75 * (customers - 1) - floor(0.75 * (customers - 1))) AS p75,
    p90_below + (p90_above - p90_below) * (0.9 * (customers - 1) - floor(0.9 * (customers - 1))) AS p90
FROM picked
