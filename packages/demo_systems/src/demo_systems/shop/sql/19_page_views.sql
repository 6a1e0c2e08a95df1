CREATE TABLE page_views AS
WITH offsets AS (
    -- ids follow (session_id, seq): a window over sessions, not over every view
    SELECT session_id, started_ts, ended_ts, page_view_count,
           CAST(sum(page_view_count) OVER (ORDER BY session_id) - page_view_count AS BIGINT)
               AS first_id
    FROM web_sessions
), v AS (
    SELECT session_id, started_ts, ended_ts, page_view_count, first_id,
           unnest(range(page_view_count)) + 1 AS seq
    FROM offsets
), t AS (
    SELECT v.*, v.session_id * 16 + v.seq AS k, u(v.session_id * 16 + v.seq, 'pv-type') AS tu
    FROM v
)
SELECT first_id + seq AS view_id,
       session_id, seq,
       started_ts + secs(epoch(ended_ts - started_ts) * (seq - 1) / page_view_count)
           AS viewed_ts,
       CASE WHEN tu < 0.5 THEN 'product' WHEN tu < 0.75 THEN 'category'
            WHEN tu < 0.87 THEN 'search' WHEN tu < 0.95 THEN 'cart' ELSE 'checkout' END
           AS page_type,
       CASE WHEN tu < 0.5
            THEN '/p/' || (1 + CAST(floor($n_products * pow(u(k, 'pv-prod'), 2)) AS BIGINT))
            WHEN tu < 0.75 THEN '/c/' || ri(k, 'pv-cat', $n_top + 1, $n_categories)
            WHEN tu < 0.87 THEN '/search?q=' || pick($nouns, k, 'pv-q')
            WHEN tu < 0.95 THEN '/cart' ELSE '/checkout' END AS url,
       CASE WHEN tu < 0.5
            THEN 1 + CAST(floor($n_products * pow(u(k, 'pv-prod'), 2)) AS BIGINT) END
           AS product_id,
       ri(k, 'pv-time', 800, 180000) AS time_on_page_ms
FROM t
