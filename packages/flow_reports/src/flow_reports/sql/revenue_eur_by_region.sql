WITH lake_orders AS (
    -- exact decimals per row: summing doubles in parallel is not reproducible
    SELECT order_id, customer_id, country_code, order_ts, region,
           CAST(total_amount_eur AS DECIMAL(18, 2)) AS total_amount_eur,
           CAST(total_amount_eur * vat_rate / (1 + vat_rate) AS DECIMAL(18, 4))
               AS vat_eur,
           order_ts = min(order_ts) OVER (PARTITION BY customer_id) AS is_first
    FROM read_parquet('{lake}/orders.parquet')
)
SELECT coalesce(region, 'unknown') AS region,
       CAST(date_trunc('month', order_ts) AS DATE) AS month,
       count(*) AS orders, count(DISTINCT customer_id) AS customers,
       count(*) FILTER (WHERE is_first) AS first_orders,
       count(DISTINCT country_code) AS countries,
       sum(total_amount_eur) AS revenue_eur,
       CAST(sum(vat_eur) AS DECIMAL(18, 2)) AS vat_eur,
       CAST(sum(total_amount_eur) / count(*) AS DECIMAL(14, 2)) AS avg_order_eur,
       CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY total_amount_eur)
            AS DECIMAL(14, 2)) AS median_order_eur
FROM lake_orders
GROUP BY 1, 2
ORDER BY region, month
