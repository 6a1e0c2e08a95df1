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
)
SELECT f.cohort_month,
       CAST((EXTRACT(YEAR FROM v.month) - EXTRACT(YEAR FROM f.cohort_month)) * 12
            + EXTRACT(MONTH FROM v.month) - EXTRACT(MONTH FROM f.cohort_month)
            AS INTEGER) AS months_since_first,
       s.cohort_size,
       count(DISTINCT v.customer_id) AS active_customers,
       count(*) AS orders,
       sum(u.units) AS units,
       CAST(100.0 * count(DISTINCT v.customer_id) / s.cohort_size AS DECIMAL(6, 2))
           AS retention_pct
FROM valid v
JOIN firsts f ON f.customer_id = v.customer_id
JOIN sized s ON s.cohort_month = f.cohort_month
JOIN units u ON u.order_id = v.order_id
GROUP BY f.cohort_month, 2, s.cohort_size
ORDER BY f.cohort_month, months_since_first
