WITH joined AS MATERIALIZED (
    -- the joins run to their end before the sort starts: in one pipeline the sort of these
    -- wide rows met the joins' hash tables and needed over 256MB of DuckDB at scale 10
    SELECT rt.return_id, rt.order_item_id, rt.order_id, i.product_id, p.sku,
           p.category_id, c.name AS category_name, rt.quantity, i.quantity AS ordered_quantity,
           rt.reason, rt.condition, rt.refund_amount, rt.currency,
           o.order_ts, rt.requested_ts, rt.received_ts,
           CAST(EXTRACT(EPOCH FROM (rt.requested_ts - o.order_ts)) / 86400 AS INTEGER)
               AS days_after_order,
           rt.received_ts IS NOT NULL AS is_received
    FROM returns rt
    JOIN order_items i ON i.order_item_id = rt.order_item_id
    JOIN orders o ON o.order_id = rt.order_id
    JOIN products p ON p.product_id = i.product_id
    JOIN categories c ON c.category_id = p.category_id
)
SELECT * FROM joined
ORDER BY return_id
