WITH geo AS (
    SELECT country_code, region_id FROM countries
), ord AS (
    SELECT g.region_id, count(*) AS order_count,
           count(DISTINCT o.customer_id) AS buyer_count,
           count(DISTINCT o.currency) AS currency_count
    FROM orders o
    JOIN customers cu ON cu.customer_id = o.customer_id
    JOIN geo g ON g.country_code = cu.country_code
    WHERE o.status <> 'cancelled'
    GROUP BY g.region_id
), web AS (
    SELECT g.region_id, count(*) AS session_count,
           count(*) FILTER (WHERE s.converted) AS converted_sessions
    FROM web_sessions s JOIN geo g ON g.country_code = s.country_code
    GROUP BY g.region_id
), viewed AS (
    SELECT g.region_id, count(*) AS page_view_count,
           count(DISTINCT v.product_id) AS products_viewed
    FROM page_views v
    JOIN web_sessions s ON s.session_id = v.session_id
    JOIN geo g ON g.country_code = s.country_code
    GROUP BY g.region_id
), tickets AS (
    SELECT g.region_id, count(*) AS ticket_count,
           count(*) FILTER (WHERE t.status IN ('open', 'pending')) AS open_ticket_count
    FROM support_tickets t
    JOIN customers cu ON cu.customer_id = t.customer_id
    JOIN geo g ON g.country_code = cu.country_code
    GROUP BY g.region_id
), sites AS (
    SELECT g.region_id, count(DISTINCT g.country_code) AS country_count,
           (SELECT count(*) FROM stores s JOIN geo g2 ON g2.country_code = s.country_code
            WHERE g2.region_id = g.region_id) AS store_count,
           (SELECT count(*) FROM warehouses w JOIN geo g3 ON g3.country_code = w.country_code
            WHERE g3.region_id = g.region_id) AS warehouse_count
    FROM geo g GROUP BY g.region_id
)
SELECT r.region_id, r.region_code, r.name, r.sales_director, r.hq_city, r.created_on,
       coalesce(sites.country_count, 0) AS country_count,
       coalesce(sites.store_count, 0) AS store_count,
       coalesce(sites.warehouse_count, 0) AS warehouse_count,
       coalesce(ord.order_count, 0) AS order_count,
       coalesce(ord.buyer_count, 0) AS buyer_count,
       coalesce(ord.currency_count, 0) AS currency_count,
       coalesce(web.session_count, 0) AS session_count,
       coalesce(web.converted_sessions, 0) AS converted_sessions,
       coalesce(viewed.page_view_count, 0) AS page_view_count,
       coalesce(viewed.products_viewed, 0) AS products_viewed,
       coalesce(tickets.ticket_count, 0) AS ticket_count,
       coalesce(tickets.open_ticket_count, 0) AS open_ticket_count
FROM regions r
LEFT JOIN sites ON sites.region_id = r.region_id
LEFT JOIN ord ON ord.region_id = r.region_id
LEFT JOIN web ON web.region_id = r.region_id
LEFT JOIN viewed ON viewed.region_id = r.region_id
LEFT JOIN tickets ON tickets.region_id = r.region_id
ORDER BY r.region_id
