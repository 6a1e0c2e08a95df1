WITH units AS (
    SELECT order_id, sum(quantity) AS units FROM order_items GROUP BY order_id
), late_returns AS (
    SELECT order_id, count(*) AS n FROM returns
    WHERE reason = 'late delivery' GROUP BY order_id
), trips AS (
    SELECT sh.carrier, cu.country_code AS destination_country, u.units, lr.n AS late_returns,
           sh.delivered_ts, sh.promised_date, sh.shipping_cost_eur,
           EXTRACT(EPOCH FROM (sh.shipped_ts - o.order_ts)) / 3600 AS hours_to_ship,
           EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400 AS transit_days
    FROM shipments sh
    JOIN orders o ON o.order_id = sh.order_id
    JOIN customers cu ON cu.customer_id = o.customer_id
    JOIN units u ON u.order_id = sh.order_id
    LEFT JOIN late_returns lr ON lr.order_id = sh.order_id
), to_ship AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_reports.catalog)
    SELECT carrier, destination_country,
           CAST(min(hours_to_ship) + (max(hours_to_ship) - min(hours_to_ship))
                * (max(pos) - floor(max(pos))) AS DECIMAL(8, 1)) AS median_hours_to_ship
    FROM (SELECT carrier, destination_country, hours_to_ship,
                 row_number() OVER (PARTITION BY carrier, destination_country
                                    ORDER BY hours_to_ship) AS rn,
                 CAST(count(*) OVER (PARTITION BY carrier, destination_country) - 1 AS FLOAT8)
                     * 0.5 AS pos
          FROM trips WHERE hours_to_ship IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY carrier, destination_country
), transit AS (
    -- one sort for both percentiles of transit days: each fraction q keeps its middle rows
    SELECT carrier, destination_country, q,
           CAST(min(transit_days) + (max(transit_days) - min(transit_days))
                * (max(pos) - floor(max(pos))) AS DECIMAL(8, 2)) AS transit_days
    FROM (SELECT ranked.carrier, ranked.destination_country, ranked.transit_days, ranked.rn,
                 fractions.q, ranked.last_rank * fractions.q AS pos
          FROM (SELECT carrier, destination_country, transit_days,
                       row_number() OVER (PARTITION BY carrier, destination_country
                                          ORDER BY transit_days) AS rn,
                       CAST(count(*) OVER (PARTITION BY carrier, destination_country) - 1
                            AS FLOAT8) AS last_rank
                FROM trips WHERE transit_days IS NOT NULL) AS ranked
          CROSS JOIN (VALUES (0.5), (0.9)) AS fractions (q)) AS at_fraction
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY carrier, destination_country, q
), totals AS (
    SELECT carrier, destination_country, count(*) AS shipments,
           sum(units) AS units,
           count(*) FILTER (WHERE delivered_ts IS NOT NULL) AS delivered,
           CAST(100.0 * count(*) FILTER (
                WHERE CAST(delivered_ts AS DATE) <= promised_date)
                / nullif(count(*) FILTER (WHERE delivered_ts IS NOT NULL), 0)
                AS DECIMAL(6, 2)) AS on_time_pct,
           coalesce(sum(late_returns), 0) AS late_delivery_returns,
           sum(shipping_cost_eur) AS shipping_cost_eur
    FROM trips GROUP BY carrier, destination_country
)
SELECT totals.carrier, totals.destination_country, totals.shipments, totals.units,
       totals.delivered, to_ship.median_hours_to_ship, transit_median.transit_days AS median_transit_days,
       transit_p90.transit_days AS p90_transit_days, totals.on_time_pct, totals.late_delivery_returns,
       totals.shipping_cost_eur
FROM totals
LEFT JOIN to_ship ON to_ship.carrier = totals.carrier
                 AND to_ship.destination_country = totals.destination_country
LEFT JOIN transit transit_median ON transit_median.carrier = totals.carrier
                                AND transit_median.destination_country = totals.destination_country
                                AND transit_median.q = 0.5
LEFT JOIN transit transit_p90 ON transit_p90.carrier = totals.carrier
                             AND transit_p90.destination_country = totals.destination_country
                             AND transit_p90.q = 0.9
ORDER BY totals.carrier, totals.destination_country
