WITH firsts AS (
    SELECT customer_id, min(order_ts) AS first_order_ts
    FROM orders WHERE status <> 'cancelled' GROUP BY customer_id
), units AS (
    SELECT order_id, sum(quantity) AS units FROM order_items GROUP BY order_id
)
SELECT CAST(date_trunc('month', o.order_ts) AS DATE) AS month, o.currency,
       count(*) AS orders, count(DISTINCT o.customer_id) AS customers,
       count(DISTINCT o.customer_id) FILTER (WHERE o.order_ts = f.first_order_ts)
           AS new_customers,
       sum(u.units) AS units,
       sum(o.subtotal) AS gross_revenue, sum(o.discount_amount) AS discounts,
       sum(o.shipping_fee) AS shipping_fees, sum(o.total_amount) AS net_revenue,
       coalesce(sum(o.total_amount) FILTER (WHERE o.order_ts = f.first_order_ts), 0)
           AS net_revenue_new_customers,
       CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY o.total_amount)
            AS DECIMAL(14, 2)) AS median_order_value
FROM orders o
JOIN firsts f ON f.customer_id = o.customer_id
JOIN units u ON u.order_id = o.order_id
WHERE o.status <> 'cancelled'
GROUP BY 1, 2
ORDER BY month, o.currency
