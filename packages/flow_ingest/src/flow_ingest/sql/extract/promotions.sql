WITH sequenced AS (
    SELECT order_id, customer_id, promotion_id, order_ts, discount_amount,
           row_number() OVER (PARTITION BY customer_id ORDER BY order_ts, order_id)
               AS customer_order_seq,
           lead(order_ts) OVER (PARTITION BY customer_id ORDER BY order_ts, order_id)
               AS next_order_ts
    FROM orders WHERE status <> 'cancelled'
), used AS (
    SELECT q.promotion_id, count(*) AS order_count,
           count(DISTINCT q.customer_id) AS customer_count,
           count(*) FILTER (WHERE q.customer_order_seq = 1) AS new_customer_count,
           count(*) FILTER (WHERE q.next_order_ts IS NOT NULL
                            AND EXTRACT(EPOCH FROM (q.next_order_ts - q.order_ts))
                                <= 90 * 86400) AS reordered_within_90d,
           min(q.order_ts) AS first_use_ts, max(q.order_ts) AS last_use_ts
    FROM sequenced q
    WHERE q.promotion_id IS NOT NULL
    GROUP BY q.promotion_id
), units AS (
    SELECT o.promotion_id, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
           count(DISTINCT i.product_id) AS products_sold
    FROM order_items i JOIN orders o ON o.order_id = i.order_id
    WHERE o.promotion_id IS NOT NULL
    GROUP BY o.promotion_id
)
SELECT p.promotion_id, p.code, p.name, p.discount_pct, p.channel, p.starts_on,
       p.ends_on, p.ends_on - p.starts_on AS duration_days, p.budget_eur,
       coalesce(used.order_count, 0) AS order_count,
       coalesce(used.customer_count, 0) AS customer_count,
       coalesce(used.new_customer_count, 0) AS new_customer_count,
       coalesce(used.reordered_within_90d, 0) AS reordered_within_90d,
       coalesce(units.units_sold, 0) AS units_sold,
       coalesce(units.products_sold, 0) AS products_sold,
       used.first_use_ts, used.last_use_ts
FROM promotions p
LEFT JOIN used ON used.promotion_id = p.promotion_id
LEFT JOIN units ON units.promotion_id = p.promotion_id
ORDER BY p.promotion_id
