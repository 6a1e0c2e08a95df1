WITH late AS (
    SELECT order_id FROM shipments
    WHERE CAST(delivered_ts AS DATE) > promised_date
       OR (delivered_ts IS NULL AND shipped_ts IS NOT NULL)
), returned AS (
    SELECT DISTINCT order_id FROM returns
), per_customer AS (
    SELECT customer_id, count(*) AS tickets_of_customer
    FROM support_tickets GROUP BY customer_id
), history AS (
    SELECT customer_id, count(*) AS orders_of_customer
    FROM orders GROUP BY customer_id
)
SELECT t.priority, t.category, count(*) AS tickets,
       count(*) FILTER (WHERE t.status = 'open') AS open_tickets,
       count(*) FILTER (WHERE t.status = 'pending') AS pending_tickets,
       count(*) FILTER (WHERE t.first_response_ts IS NULL) AS unanswered,
       count(*) FILTER (WHERE late.order_id IS NOT NULL) AS after_late_delivery,
       count(*) FILTER (WHERE ret.order_id IS NOT NULL) AS after_return,
       count(*) FILTER (WHERE pc.tickets_of_customer > 1) AS from_repeat_contacts,
       CAST(avg(coalesce(h.orders_of_customer, 0)) AS DECIMAL(8, 2))
           AS avg_orders_of_customer,
       CAST(percentile_cont(0.5) WITHIN GROUP (
            ORDER BY EXTRACT(EPOCH FROM (t.first_response_ts - t.opened_ts)) / 3600)
            AS DECIMAL(10, 2)) AS median_hours_to_first_response,
       CAST(percentile_cont(0.9) WITHIN GROUP (
            ORDER BY EXTRACT(EPOCH FROM (t.resolved_ts - t.opened_ts)) / 3600)
            AS DECIMAL(10, 2)) AS p90_hours_to_resolution,
       CAST(avg(t.satisfaction_score) AS DECIMAL(4, 2)) AS avg_satisfaction,
       count(DISTINCT t.customer_id) AS customers,
       count(DISTINCT t.order_id) AS orders,
       count(DISTINCT t.agent_name) AS agents,
       count(DISTINCT cu.country_code) AS countries
FROM support_tickets t
JOIN customers cu ON cu.customer_id = t.customer_id
JOIN per_customer pc ON pc.customer_id = t.customer_id
LEFT JOIN history h ON h.customer_id = t.customer_id
LEFT JOIN late ON late.order_id = t.order_id
LEFT JOIN returned ret ON ret.order_id = t.order_id
GROUP BY t.priority, t.category
ORDER BY CASE t.priority WHEN 'urgent' THEN 1 WHEN 'high' THEN 2
                         WHEN 'normal' THEN 3 ELSE 4 END, t.category
