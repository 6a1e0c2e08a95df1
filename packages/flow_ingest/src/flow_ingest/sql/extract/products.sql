WITH sold AS (
    SELECT i.product_id, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
           count(*) AS order_line_count,
           count(DISTINCT o.customer_id) AS buyer_count, max(o.order_ts) AS last_sold_ts
    FROM order_items i JOIN orders o ON o.order_id = i.order_id
    WHERE o.status <> 'cancelled'
    GROUP BY i.product_id
), viewed AS (
    SELECT product_id, count(*) AS view_count FROM page_views
    WHERE product_id IS NOT NULL GROUP BY product_id
), returned AS (
    SELECT i.product_id, CAST(sum(rt.quantity) AS BIGINT) AS units_returned
    FROM returns rt JOIN order_items i ON i.order_item_id = rt.order_item_id
    GROUP BY i.product_id
), rated AS (
    SELECT product_id, count(*) AS review_count,
           CAST(avg(rating) AS DECIMAL(4, 2)) AS avg_rating
    FROM reviews GROUP BY product_id
)
SELECT p.product_id, p.sku, p.name, p.brand, p.color, p.size, p.weight_g,
       p.category_id, c.name AS category_name,
       coalesce(c.parent_id, c.category_id) AS top_category_id,
       top.name AS top_category_name,
       p.supplier_id, s.name AS supplier_name, s.country_code AS supplier_country,
       p.list_price_eur, p.unit_cost_eur,
       p.list_price_eur - p.unit_cost_eur AS margin_eur,
       CAST(100 * (p.list_price_eur - p.unit_cost_eur) / p.list_price_eur
            AS DECIMAL(6, 2)) AS margin_pct,
       p.description, p.launched_on, p.is_discontinued,
       coalesce(sold.units_sold, 0) AS units_sold,
       coalesce(sold.order_line_count, 0) AS order_line_count,
       coalesce(sold.buyer_count, 0) AS buyer_count, sold.last_sold_ts,
       coalesce(viewed.view_count, 0) AS view_count,
       coalesce(returned.units_returned, 0) AS units_returned,
       coalesce(rated.review_count, 0) AS review_count, rated.avg_rating
FROM products p
JOIN categories c ON c.category_id = p.category_id
JOIN categories top ON top.category_id = coalesce(c.parent_id, c.category_id)
JOIN suppliers s ON s.supplier_id = p.supplier_id
LEFT JOIN sold ON sold.product_id = p.product_id
LEFT JOIN viewed ON viewed.product_id = p.product_id
LEFT JOIN returned ON returned.product_id = p.product_id
LEFT JOIN rated ON rated.product_id = p.product_id
ORDER BY p.product_id
