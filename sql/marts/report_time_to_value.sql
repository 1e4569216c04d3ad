-- report_time_to_value (for the report): the share of the customers acquired in the 12
-- months ending with as_of's month (lttv_curve's) who reached value within 30 and 90
-- days of acquisition: the Kaplan-Meier curve's value at its last event day on or
-- before the day, 0 before its first; null without a curve.
SELECT
    CASE WHEN COUNT(*) > 0 THEN COALESCE(last_value(reached_share ORDER BY days) FILTER (WHERE days <= 30), 0.0) END
        AS share_within_30d,
    CASE WHEN COUNT(*) > 0 THEN COALESCE(last_value(reached_share ORDER BY days) FILTER (WHERE days <= 90), 0.0) END
        AS share_within_90d
FROM lttv_curve
WHERE days IS NOT NULL AND reached_share IS NOT NULL
