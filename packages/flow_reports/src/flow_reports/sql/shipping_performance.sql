WITH units AS (
    SELECT order_id, sum(quantity) AS units FROM order_items GROUP BY order_id
), late_returns AS (
    SELECT order_id, count(*) AS n FROM returns
    WHERE reason = 'late delivery' GROUP BY order_id
)
SELECT sh.carrier, cu.country_code AS destination_country, count(*) AS shipments,
       sum(u.units) AS units,
       count(*) FILTER (WHERE sh.delivered_ts IS NOT NULL) AS delivered,
       CAST(percentile_cont(0.5) WITHIN GROUP (
            ORDER BY EXTRACT(EPOCH FROM (sh.shipped_ts - o.order_ts)) / 3600)
            AS DECIMAL(8, 1)) AS median_hours_to_ship,
       CAST(percentile_cont(0.5) WITHIN GROUP (
            ORDER BY EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400)
            AS DECIMAL(8, 2)) AS median_transit_days,
       CAST(percentile_cont(0.9) WITHIN GROUP (
            ORDER BY EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400)
            AS DECIMAL(8, 2)) AS p90_transit_days,
       CAST(100.0 * count(*) FILTER (
            WHERE CAST(sh.delivered_ts AS DATE) <= sh.promised_date)
            / nullif(count(*) FILTER (WHERE sh.delivered_ts IS NOT NULL), 0)
            AS DECIMAL(6, 2)) AS on_time_pct,
       coalesce(sum(lr.n), 0) AS late_delivery_returns,
       sum(sh.shipping_cost_eur) AS shipping_cost_eur
FROM shipments sh
JOIN orders o ON o.order_id = sh.order_id
JOIN customers cu ON cu.customer_id = o.customer_id
JOIN units u ON u.order_id = sh.order_id
LEFT JOIN late_returns lr ON lr.order_id = sh.order_id
GROUP BY sh.carrier, cu.country_code
ORDER BY sh.carrier, destination_country
