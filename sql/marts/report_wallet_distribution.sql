-- report_wallet_distribution (for the report): customers by share of wallet in the
-- reported month, in ten bins 10 percentage points wide: [share_from, share_to), the
-- last one closed (a share of 1 is in it). Every bin has a row, empty ones too.
WITH shares AS (
    SELECT s.share_of_wallet
    FROM share_of_wallet AS s
    JOIN report_period AS p ON s.period = p.month
    WHERE s.share_of_wallet IS NOT NULL
),
counted AS (
    SELECT LEAST(GREATEST(CAST(floor(share_of_wallet / 0.1) AS BIGINT), 0), 9) AS bin, COUNT(*) AS customers
    FROM shares
    GROUP BY 1
),
bins AS (
    SELECT unnest(range(0, 10)) AS bin
)
SELECT
    0.1 * b.bin AS share_from,
    CASE WHEN b.bin = 9 THEN 1.0 ELSE 0.1 * (b.bin + 1) END AS share_to,
    COALESCE(c.customers, 0) AS customers
FROM bins AS b
LEFT JOIN counted AS c ON c.bin = b.bin
ORDER BY b.bin
