-- A hand-written DuckDB job for four of fidelis's core tables (customer_summary,
-- cohort_retention, rfm, and the monthly revenue/orders/buyers/active-customer KPIs),
-- the peer that scripts/bench-duckdb times on the same Parquet files. Written as an
-- analyst would write it for DuckDB, not as a copy of fidelis's SQL; it follows the
-- contract's definitions (UTC days, refunds net of revenue, purchase days) closely enough
-- to do the same work. Placeholders: {input}, {output}, {as_of}.
CREATE TEMP TABLE tx AS
SELECT customer_id, CAST(order_ts AS DATE) AS day, coalesce(kind, 'purchase') <> 'refund' AS is_purchase,
       CASE WHEN kind = 'refund' THEN -amount ELSE amount END AS net_amount, category
FROM read_parquet('{input}/transactions/*.parquet')
WHERE CAST(order_ts AS DATE) <= DATE '{as_of}';

CREATE TEMP TABLE purchase_days AS
SELECT customer_id, day, SUM(net_amount) AS amount, COUNT(*) AS orders
FROM tx WHERE is_purchase GROUP BY customer_id, day;

COPY (
  WITH per AS (
    SELECT customer_id, MIN(day) AS first_day, MAX(day) AS last_day, COUNT(*) AS purchase_days, SUM(orders) AS orders,
           (SUM(amount) - arg_min(amount, day)) / NULLIF(COUNT(*) - 1, 0) AS monetary_value
    FROM purchase_days GROUP BY customer_id
  ),
  revenue AS (SELECT customer_id, SUM(net_amount) AS revenue, COUNT(DISTINCT category) FILTER (WHERE is_purchase) AS categories FROM tx GROUP BY customer_id)
  SELECT p.customer_id, first_day AS first_purchase_date, last_day AS last_purchase_date, purchase_days, orders, r.revenue,
         purchase_days - 1 AS frequency, (last_day - first_day) / 7.0 AS recency, (DATE '{as_of}' - first_day) / 7.0 AS "T",
         coalesce(monetary_value, 0) AS monetary_value, DATE '{as_of}' - last_day AS recency_days,
         r.categories AS distinct_categories, date_trunc('month', first_day) AS acquisition_cohort
  FROM per p JOIN revenue r USING (customer_id) ORDER BY customer_id
) TO '{output}/customer_summary.parquet' (FORMAT parquet);

COPY (
  WITH cohorts AS (SELECT customer_id, date_trunc('month', MIN(day)) AS cohort FROM purchase_days GROUP BY customer_id),
  sizes AS (SELECT cohort, COUNT(*) AS cohort_size FROM cohorts GROUP BY cohort),
  activity AS (
    SELECT c.cohort, datediff('month', c.cohort, date_trunc('month', t.day)) AS period_index,
           COUNT(DISTINCT t.customer_id) FILTER (WHERE t.is_purchase) AS active_customers, SUM(t.net_amount) AS revenue
    FROM tx t JOIN cohorts c USING (customer_id) GROUP BY ALL
  )
  SELECT a.cohort AS cohort_month, period_index, s.cohort_size, active_customers,
         active_customers / s.cohort_size AS retention_rate, revenue,
         SUM(revenue) OVER (PARTITION BY a.cohort ORDER BY period_index) / s.cohort_size AS cumulative_revenue_per_customer
  FROM activity a JOIN sizes s USING (cohort) ORDER BY 1, 2
) TO '{output}/cohort_retention.parquet' (FORMAT parquet);

COPY (
  WITH v AS (
    SELECT d.customer_id, DATE '{as_of}' - MAX(d.day) AS recency_days, COUNT(*) AS frequency, ANY_VALUE(m.monetary) AS monetary
    FROM purchase_days d JOIN (SELECT customer_id, SUM(net_amount) AS monetary FROM tx GROUP BY customer_id) m USING (customer_id)
    GROUP BY d.customer_id
  ),
  n AS (SELECT COUNT(*) AS n FROM v)
  SELECT customer_id, recency_days, frequency, monetary,
         CAST(ceil(5.0 * (n + 1 - rank() OVER (ORDER BY recency_days)) / n) AS INT) AS r_score,
         CAST(ceil(5.0 * (n + 1 - rank() OVER (ORDER BY frequency DESC)) / n) AS INT) AS f_score,
         CAST(ceil(5.0 * (n + 1 - rank() OVER (ORDER BY monetary DESC)) / n) AS INT) AS m_score
  FROM v, n ORDER BY customer_id
) TO '{output}/rfm.parquet' (FORMAT parquet);

COPY (
  WITH months AS (
    SELECT m AS month, LEAST(m + INTERVAL 1 MONTH - INTERVAL 1 DAY, DATE '{as_of}')::DATE AS month_end
    FROM range((SELECT date_trunc('month', MIN(day)) FROM tx), DATE '{as_of}' + INTERVAL 1 DAY, INTERVAL 1 MONTH) t(m)
  ),
  sales AS (
    SELECT date_trunc('month', day) AS month, SUM(net_amount) AS revenue, COUNT(*) FILTER (WHERE is_purchase) AS orders,
           COUNT(DISTINCT customer_id) FILTER (WHERE is_purchase) AS buyers
    FROM tx GROUP BY 1
  ),
  active AS (
    SELECT m.month, COUNT(DISTINCT d.customer_id) AS customers_end
    FROM months m JOIN purchase_days d ON d.day <= m.month_end AND d.day > m.month_end - 365
    GROUP BY m.month
  )
  SELECT m.month AS period, a.customers_end, s.revenue, s.orders, s.buyers, s.revenue / NULLIF(s.orders, 0) AS average_order_value
  FROM months m LEFT JOIN sales s USING (month) LEFT JOIN active a USING (month) ORDER BY 1
) TO '{output}/kpi_monthly.parquet' (FORMAT parquet);
