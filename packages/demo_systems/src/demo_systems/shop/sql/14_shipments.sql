CREATE TABLE shipments AS
WITH o AS (
    SELECT o.order_id, o.order_ts, o.status, o.item_count, c.country_code
    FROM orders o JOIN customers c USING (customer_id)
    WHERE o.channel <> 'store' AND o.status IN ('completed', 'shipped')
), s AS (
    SELECT o.*, pick(cs.warehouse_ids, o.order_id, 'sh-wh') AS warehouse_id,
           o.order_ts + secs(ri(o.order_id, 'sh-ship', 3600, 3 * 86400)) AS shipped_ts
    FROM o JOIN _country_sites cs USING (country_code)
)
SELECT row_number() OVER (ORDER BY order_id) AS shipment_id,
       order_id, warehouse_id,
       pick($carriers, order_id, 'sh-carrier') AS carrier,
       upper(hex(hash(order_id, 'tracking'))) AS tracking_number,
       shipped_ts,
       CAST(order_ts AS DATE) + CAST(ri(order_id, 'sh-promise', 3, 6) AS INTEGER)
           AS promised_date,
       CASE WHEN status = 'completed'
            THEN shipped_ts + secs(3600 * (12 + 120 * pow(u(order_id, 'sh-transit'), 2)))
       END AS delivered_ts,
       CAST(3.5 + 0.8 * item_count + 6 * u(order_id, 'sh-cost') AS DECIMAL(10, 2))
           AS shipping_cost_eur,
       ri(order_id, 'sh-weight', 200, 4000) * item_count AS parcel_weight_g
FROM s
