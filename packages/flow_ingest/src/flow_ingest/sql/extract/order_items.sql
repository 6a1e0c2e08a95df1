SELECT i.order_item_id, i.order_id, i.line_no, o.order_ts,
       CAST(o.order_ts AS DATE) AS order_date, o.channel, o.currency,
       i.product_id, p.sku, p.category_id,
       c.name AS category_name, coalesce(c.parent_id, c.category_id) AS top_category_id,
       i.quantity, i.unit_price, i.quantity * i.unit_price AS gross_amount,
       i.discount_amount, i.line_total,
       i.quantity * p.unit_cost_eur AS line_cost_eur
FROM order_items i
JOIN orders o ON o.order_id = i.order_id
JOIN products p ON p.product_id = i.product_id
JOIN categories c ON c.category_id = p.category_id
ORDER BY i.order_item_id
