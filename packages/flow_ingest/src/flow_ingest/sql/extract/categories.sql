WITH sold AS (
    SELECT p.category_id, count(*) AS order_line_count,
           CAST(sum(i.quantity) AS BIGINT) AS units_sold,
           count(DISTINCT i.order_id) AS order_count
    FROM order_items i JOIN products p ON p.product_id = i.product_id
    GROUP BY p.category_id
), viewed AS (
    SELECT p.category_id, count(*) AS product_view_count,
           count(DISTINCT v.session_id) AS viewing_sessions
    FROM page_views v JOIN products p ON p.product_id = v.product_id
    GROUP BY p.category_id
), rated AS (
    SELECT p.category_id, count(*) AS review_count,
           CAST(avg(v.rating) AS DECIMAL(4, 2)) AS avg_rating
    FROM reviews v JOIN products p ON p.product_id = v.product_id
    GROUP BY p.category_id
), assortment AS (
    SELECT category_id, count(*) AS product_count FROM products GROUP BY category_id
)
SELECT c.category_id, c.parent_id, coalesce(c.parent_id, c.category_id) AS top_category_id,
       c.name, parent.name AS parent_name, c.slug, c.depth, c.target_margin_pct,
       coalesce(a.product_count, 0) AS product_count,
       coalesce(sold.order_line_count, 0) AS order_line_count,
       coalesce(sold.order_count, 0) AS order_count,
       coalesce(sold.units_sold, 0) AS units_sold,
       coalesce(viewed.product_view_count, 0) AS product_view_count,
       coalesce(viewed.viewing_sessions, 0) AS viewing_sessions,
       coalesce(rated.review_count, 0) AS review_count, rated.avg_rating
FROM categories c
LEFT JOIN categories parent ON parent.category_id = c.parent_id
LEFT JOIN assortment a ON a.category_id = c.category_id
LEFT JOIN sold ON sold.category_id = c.category_id
LEFT JOIN viewed ON viewed.category_id = c.category_id
LEFT JOIN rated ON rated.category_id = c.category_id
ORDER BY c.category_id
