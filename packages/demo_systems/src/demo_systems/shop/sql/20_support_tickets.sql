CREATE TABLE support_tickets AS
WITH t AS (
    SELECT range + 1 AS ticket_id,
           CASE WHEN u(range, 'tk-has-order') < 0.75
                THEN ri(range, 'tk-order', 1, $n_orders) END AS order_id,
           ri(range, 'tk-cust', 1, $n_customers) AS any_customer_id,
           u(range, 'tk-status') AS su
    FROM range($n_tickets)
), j AS (
    SELECT t.*, coalesce(o.customer_id, t.any_customer_id) AS customer_id,
           coalesce(o.order_ts + secs(86400 * u(t.ticket_id, 'tk-open') * 20),
                    CAST($start_ts AS TIMESTAMP)
                        + secs(u(t.ticket_id, 'tk-open') * $span_s)) AS opened_ts
    FROM t LEFT JOIN orders o USING (order_id)
)
SELECT ticket_id, customer_id, order_id,
       pick(['email', 'email', 'chat', 'chat', 'phone', 'social'], ticket_id, 'tk-ch')
           AS channel,
       CASE WHEN order_id IS NULL
            THEN pick(['account', 'product question', 'other'], ticket_id, 'tk-cat')
            ELSE pick(['delivery', 'delivery', 'refund', 'payment', 'damaged item',
                       'product question'], ticket_id, 'tk-cat') END AS category,
       pick(['low', 'normal', 'normal', 'normal', 'high', 'urgent'], ticket_id, 'tk-prio')
           AS priority,
       CASE WHEN su < 0.08 THEN 'open' WHEN su < 0.15 THEN 'pending'
            WHEN su < 0.6 THEN 'solved' ELSE 'closed' END AS status,
       pick($ticket_subjects, ticket_id, 'tk-subj') AS subject,
       opened_ts,
       CASE WHEN su >= 0.03
            THEN opened_ts + secs(60 * (5 + 2880 * pow(u(ticket_id, 'tk-resp'), 3))) END
           AS first_response_ts,
       CASE WHEN su >= 0.15
            THEN opened_ts + secs(3600 * (1 + 240 * pow(u(ticket_id, 'tk-res'), 2))) END
           AS resolved_ts,
       pick($first_names, ticket_id, 'tk-agent') || ' (agent '
           || ri(ticket_id, 'tk-agent-no', 1, 60) || ')' AS agent_name,
       CASE WHEN su >= 0.15 AND u(ticket_id, 'tk-csat') < 0.4
            THEN ri(ticket_id, 'tk-score', 1, 5) END AS satisfaction_score
FROM j
