WITH firsts AS (
    SELECT customer_id, min(order_ts) AS first_order_ts
    FROM orders WHERE status <> 'cancelled' GROUP BY customer_id
), units AS (
    SELECT order_id, sum(quantity) AS units FROM order_items GROUP BY order_id
), sold AS NOT MATERIALIZED (
    -- each use below reads it afresh: held in memory for all of them (DuckDB's way with a CTE
    -- used twice), it outgrew the DuckDB budget at scale 10
    SELECT CAST(date_trunc('month', o.order_ts) AS DATE) AS month, o.currency, o.customer_id,
           o.order_ts = f.first_order_ts AS is_first, u.units, o.subtotal,
           o.discount_amount, o.shipping_fee, o.total_amount
    FROM orders o
    JOIN firsts f ON f.customer_id = o.customer_id
    JOIN units u ON u.order_id = o.order_id
    WHERE o.status <> 'cancelled'
), medians AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_reports.catalog)
    SELECT month, currency,
           CAST(floor((min(total_amount) + max(total_amount)) * 50) * 0.01 AS DECIMAL(14, 2))
               AS median_order_value
    FROM (SELECT month, currency, total_amount,
                 row_number() OVER (PARTITION BY month, currency ORDER BY total_amount) AS rn,
                 CAST(count(*) OVER (PARTITION BY month, currency) - 1 AS FLOAT8) * 0.5 AS pos
          FROM sold WHERE total_amount IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY month, currency
), totals AS (
    SELECT month, currency,
           count(*) AS orders, count(DISTINCT customer_id) AS customers,
           count(DISTINCT customer_id) FILTER (WHERE is_first) AS new_customers,
           sum(units) AS units,
           sum(subtotal) AS gross_revenue, sum(discount_amount) AS discounts,
           sum(shipping_fee) AS shipping_fees, sum(total_amount) AS net_revenue,
           coalesce(sum(total_amount) FILTER (WHERE is_first), 0) AS net_revenue_new_customers
    FROM sold
    GROUP BY month, currency
)
SELECT totals.*, medians.median_order_value
FROM totals
LEFT JOIN medians ON medians.month = totals.month AND medians.currency = totals.currency
ORDER BY totals.month, totals.currency
