WITH positions AS (
    SELECT warehouse_id, product_id, sum(quantity) AS on_hand,
           sum(quantity * unit_cost_eur) AS value_eur, count(*) AS movements,
           coalesce(sum(quantity) FILTER (WHERE movement_type = 'receipt'), 0)
               AS received_units,
           coalesce(-sum(quantity) FILTER (WHERE movement_type = 'pick'), 0)
               AS picked_units
    FROM inventory_movements GROUP BY warehouse_id, product_id
), stock AS (
    SELECT warehouse_id, CAST(sum(movements) AS BIGINT) AS movement_count,
           count(*) AS product_count,
           count(*) FILTER (WHERE on_hand <= 0) AS out_of_stock_products,
           CAST(sum(on_hand) AS BIGINT) AS stock_units, sum(value_eur) AS stock_value_eur,
           CAST(sum(received_units) AS BIGINT) AS received_units,
           CAST(sum(picked_units) AS BIGINT) AS picked_units
    FROM positions GROUP BY warehouse_id
), shipped AS (
    SELECT warehouse_id, count(*) AS shipment_count,
           count(*) FILTER (WHERE delivered_ts IS NOT NULL) AS delivered_count,
           count(*) FILTER (WHERE CAST(delivered_ts AS DATE) <= promised_date)
               AS on_time_count,
           count(DISTINCT o.customer_id) AS customers_served
    FROM shipments sh JOIN orders o ON o.order_id = sh.order_id
    GROUP BY warehouse_id
), to_ship_median AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_ingest.catalog)
    SELECT warehouse_id,
           CAST(min(hours) + (max(hours) - min(hours)) * (max(pos) - floor(max(pos)))
                AS DECIMAL(8, 2)) AS median_hours_to_ship
    FROM (SELECT warehouse_id, hours,
                 row_number() OVER (PARTITION BY warehouse_id ORDER BY hours) AS rn,
                 CAST(count(*) OVER (PARTITION BY warehouse_id) - 1 AS FLOAT8) * 0.5 AS pos
          FROM (SELECT sh.warehouse_id, EXTRACT(EPOCH FROM (sh.shipped_ts - o.order_ts)) / 3600 AS hours
                FROM shipments sh JOIN orders o ON o.order_id = sh.order_id) AS waits
          WHERE hours IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY warehouse_id
), transit_p90 AS (
    SELECT warehouse_id,
           CAST(min(days) + (max(days) - min(days)) * (max(pos) - floor(max(pos)))
                AS DECIMAL(8, 2)) AS p90_transit_days
    FROM (SELECT warehouse_id, days,
                 row_number() OVER (PARTITION BY warehouse_id ORDER BY days) AS rn,
                 CAST(count(*) OVER (PARTITION BY warehouse_id) - 1 AS FLOAT8) * 0.9 AS pos
          FROM (SELECT sh.warehouse_id,
                       EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400 AS days
                FROM shipments sh JOIN orders o ON o.order_id = sh.order_id) AS trips
          WHERE days IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY warehouse_id
), sourcing AS (
    SELECT warehouse_id, count(DISTINCT supplier_id) AS supplier_count
    FROM inventory_movements WHERE movement_type = 'receipt' GROUP BY warehouse_id
)
SELECT w.warehouse_id, w.code, w.name, w.country_code, k.name AS country_name,
       r.name AS region_name, w.city, w.capacity_m3, w.is_automated, w.opened_on,
       coalesce(stock.movement_count, 0) AS movement_count,
       coalesce(stock.product_count, 0) AS product_count,
       coalesce(stock.out_of_stock_products, 0) AS out_of_stock_products,
       coalesce(stock.stock_units, 0) AS stock_units,
       coalesce(stock.stock_value_eur, 0) AS stock_value_eur,
       coalesce(stock.received_units, 0) AS received_units,
       coalesce(stock.picked_units, 0) AS picked_units,
       coalesce(shipped.shipment_count, 0) AS shipment_count,
       coalesce(shipped.delivered_count, 0) AS delivered_count,
       coalesce(shipped.on_time_count, 0) AS on_time_count,
       to_ship_median.median_hours_to_ship, transit_p90.p90_transit_days,
       coalesce(shipped.customers_served, 0) AS customers_served,
       coalesce(sourcing.supplier_count, 0) AS supplier_count
FROM warehouses w
JOIN countries k ON k.country_code = w.country_code
JOIN regions r ON r.region_id = k.region_id
LEFT JOIN stock ON stock.warehouse_id = w.warehouse_id
LEFT JOIN shipped ON shipped.warehouse_id = w.warehouse_id
LEFT JOIN to_ship_median ON to_ship_median.warehouse_id = w.warehouse_id
LEFT JOIN transit_p90 ON transit_p90.warehouse_id = w.warehouse_id
LEFT JOIN sourcing ON sourcing.warehouse_id = w.warehouse_id
ORDER BY w.warehouse_id
