-- report_clv_distribution (for the report): clv_distribution, one row per segment of
-- report_segments, in its order; a segment without customers with a predicted CLV has 0
-- customers and no figures.
SELECT
    s.segment,
    COALESCE(x.customers, 0) AS customers,
    x.average_predicted_clv,
    x.p10,
    x.p25,
    x.median,
    x.p75,
    x.p90
FROM report_segments AS s
LEFT JOIN clv_distribution AS x ON x.segment = s.segment
ORDER BY s.revenue DESC NULLS LAST, s.segment
