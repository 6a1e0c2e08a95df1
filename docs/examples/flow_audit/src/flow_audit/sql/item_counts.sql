-- orders whose item count is not the number of their lines
SELECT count(*) FROM orders o
JOIN (SELECT order_id, count(*) AS lines FROM order_items GROUP BY order_id) i USING (order_id)
WHERE o.item_count <> i.lines
