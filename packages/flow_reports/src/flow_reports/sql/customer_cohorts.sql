WITH valid AS (
    SELECT o.customer_id, o.order_id,
           CAST(date_trunc('month', o.order_ts) AS DATE) AS month
    FROM orders o WHERE o.status <> 'cancelled'
), firsts AS (
    SELECT customer_id, min(month) AS cohort_month FROM valid GROUP BY customer_id
), sized AS (
    SELECT cohort_month, count(*) AS cohort_size FROM firsts GROUP BY cohort_month
), units AS (
    SELECT order_id, sum(quantity) AS units FROM order_items GROUP BY order_id
), activity AS NOT MATERIALIZED (
    -- each use below reads it afresh, as in revenue_by_month (where DuckDB held a CTE used
    -- twice whole and outgrew its budget at scale 10); not measured without it here
    SELECT f.cohort_month,
           CAST((EXTRACT(YEAR FROM v.month) - EXTRACT(YEAR FROM f.cohort_month)) * 12
                + EXTRACT(MONTH FROM v.month) - EXTRACT(MONTH FROM f.cohort_month)
                AS INTEGER) AS months_since_first,
           v.customer_id, u.units
    FROM valid v
    JOIN firsts f ON f.customer_id = v.customer_id
    JOIN units u ON u.order_id = v.order_id
), active AS (
    -- a DISTINCT, then counted: count(DISTINCT ...) held every customer of the aggregate at
    -- once (over 160MB of DuckDB at scale 10)
    SELECT cohort_month, months_since_first, count(*) AS active_customers
    FROM (SELECT DISTINCT cohort_month, months_since_first, customer_id FROM activity) AS seen
    GROUP BY cohort_month, months_since_first
), totals AS (
    SELECT cohort_month, months_since_first, count(*) AS orders, sum(units) AS units
    FROM activity GROUP BY cohort_month, months_since_first
)
SELECT t.cohort_month, t.months_since_first, s.cohort_size, a.active_customers, t.orders,
       t.units,
       CAST(100.0 * a.active_customers / s.cohort_size AS DECIMAL(6, 2)) AS retention_pct
FROM totals t
JOIN active a ON a.cohort_month = t.cohort_month AND a.months_since_first = t.months_since_first
JOIN sized s ON s.cohort_month = t.cohort_month
ORDER BY t.cohort_month, t.months_since_first
