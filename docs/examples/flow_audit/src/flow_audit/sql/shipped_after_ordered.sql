-- shipments that left before their order was placed
SELECT count(*) FROM shipments s
JOIN orders o USING (order_id)
WHERE s.shipped_ts < o.order_ts
