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
           CAST(percentile_cont(0.5) WITHIN GROUP (
                ORDER BY EXTRACT(EPOCH FROM (shipped_ts - o.order_ts)) / 3600)
                AS DECIMAL(8, 2)) AS median_hours_to_ship,
           CAST(percentile_cont(0.9) WITHIN GROUP (
                ORDER BY EXTRACT(EPOCH FROM (delivered_ts - shipped_ts)) / 86400)
                AS DECIMAL(8, 2)) AS p90_transit_days,
           count(DISTINCT o.customer_id) AS customers_served
    FROM shipments sh JOIN orders o ON o.order_id = sh.order_id
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
       shipped.median_hours_to_ship, shipped.p90_transit_days,
       coalesce(shipped.customers_served, 0) AS customers_served,
       coalesce(sourcing.supplier_count, 0) AS supplier_count
FROM warehouses w
JOIN countries k ON k.country_code = w.country_code
JOIN regions r ON r.region_id = k.region_id
LEFT JOIN stock ON stock.warehouse_id = w.warehouse_id
LEFT JOIN shipped ON shipped.warehouse_id = w.warehouse_id
LEFT JOIN sourcing ON sourcing.warehouse_id = w.warehouse_id
ORDER BY w.warehouse_id
