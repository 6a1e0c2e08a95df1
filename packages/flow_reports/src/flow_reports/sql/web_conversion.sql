WITH views AS (
    SELECT session_id,
           count(*) FILTER (WHERE page_type = 'product') AS product_views,
           count(*) FILTER (WHERE page_type IN ('cart', 'checkout')) AS cart_views,
           sum(time_on_page_ms) AS time_ms
    FROM page_views GROUP BY session_id
)
SELECT CAST(date_trunc('month', s.started_ts) AS DATE) AS month, s.device,
       count(*) AS sessions,
       count(*) FILTER (WHERE s.customer_id IS NOT NULL) AS logged_in_sessions,
       count(DISTINCT s.customer_id) AS known_visitors,
       count(*) FILTER (WHERE s.page_view_count = 1) AS bounces,
       sum(v.product_views) AS product_views,
       count(*) FILTER (WHERE v.cart_views > 0) AS sessions_with_cart,
       count(*) FILTER (WHERE s.converted) AS converted_sessions,
       CAST(100.0 * count(*) FILTER (WHERE s.converted) / count(*) AS DECIMAL(6, 2))
           AS conversion_pct,
       CAST(avg(v.time_ms) / 1000 AS DECIMAL(10, 1)) AS avg_seconds_on_site
FROM web_sessions s JOIN views v ON v.session_id = s.session_id
GROUP BY 1, 2
ORDER BY month, s.device
