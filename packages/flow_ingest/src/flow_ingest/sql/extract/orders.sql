SELECT o.order_id, o.customer_id, cu.country_code, o.store_id, o.channel, o.status,
       o.currency, o.promotion_id, o.order_ts,
       CAST(o.order_ts AS DATE) AS order_date,
       CAST(date_trunc('month', o.order_ts) AS DATE) AS order_month,
       CAST(EXTRACT(ISODOW FROM o.order_ts) AS INTEGER) AS order_weekday,
       CAST(EXTRACT(HOUR FROM o.order_ts) AS INTEGER) AS order_hour,
       row_number() OVER (PARTITION BY o.customer_id ORDER BY o.order_ts, o.order_id)
           AS customer_order_seq,
       o.item_count, o.subtotal, o.discount_amount, o.shipping_fee, o.total_amount
FROM orders o
JOIN customers cu ON cu.customer_id = o.customer_id
ORDER BY o.order_id
