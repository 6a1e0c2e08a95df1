WITH sold AS (
    SELECT i.product_id, sum(i.quantity) AS units_sold,
           count(DISTINCT i.order_id) AS orders
    FROM order_items i JOIN orders o ON o.order_id = i.order_id
    WHERE o.status <> 'cancelled'
    GROUP BY i.product_id
), viewed AS (
    SELECT product_id, count(*) AS views, count(DISTINCT session_id) AS sessions
    FROM page_views WHERE product_id IS NOT NULL GROUP BY product_id
), returned AS (
    SELECT i.product_id, sum(r.quantity) AS units_returned
    FROM returns r JOIN order_items i ON i.order_item_id = r.order_item_id
    GROUP BY i.product_id
), rated AS (
    SELECT product_id, CAST(avg(rating) AS DECIMAL(4, 2)) AS avg_rating,
           count(*) AS reviews
    FROM reviews GROUP BY product_id
)
SELECT p.product_id, p.sku, p.name, c.name AS category, p.brand,
       sold.units_sold, sold.orders,
       coalesce(viewed.views, 0) AS page_views,
       CAST(100.0 * sold.orders / nullif(viewed.sessions, 0) AS DECIMAL(8, 2))
           AS orders_per_100_viewing_sessions,
       coalesce(returned.units_returned, 0) AS units_returned,
       CAST(100.0 * coalesce(returned.units_returned, 0) / sold.units_sold
            AS DECIMAL(6, 2)) AS return_rate_pct,
       rated.avg_rating, coalesce(rated.reviews, 0) AS reviews
FROM sold
JOIN products p ON p.product_id = sold.product_id
JOIN categories c ON c.category_id = p.category_id
LEFT JOIN viewed ON viewed.product_id = sold.product_id
LEFT JOIN returned ON returned.product_id = sold.product_id
LEFT JOIN rated ON rated.product_id = sold.product_id
ORDER BY sold.units_sold DESC, p.product_id
LIMIT 100
