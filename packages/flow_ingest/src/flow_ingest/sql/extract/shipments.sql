SELECT sh.shipment_id, sh.order_id, sh.warehouse_id, w.country_code AS origin_country,
       cu.country_code AS destination_country,
       w.country_code <> cu.country_code AS is_cross_border,
       sh.carrier, sh.tracking_number, o.order_ts, sh.shipped_ts, sh.promised_date,
       sh.delivered_ts,
       CAST(EXTRACT(EPOCH FROM (sh.shipped_ts - o.order_ts)) / 3600 AS DECIMAL(8, 2))
           AS hours_to_ship,
       CAST(EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400
            AS DECIMAL(8, 2)) AS days_in_transit,
       CAST(sh.delivered_ts AS DATE) <= sh.promised_date AS delivered_on_time,
       sh.shipping_cost_eur, sh.parcel_weight_g
FROM shipments sh
JOIN orders o ON o.order_id = sh.order_id
JOIN customers cu ON cu.customer_id = o.customer_id
JOIN warehouses w ON w.warehouse_id = sh.warehouse_id
ORDER BY sh.shipment_id
