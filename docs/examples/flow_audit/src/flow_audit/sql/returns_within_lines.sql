-- returns of more units than their order line sold
SELECT count(*) FROM returns r
JOIN order_items i USING (order_item_id)
WHERE r.quantity > i.quantity
