WITH assortment AS (
    SELECT supplier_id, count(*) AS product_count,
           count(*) FILTER (WHERE NOT is_discontinued) AS active_product_count,
           CAST(avg(unit_cost_eur) AS DECIMAL(10, 2)) AS avg_unit_cost_eur
    FROM products GROUP BY supplier_id
), received AS (
    SELECT supplier_id, count(*) AS receipt_count, CAST(sum(quantity) AS BIGINT) AS received_units,
           sum(quantity * unit_cost_eur) AS received_value_eur,
           max(moved_ts) AS last_receipt_ts
    FROM inventory_movements
    WHERE movement_type = 'receipt'
    GROUP BY supplier_id
), sold AS (
    SELECT p.supplier_id, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
           count(DISTINCT i.order_id) AS order_count,
           sum(i.quantity * p.unit_cost_eur) AS cost_of_goods_sold_eur
    FROM order_items i JOIN products p ON p.product_id = i.product_id
    GROUP BY p.supplier_id
), returned AS (
    SELECT p.supplier_id, CAST(sum(rt.quantity) AS BIGINT) AS units_returned,
           count(*) FILTER (WHERE rt.condition = 'damaged') AS damaged_returns
    FROM returns rt
    JOIN order_items i ON i.order_item_id = rt.order_item_id
    JOIN products p ON p.product_id = i.product_id
    GROUP BY p.supplier_id
), rated AS (
    SELECT p.supplier_id, count(*) AS review_count,
           CAST(avg(v.rating) AS DECIMAL(4, 2)) AS avg_rating
    FROM reviews v JOIN products p ON p.product_id = v.product_id
    GROUP BY p.supplier_id
)
SELECT s.supplier_id, s.name, s.country_code, k.name AS country_name,
       s.contact_name, s.contact_email, s.lead_time_days, s.payment_terms_days,
       s.rating, s.active_since,
       coalesce(a.product_count, 0) AS product_count,
       coalesce(a.active_product_count, 0) AS active_product_count,
       a.avg_unit_cost_eur,
       coalesce(rc.receipt_count, 0) AS receipt_count,
       coalesce(rc.received_units, 0) AS received_units,
       coalesce(rc.received_value_eur, 0) AS received_value_eur,
       rc.last_receipt_ts,
       coalesce(sold.units_sold, 0) AS units_sold,
       coalesce(sold.order_count, 0) AS order_count,
       coalesce(sold.cost_of_goods_sold_eur, 0) AS cost_of_goods_sold_eur,
       coalesce(returned.units_returned, 0) AS units_returned,
       coalesce(returned.damaged_returns, 0) AS damaged_returns,
       coalesce(rated.review_count, 0) AS review_count, rated.avg_rating
FROM suppliers s
JOIN countries k ON k.country_code = s.country_code
LEFT JOIN assortment a ON a.supplier_id = s.supplier_id
LEFT JOIN received rc ON rc.supplier_id = s.supplier_id
LEFT JOIN sold ON sold.supplier_id = s.supplier_id
LEFT JOIN returned ON returned.supplier_id = s.supplier_id
LEFT JOIN rated ON rated.supplier_id = s.supplier_id
ORDER BY s.supplier_id
