SELECT s.session_id, s.customer_id, s.customer_id IS NOT NULL AS is_logged_in,
       cu.loyalty_tier, s.country_code, s.started_ts, s.ended_ts,
       CAST(s.started_ts AS DATE) AS session_date,
       CAST(EXTRACT(HOUR FROM s.started_ts) AS INTEGER) AS start_hour,
       CAST(EXTRACT(EPOCH FROM (s.ended_ts - s.started_ts)) AS INTEGER)
           AS duration_seconds,
       s.device, s.browser, s.landing_page, s.utm_source, s.page_view_count,
       s.page_view_count = 1 AS is_bounce, s.converted
FROM web_sessions s
LEFT JOIN customers cu ON cu.customer_id = s.customer_id
ORDER BY s.session_id
