-- report_headlines (for the report): the headline figures of the reported month
-- (report_period), one row per figure in the order the report shows them, each
-- compared with the previous month and the same month a year before.
--   kind            count, money, rate, index (NPS) or days: how the figure is shown
--   status          ok; no_data (no value: an input, the month's row or a denominator is
--                   missing); not_reached (a median time to value not reached yet: the
--                   month has a row but fewer than half of its customers reached value)
--   {ref}_change    value - {ref}_value
--   {ref}_relative  {ref}_change / |{ref}_value|, null when {ref}_value is 0
--   {ref}_delta     what the report shows: {ref}_relative for counts and money,
--                   {ref}_change otherwise
--   {ref}_direction up, down, or flat when the delta rounds to zero as shown (one decimal
--                   of %, percentage points or points; whole days)
--   {ref}_sentiment good or bad (whether the move is the one higher_is_better wants),
--                   neutral when flat
-- where {ref} is previous (the month before) or year_ago (the same month a year before).
WITH figures (position, figure, kind, higher_is_better) AS (
    VALUES
        (1, 'customers_end', 'count', true),
        (2, 'crr', 'rate', true),
        (3, 'churn_rate', 'rate', false),
        (4, 'revenue', 'money', true),
        (5, 'average_order_value', 'money', true),
        (6, 'repeat_customer_rate', 'rate', true),
        (7, 'nps', 'index', true),
        (8, 'share_of_wallet', 'rate', true),
        -- Reaching value sooner is better.
        (9, 'lttv_median_days', 'days', false)
),
monthly AS (
    SELECT period, 'customers_end' AS figure, CAST(customers_end AS DOUBLE) AS value FROM report_trends
    UNION ALL SELECT period, 'crr', crr FROM report_trends
    UNION ALL SELECT period, 'churn_rate', churn_rate FROM report_trends
    UNION ALL SELECT period, 'revenue', CAST(revenue AS DOUBLE) FROM report_trends
    UNION ALL SELECT period, 'average_order_value', average_order_value FROM report_trends
    UNION ALL SELECT period, 'repeat_customer_rate', repeat_customer_rate FROM report_trends
    UNION ALL SELECT period, 'nps', nps FROM report_trends
    UNION ALL SELECT period, 'share_of_wallet', share_of_wallet FROM report_trends
    UNION ALL SELECT period, 'lttv_median_days', lttv_median_days FROM report_trends
),
compared AS (
    SELECT
        f.position,
        f.figure,
        f.kind,
        f.higher_is_better,
        cur.period IS NOT NULL AS has_month,
        p.month AS period,
        cur.value,
        p.previous_month AS previous_period,
        prev.value AS previous_value,
        cur.value - prev.value AS previous_change,
        (cur.value - prev.value) / NULLIF(abs(prev.value), 0) AS previous_relative,
        p.year_ago_month AS year_ago_period,
        ago.value AS year_ago_value,
        cur.value - ago.value AS year_ago_change,
        (cur.value - ago.value) / NULLIF(abs(ago.value), 0) AS year_ago_relative
    FROM figures AS f
    CROSS JOIN report_period AS p
    LEFT JOIN monthly AS cur ON cur.figure = f.figure AND cur.period = p.month
    LEFT JOIN monthly AS prev ON prev.figure = f.figure AND prev.period = p.previous_month
    LEFT JOIN monthly AS ago ON ago.figure = f.figure AND ago.period = p.year_ago_month
),
-- The delta as shown, in the unit whose rounding decides "flat": % for counts and money,
-- percentage points for rates, points and days otherwise.
shown AS (
    SELECT
        *,
        CASE kind
            WHEN 'count' THEN previous_relative * 100.0
            WHEN 'money' THEN previous_relative * 100.0
            WHEN 'rate' THEN previous_change * 100.0
            ELSE previous_change
        END AS previous_shown,
        CASE kind
            WHEN 'count' THEN year_ago_relative * 100.0
            WHEN 'money' THEN year_ago_relative * 100.0
            WHEN 'rate' THEN year_ago_change * 100.0
            ELSE year_ago_change
        END AS year_ago_shown
    FROM compared
),
-- Flat when the delta prints as zero: below 0.05 with one decimal; at most 0.5 for
-- whole days (0.5 rounds to the even 0, as the report's formatting does).
directions AS (
    SELECT
        *,
        CASE
            WHEN previous_shown IS NULL THEN NULL
            WHEN (kind = 'days' AND abs(previous_shown) <= 0.5) OR (kind <> 'days' AND abs(previous_shown) < 0.05)
                THEN 'flat'
            WHEN previous_shown > 0 THEN 'up'
            ELSE 'down'
        END AS previous_direction,
        CASE
            WHEN year_ago_shown IS NULL THEN NULL
            WHEN (kind = 'days' AND abs(year_ago_shown) <= 0.5) OR (kind <> 'days' AND abs(year_ago_shown) < 0.05)
                THEN 'flat'
            WHEN year_ago_shown > 0 THEN 'up'
            ELSE 'down'
        END AS year_ago_direction
    FROM shown
)
SELECT
    figure,
    kind,
    higher_is_better,
    CASE
        WHEN value IS NOT NULL THEN 'ok'
        WHEN figure = 'lttv_median_days' AND has_month THEN 'not_reached'
        ELSE 'no_data'
    END AS status,
    period,
    value,
    previous_period,
    previous_value,
    previous_change,
    previous_relative,
    CASE WHEN kind IN ('count', 'money') THEN previous_relative ELSE previous_change END AS previous_delta,
    previous_direction,
    CASE
        WHEN previous_direction = 'flat' THEN 'neutral'
        WHEN (previous_direction = 'up') = higher_is_better THEN 'good'
        WHEN previous_direction IS NOT NULL THEN 'bad'
    END AS previous_sentiment,
    year_ago_period,
    year_ago_value,
    year_ago_change,
    year_ago_relative,
    CASE WHEN kind IN ('count', 'money') THEN year_ago_relative ELSE year_ago_change END AS year_ago_delta,
    year_ago_direction,
    CASE
        WHEN year_ago_direction = 'flat' THEN 'neutral'
        WHEN (year_ago_direction = 'up') = higher_is_better THEN 'good'
        WHEN year_ago_direction IS NOT NULL THEN 'bad'
    END AS year_ago_sentiment
FROM directions
ORDER BY position
