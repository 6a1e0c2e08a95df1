CREATE TABLE web_sessions AS
WITH s AS (
    SELECT range + 1 AS session_id,
           CASE WHEN u(range, 'ws-logged') < 0.45
                THEN 1 + CAST(floor($n_customers * pow(u(range, 'ws-cust'), 1.5)) AS BIGINT)
           END AS customer_id,
           CAST($start_ts AS TIMESTAMP) + secs(u(range, 'ws-ts') * $span_s) AS started_ts,
           1 + CAST(floor(9 * pow(u(range, 'ws-views'), 2)) AS INTEGER) AS page_view_count
    FROM range($n_sessions)
)
SELECT s.session_id, s.customer_id,
       coalesce(c.country_code, pick($weighted_countries, s.session_id, 'ws-country'))
           AS country_code,
       s.started_ts,
       s.started_ts + secs(s.page_view_count * ri(s.session_id, 'ws-dur', 8, 160))
           AS ended_ts,
       pick(['mobile', 'mobile', 'mobile', 'desktop', 'desktop', 'tablet'],
            s.session_id, 'ws-device') AS device,
       pick(['Chrome', 'Safari', 'Firefox', 'Edge', 'Samsung Internet'],
            s.session_id, 'ws-browser') AS browser,
       pick(['/', '/sale', '/new-in', '/search', '/c/clothing', '/c/home', '/p/bestsellers'],
            s.session_id, 'ws-landing') AS landing_page,
       pick(['google', 'google', 'direct', 'direct', 'newsletter', 'instagram', 'tiktok',
             'affiliate', 'bing'], s.session_id, 'ws-utm') AS utm_source,
       s.page_view_count,
       s.page_view_count >= 3
           AND u(s.session_id, 'ws-conv') < 0.02 + 0.012 * s.page_view_count AS converted
FROM s LEFT JOIN customers c USING (customer_id)
