WITH cust AS (
    SELECT country_code, count(*) AS customer_count,
           count(*) FILTER (WHERE marketing_opt_in) AS opted_in_count
    FROM customers GROUP BY country_code
), ord AS (
    SELECT cu.country_code, count(*) AS order_count,
           count(DISTINCT o.customer_id) AS buyer_count,
           sum(o.total_amount) AS revenue_local,
           min(o.order_ts) AS first_order_ts, max(o.order_ts) AS last_order_ts
    FROM orders o JOIN customers cu ON cu.customer_id = o.customer_id
    WHERE o.status <> 'cancelled'
    GROUP BY cu.country_code
), ord_median AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_ingest.catalog)
    SELECT country_code,
           CAST(floor((min(total_amount) + max(total_amount)) * 50) * 0.01 AS DECIMAL(14, 2))
               AS median_order_local
    FROM (SELECT cu.country_code, o.total_amount,
                 row_number() OVER (PARTITION BY cu.country_code ORDER BY o.total_amount) AS rn,
                 CAST(count(*) OVER (PARTITION BY cu.country_code) - 1 AS FLOAT8) * 0.5 AS pos
          FROM orders o JOIN customers cu ON cu.customer_id = o.customer_id
          WHERE o.status <> 'cancelled' AND o.total_amount IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY country_code
), web AS (
    SELECT country_code, count(*) AS session_count,
           count(*) FILTER (WHERE converted) AS converted_sessions,
           CAST(sum(page_view_count) AS BIGINT) AS page_view_count
    FROM web_sessions GROUP BY country_code
), delivered AS (
    SELECT cu.country_code, count(*) AS shipment_count
    FROM shipments sh
    JOIN orders o ON o.order_id = sh.order_id
    JOIN customers cu ON cu.customer_id = o.customer_id
    GROUP BY cu.country_code
), transit_median AS (
    SELECT country_code,
           CAST(min(days) + (max(days) - min(days)) * (max(pos) - floor(max(pos)))
                AS DECIMAL(8, 2)) AS median_transit_days
    FROM (SELECT country_code, days,
                 row_number() OVER (PARTITION BY country_code ORDER BY days) AS rn,
                 CAST(count(*) OVER (PARTITION BY country_code) - 1 AS FLOAT8) * 0.5 AS pos
          FROM (SELECT cu.country_code,
                       EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400 AS days
                FROM shipments sh
                JOIN orders o ON o.order_id = sh.order_id
                JOIN customers cu ON cu.customer_id = o.customer_id) AS trips
          WHERE days IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY country_code
), tickets AS (
    SELECT cu.country_code, count(*) AS ticket_count
    FROM support_tickets t JOIN customers cu ON cu.customer_id = t.customer_id
    GROUP BY cu.country_code
)
SELECT k.country_code, k.name, k.region_id, r.name AS region_name, k.currency_code,
       cu.name AS currency_name, k.vat_rate, k.launched_on,
       coalesce(cust.customer_count, 0) AS customer_count,
       coalesce(cust.opted_in_count, 0) AS opted_in_count,
       coalesce(ord.order_count, 0) AS order_count,
       coalesce(ord.buyer_count, 0) AS buyer_count,
       coalesce(ord.revenue_local, 0) AS revenue_local, ord_median.median_order_local,
       ord.first_order_ts, ord.last_order_ts,
       coalesce(web.session_count, 0) AS session_count,
       coalesce(web.converted_sessions, 0) AS converted_sessions,
       coalesce(web.page_view_count, 0) AS page_view_count,
       coalesce(delivered.shipment_count, 0) AS shipment_count,
       transit_median.median_transit_days,
       coalesce(tickets.ticket_count, 0) AS ticket_count
FROM countries k
JOIN regions r ON r.region_id = k.region_id
JOIN currencies cu ON cu.currency_code = k.currency_code
LEFT JOIN cust ON cust.country_code = k.country_code
LEFT JOIN ord ON ord.country_code = k.country_code
LEFT JOIN ord_median ON ord_median.country_code = k.country_code
LEFT JOIN web ON web.country_code = k.country_code
LEFT JOIN delivered ON delivered.country_code = k.country_code
LEFT JOIN transit_median ON transit_median.country_code = k.country_code
LEFT JOIN tickets ON tickets.country_code = k.country_code
ORDER BY k.country_code
