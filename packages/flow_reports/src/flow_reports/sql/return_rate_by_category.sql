WITH lines AS (
    SELECT i.order_item_id, i.order_id, i.product_id, i.quantity, o.order_ts,
           o.customer_id, coalesce(c.parent_id, c.category_id) AS top_id
    FROM order_items i
    JOIN orders o ON o.order_id = i.order_id
    JOIN products p ON p.product_id = i.product_id
    JOIN categories c ON c.category_id = p.category_id
    WHERE o.status = 'completed'
), back AS (
    SELECT l.top_id, r.reason, r.quantity, l.order_id, l.product_id,
           EXTRACT(EPOCH FROM (r.requested_ts - l.order_ts)) / 86400 AS days
    FROM returns r JOIN lines l ON l.order_item_id = r.order_item_id
), reasons AS (
    SELECT top_id, reason,
           row_number() OVER (PARTITION BY top_id ORDER BY count(*) DESC, reason) AS rn
    FROM back GROUP BY top_id, reason
), returned AS (
    SELECT top_id, count(*) AS returns, sum(quantity) AS units_returned
    FROM back GROUP BY top_id
), return_median AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_reports.catalog)
    SELECT top_id,
           CAST(min(days) + (max(days) - min(days)) * (max(pos) - floor(max(pos)))
                AS DECIMAL(6, 1)) AS median_days_to_return
    FROM (SELECT top_id, days,
                 row_number() OVER (PARTITION BY top_id ORDER BY days) AS rn,
                 CAST(count(*) OVER (PARTITION BY top_id) - 1 AS FLOAT8) * 0.5 AS pos
          FROM back WHERE days IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY top_id
), sold AS (
    SELECT top_id, sum(quantity) AS units_sold, count(*) AS lines
    FROM lines GROUP BY top_id
), rated AS (
    SELECT l.top_id,
           CAST(avg(v.rating) FILTER (WHERE b.order_id IS NOT NULL) AS DECIMAL(4, 2))
               AS avg_rating_returned,
           CAST(avg(v.rating) FILTER (WHERE b.order_id IS NULL) AS DECIMAL(4, 2))
               AS avg_rating_kept
    FROM reviews v
    JOIN lines l ON l.order_id = v.order_id AND l.product_id = v.product_id
    LEFT JOIN (SELECT DISTINCT order_id, product_id FROM back) b
           ON b.order_id = v.order_id AND b.product_id = v.product_id
    GROUP BY l.top_id
)
SELECT c.category_id, c.name AS category, sold.lines, sold.units_sold,
       coalesce(returned.returns, 0) AS returns,
       coalesce(returned.units_returned, 0) AS units_returned,
       CAST(100.0 * coalesce(returned.units_returned, 0) / sold.units_sold
            AS DECIMAL(6, 2)) AS return_rate_pct,
       reasons.reason AS top_reason, return_median.median_days_to_return,
       rated.avg_rating_returned, rated.avg_rating_kept
FROM sold
JOIN categories c ON c.category_id = sold.top_id
LEFT JOIN returned ON returned.top_id = sold.top_id
LEFT JOIN return_median ON return_median.top_id = sold.top_id
LEFT JOIN reasons ON reasons.top_id = sold.top_id AND reasons.rn = 1
LEFT JOIN rated ON rated.top_id = sold.top_id
ORDER BY return_rate_pct DESC, c.category_id
