WITH history AS (
    SELECT customer_id, count(*) AS order_count, sum(total_amount) AS lifetime_value_local,
           min(order_ts) AS first_order_ts, max(order_ts) AS last_order_ts,
           count(*) FILTER (WHERE channel = 'store') AS store_order_count
    FROM orders WHERE status <> 'cancelled'
    GROUP BY customer_id
), web AS (
    SELECT customer_id, count(*) AS session_count, max(started_ts) AS last_session_ts
    FROM web_sessions WHERE customer_id IS NOT NULL GROUP BY customer_id
), tickets AS (
    SELECT customer_id, count(*) AS ticket_count FROM support_tickets GROUP BY customer_id
)
SELECT cu.customer_id, cu.email, cu.first_name, cu.last_name,
       cu.first_name || ' ' || cu.last_name AS full_name,
       cu.country_code, k.name AS country_name, r.name AS region_name,
       k.currency_code, cu.city, cu.postal_code, cu.birth_year,
       cu.loyalty_tier, cu.marketing_opt_in, cu.signup_ts,
       CAST(date_trunc('month', cu.signup_ts) AS DATE) AS signup_month,
       coalesce(h.order_count, 0) AS order_count,
       coalesce(h.store_order_count, 0) AS store_order_count,
       coalesce(h.lifetime_value_local, 0) AS lifetime_value_local,
       h.first_order_ts, h.last_order_ts,
       coalesce(web.session_count, 0) AS session_count, web.last_session_ts,
       coalesce(tickets.ticket_count, 0) AS ticket_count
FROM customers cu
JOIN countries k ON k.country_code = cu.country_code
JOIN regions r ON r.region_id = k.region_id
LEFT JOIN history h ON h.customer_id = cu.customer_id
LEFT JOIN web ON web.customer_id = cu.customer_id
LEFT JOIN tickets ON tickets.customer_id = cu.customer_id
ORDER BY cu.customer_id
