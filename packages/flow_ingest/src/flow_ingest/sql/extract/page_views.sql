SELECT v.view_id, v.session_id, v.seq, v.viewed_ts, s.device, s.utm_source,
       s.country_code, v.page_type, v.url, v.product_id, p.category_id,
       v.time_on_page_ms, v.seq = s.page_view_count AS is_exit
FROM page_views v
JOIN web_sessions s ON s.session_id = v.session_id
LEFT JOIN products p ON p.product_id = v.product_id
ORDER BY v.view_id
