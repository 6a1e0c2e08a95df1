SELECT pa.payment_id, pa.order_id, pa.method, pa.status, pa.currency, pa.amount,
       pa.paid_ts, CAST(pa.paid_ts AS DATE) AS paid_date,
       CAST(EXTRACT(EPOCH FROM (pa.paid_ts - o.order_ts)) AS INTEGER)
           AS seconds_after_order,
       count(*) OVER (PARTITION BY pa.order_id) > 1 AS is_split,
       o.channel, pa.provider_ref
FROM payments pa
JOIN orders o ON o.order_id = pa.order_id
ORDER BY pa.payment_id
