WITH pay AS (
    SELECT payment_id, order_id, method, currency,
           CAST(amount_eur AS DECIMAL(18, 2)) AS amount_eur,
           count(*) OVER (PARTITION BY order_id) > 1 AS is_split
    FROM read_parquet('{lake}/payments.parquet')
)
SELECT p.method, coalesce(o.region, 'unknown') AS region,
       count(*) AS payments, count(DISTINCT p.order_id) AS orders,
       count(DISTINCT p.currency) AS currencies,
       count(*) FILTER (WHERE p.is_split) AS split_payments,
       sum(p.amount_eur) AS amount_eur,
       CAST(sum(p.amount_eur) / count(*) AS DECIMAL(14, 2)) AS avg_amount_eur
FROM pay p
LEFT JOIN read_parquet('{lake}/orders.parquet') o ON o.order_id = p.order_id
GROUP BY 1, 2
ORDER BY p.method, region
