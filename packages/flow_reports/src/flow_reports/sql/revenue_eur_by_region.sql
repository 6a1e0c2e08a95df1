WITH lake_orders AS NOT MATERIALIZED (
    -- each use below reads it afresh, as in revenue_by_month (where DuckDB held a CTE used
    -- twice whole and outgrew its budget at scale 10); not measured without it here
    -- exact decimals per row: summing doubles in parallel is not reproducible
    SELECT order_id, customer_id, country_code, order_ts, region,
           CAST(total_amount_eur AS DECIMAL(18, 2)) AS total_amount_eur,
           CAST(total_amount_eur * vat_rate / (1 + vat_rate) AS DECIMAL(18, 4))
               AS vat_eur,
           order_ts = min(order_ts) OVER (PARTITION BY customer_id) AS is_first,
           coalesce(region, 'unknown') AS region_name,
           CAST(date_trunc('month', order_ts) AS DATE) AS month
    FROM read_parquet('{lake}/orders.parquet')
), medians AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_reports.catalog)
    SELECT region_name, month,
           CAST(floor((min(total_amount_eur) + max(total_amount_eur)) * 50) * 0.01
                AS DECIMAL(14, 2)) AS median_order_eur
    FROM (SELECT region_name, month, total_amount_eur,
                 row_number() OVER (PARTITION BY region_name, month
                                    ORDER BY total_amount_eur) AS rn,
                 CAST(count(*) OVER (PARTITION BY region_name, month) - 1 AS FLOAT8) * 0.5 AS pos
          FROM lake_orders WHERE total_amount_eur IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY region_name, month
), totals AS (
    SELECT region_name AS region, month,
           count(*) AS orders, count(DISTINCT customer_id) AS customers,
           count(*) FILTER (WHERE is_first) AS first_orders,
           count(DISTINCT country_code) AS countries,
           sum(total_amount_eur) AS revenue_eur,
           CAST(sum(vat_eur) AS DECIMAL(18, 2)) AS vat_eur,
           CAST(sum(total_amount_eur) / count(*) AS DECIMAL(14, 2)) AS avg_order_eur
    FROM lake_orders
    GROUP BY region_name, month
)
SELECT totals.*, medians.median_order_eur
FROM totals
LEFT JOIN medians ON medians.region_name = totals.region AND medians.month = totals.month
ORDER BY totals.region, totals.month
