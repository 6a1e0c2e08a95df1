CREATE TABLE orders AS
WITH totals AS (
    SELECT order_id, sum(quantity * unit_price) AS subtotal,
           sum(discount_amount) AS discount_amount, sum(line_total) AS net
    FROM order_items GROUP BY order_id
), o AS (
    SELECT h.*, t.subtotal, t.discount_amount, t.net,
           CASE WHEN h.channel = 'store' OR t.net >= 60 * h.price_list_factor
                THEN CAST(0 AS DECIMAL(14, 2))
                ELSE CAST(money(4.95 * h.price_list_factor, h.minor_units) AS DECIMAL(14, 2))
           END AS shipping_fee
    FROM _order_headers h JOIN totals t USING (order_id)
)
SELECT order_id, customer_id, store_id, channel, order_ts,
       CASE WHEN status_u < 0.03 THEN 'cancelled'
            WHEN order_ts >= CAST($end_ts AS TIMESTAMP) - INTERVAL 2 DAY THEN 'processing'
            WHEN channel <> 'store'
                 AND order_ts >= CAST($end_ts AS TIMESTAMP) - INTERVAL 6 DAY THEN 'shipped'
            ELSE 'completed' END AS status,
       currency, promotion_id, item_count,
       CAST(subtotal AS DECIMAL(14, 2)) AS subtotal,
       CAST(discount_amount AS DECIMAL(14, 2)) AS discount_amount,
       shipping_fee,
       CAST(net + shipping_fee AS DECIMAL(14, 2)) AS total_amount
FROM o
