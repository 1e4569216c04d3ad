-- The RFM segment map (the seed pipelines/seeds/rfm_segments.csv): each segment with
-- its priority (the first match wins) and its r_score and f_score ranges.
SELECT priority, segment, r_min, r_max, f_min, f_max
FROM rfm_segment_map
