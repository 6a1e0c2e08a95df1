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
), ticket_rows AS NOT MATERIALIZED (
    -- each use below reads it afresh: held in memory for all of them (DuckDB's way with a CTE
    -- used twice), it outgrew the DuckDB budget at scale 10
    SELECT t.priority, t.category, t.status, t.first_response_ts, t.satisfaction_score,
           t.customer_id, t.order_id, t.agent_name, cu.country_code,
           late.order_id IS NOT NULL AS after_late_delivery,
           ret.order_id IS NOT NULL AS after_return,
           pc.tickets_of_customer, h.orders_of_customer,
           EXTRACT(EPOCH FROM (t.first_response_ts - t.opened_ts)) / 3600 AS hours_to_response,
           EXTRACT(EPOCH FROM (t.resolved_ts - t.opened_ts)) / 3600 AS hours_to_resolution
    FROM support_tickets t
    JOIN customers cu ON cu.customer_id = t.customer_id
    JOIN per_customer pc ON pc.customer_id = t.customer_id
    LEFT JOIN history h ON h.customer_id = t.customer_id
    LEFT JOIN late ON late.order_id = t.order_id
    LEFT JOIN returned ret ON ret.order_id = t.order_id
), response_median AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_reports.catalog)
    SELECT priority, category,
           CAST(min(hours_to_response) + (max(hours_to_response) - min(hours_to_response))
                * (max(pos) - floor(max(pos))) AS DECIMAL(10, 2))
               AS median_hours_to_first_response
    FROM (SELECT priority, category, hours_to_response,
                 row_number() OVER (PARTITION BY priority, category ORDER BY hours_to_response) AS rn,
                 CAST(count(*) OVER (PARTITION BY priority, category) - 1 AS FLOAT8) * 0.5 AS pos
          FROM ticket_rows WHERE hours_to_response IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY priority, category
), resolution_p90 AS (
    SELECT priority, category,
           CAST(min(hours_to_resolution) + (max(hours_to_resolution) - min(hours_to_resolution))
                * (max(pos) - floor(max(pos))) AS DECIMAL(10, 2)) AS p90_hours_to_resolution
    FROM (SELECT priority, category, hours_to_resolution,
                 row_number() OVER (PARTITION BY priority, category ORDER BY hours_to_resolution) AS rn,
                 CAST(count(*) OVER (PARTITION BY priority, category) - 1 AS FLOAT8) * 0.9 AS pos
          FROM ticket_rows WHERE hours_to_resolution IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY priority, category
), totals AS (
    SELECT priority, category, count(*) AS tickets,
           count(*) FILTER (WHERE status = 'open') AS open_tickets,
           count(*) FILTER (WHERE status = 'pending') AS pending_tickets,
           count(*) FILTER (WHERE first_response_ts IS NULL) AS unanswered,
           count(*) FILTER (WHERE after_late_delivery) AS after_late_delivery,
           count(*) FILTER (WHERE after_return) AS after_return,
           count(*) FILTER (WHERE tickets_of_customer > 1) AS from_repeat_contacts,
           CAST(avg(coalesce(orders_of_customer, 0)) AS DECIMAL(8, 2))
               AS avg_orders_of_customer,
           CAST(avg(satisfaction_score) AS DECIMAL(4, 2)) AS avg_satisfaction
    FROM ticket_rows GROUP BY priority, category
), ticket_customers AS (
    -- a DISTINCT each, then counted: four count(DISTINCT ...) in one aggregate held all
    -- their values at once (over 192MB of DuckDB at scale 10)
    SELECT priority, category, count(*) AS n
    FROM (SELECT DISTINCT priority, category, customer_id FROM ticket_rows
          WHERE customer_id IS NOT NULL) AS seen
    GROUP BY priority, category
), ticket_orders AS (
    SELECT priority, category, count(*) AS n
    FROM (SELECT DISTINCT priority, category, order_id FROM ticket_rows
          WHERE order_id IS NOT NULL) AS seen
    GROUP BY priority, category
), ticket_agents AS (
    SELECT priority, category, count(*) AS n
    FROM (SELECT DISTINCT priority, category, agent_name FROM ticket_rows
          WHERE agent_name IS NOT NULL) AS seen
    GROUP BY priority, category
), ticket_countries AS (
    SELECT priority, category, count(*) AS n
    FROM (SELECT DISTINCT priority, category, country_code FROM ticket_rows
          WHERE country_code IS NOT NULL) AS seen
    GROUP BY priority, category
)
SELECT totals.priority, totals.category, totals.tickets, totals.open_tickets,
       totals.pending_tickets, totals.unanswered, totals.after_late_delivery,
       totals.after_return, totals.from_repeat_contacts, totals.avg_orders_of_customer,
       response_median.median_hours_to_first_response,
       resolution_p90.p90_hours_to_resolution, totals.avg_satisfaction,
       coalesce(ticket_customers.n, 0) AS customers, coalesce(ticket_orders.n, 0) AS orders,
       coalesce(ticket_agents.n, 0) AS agents, coalesce(ticket_countries.n, 0) AS countries
FROM totals
LEFT JOIN ticket_customers ON ticket_customers.priority = totals.priority
                           AND ticket_customers.category = totals.category
LEFT JOIN ticket_orders ON ticket_orders.priority = totals.priority
                        AND ticket_orders.category = totals.category
LEFT JOIN ticket_agents ON ticket_agents.priority = totals.priority
                        AND ticket_agents.category = totals.category
LEFT JOIN ticket_countries ON ticket_countries.priority = totals.priority
                           AND ticket_countries.category = totals.category
LEFT JOIN response_median ON response_median.priority = totals.priority
                         AND response_median.category = totals.category
LEFT JOIN resolution_p90 ON resolution_p90.priority = totals.priority
                        AND resolution_p90.category = totals.category
ORDER BY CASE totals.priority WHEN 'urgent' THEN 1 WHEN 'high' THEN 2
                              WHEN 'normal' THEN 3 ELSE 4 END, totals.category
