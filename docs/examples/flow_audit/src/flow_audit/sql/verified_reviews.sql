-- reviews marked as verified purchases without an order of that customer
SELECT count(*) FROM reviews r
LEFT JOIN orders o ON o.order_id = r.order_id AND o.customer_id = r.customer_id
WHERE r.verified_purchase AND o.order_id IS NULL
