SELECT t.ticket_id, t.customer_id, cu.country_code, t.order_id,
       o.channel AS order_channel, t.channel, t.category, t.priority, t.status,
       t.status IN ('open', 'pending') AS is_open, t.subject, t.agent_name,
       t.opened_ts, t.first_response_ts, t.resolved_ts,
       CAST(EXTRACT(EPOCH FROM (t.first_response_ts - t.opened_ts)) / 3600
            AS DECIMAL(8, 2)) AS hours_to_first_response,
       CAST(EXTRACT(EPOCH FROM (t.resolved_ts - t.opened_ts)) / 3600
            AS DECIMAL(8, 2)) AS hours_to_resolution,
       t.satisfaction_score
FROM support_tickets t
JOIN customers cu ON cu.customer_id = t.customer_id
LEFT JOIN orders o ON o.order_id = t.order_id
ORDER BY t.ticket_id
