WITH horizon AS (
    SELECT max(moved_ts) - INTERVAL '90' DAY AS since FROM inventory_movements
), positions AS (
    SELECT m.warehouse_id, m.product_id, sum(m.quantity) AS on_hand,
           sum(m.quantity * m.unit_cost_eur) AS value_eur,
           coalesce(-sum(m.quantity) FILTER (
               WHERE m.movement_type = 'pick' AND m.moved_ts >= h.since), 0)
               AS picked_90d
    FROM inventory_movements m CROSS JOIN horizon h
    GROUP BY m.warehouse_id, m.product_id
), levels AS (
    SELECT warehouse_id, product_id, quantity,
           sum(quantity) OVER (
               PARTITION BY warehouse_id, product_id ORDER BY moved_ts, movement_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS level
    FROM inventory_movements
), stockouts AS (
    SELECT warehouse_id, count(*) AS stockout_events
    FROM levels WHERE level <= 0 AND level - quantity > 0
    GROUP BY warehouse_id
), rated AS (
    SELECT pos.*, s.lead_time_days,
           pos.picked_90d / 90.0 * s.lead_time_days AS reorder_point
    FROM positions pos
    JOIN products p ON p.product_id = pos.product_id
    JOIN suppliers s ON s.supplier_id = p.supplier_id
), on_hand_median AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_reports.catalog)
    SELECT warehouse_id,
           CAST(min(on_hand) + (max(on_hand) - min(on_hand)) * (max(pos) - floor(max(pos)))
                AS DECIMAL(10, 1)) AS median_units_per_product
    FROM (SELECT warehouse_id, CAST(on_hand AS FLOAT8) AS on_hand,
                 row_number() OVER (PARTITION BY warehouse_id ORDER BY on_hand) AS rn,
                 CAST(count(*) OVER (PARTITION BY warehouse_id) - 1 AS FLOAT8) * 0.5 AS pos
          FROM rated WHERE on_hand IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY warehouse_id
), shipped AS (
    SELECT sh.warehouse_id, count(*) AS shipments_90d, sum(i.quantity) AS units_shipped_90d
    FROM shipments sh
    JOIN order_items i ON i.order_id = sh.order_id
    CROSS JOIN horizon h
    WHERE sh.shipped_ts >= h.since
    GROUP BY sh.warehouse_id
)
SELECT w.warehouse_id, w.code, w.country_code, count(*) AS products,
       sum(r.on_hand) AS units_on_hand, sum(r.value_eur) AS stock_value_eur,
       count(*) FILTER (WHERE r.on_hand <= 0) AS out_of_stock_products,
       count(*) FILTER (WHERE r.on_hand > 0 AND r.on_hand < r.reorder_point)
           AS below_reorder_point,
       sum(r.picked_90d) AS units_picked_90d,
       CAST(sum(r.on_hand) / nullif(sum(r.picked_90d) / 90.0, 0) AS DECIMAL(10, 1))
           AS days_of_cover,
       max(m.median_units_per_product) AS median_units_per_product,
       coalesce(max(sh.shipments_90d), 0) AS shipments_90d,
       coalesce(max(sh.units_shipped_90d), 0) AS units_shipped_90d,
       coalesce(max(so.stockout_events), 0) AS stockout_events
FROM rated r
JOIN warehouses w ON w.warehouse_id = r.warehouse_id
LEFT JOIN on_hand_median m ON m.warehouse_id = r.warehouse_id
LEFT JOIN shipped sh ON sh.warehouse_id = r.warehouse_id
LEFT JOIN stockouts so ON so.warehouse_id = r.warehouse_id
GROUP BY w.warehouse_id, w.code, w.country_code
ORDER BY w.warehouse_id
