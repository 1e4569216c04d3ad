-- The survey input as a whole, one row: how many responses it holds, whatever their
-- date (0 when the optional input is absent). kpi_monthly tells a month without
-- answers (nps_responses 0) from a run without survey input (null) by it.
SELECT COUNT(*) AS answers
FROM survey_responses
