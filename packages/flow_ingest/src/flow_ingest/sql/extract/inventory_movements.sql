SELECT m.movement_id, m.product_id, p.sku, p.category_id, m.warehouse_id,
       w.code AS warehouse_code, w.country_code AS warehouse_country,
       m.movement_type,
       CASE WHEN m.quantity >= 0 THEN 'in' ELSE 'out' END AS direction,
       m.quantity, m.unit_cost_eur, m.quantity * m.unit_cost_eur AS value_eur,
       m.supplier_id, m.moved_ts, CAST(m.moved_ts AS DATE) AS moved_date,
       m.reference
FROM inventory_movements m
JOIN products p ON p.product_id = m.product_id
JOIN warehouses w ON w.warehouse_id = m.warehouse_id
ORDER BY m.movement_id
