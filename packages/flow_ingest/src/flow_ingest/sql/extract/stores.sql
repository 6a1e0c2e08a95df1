WITH store_orders AS (
    SELECT order_id, store_id, customer_id, total_amount, item_count, order_ts
    FROM orders
    WHERE store_id IS NOT NULL AND status <> 'cancelled'
), sales AS (
    SELECT store_id, count(*) AS order_count,
           count(DISTINCT customer_id) AS customer_count,
           sum(total_amount) AS revenue_local,
           min(order_ts) AS first_order_ts, max(order_ts) AS last_order_ts
    FROM store_orders GROUP BY store_id
), sales_median AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_ingest.catalog)
    SELECT store_id,
           CAST(floor((min(total_amount) + max(total_amount)) * 50) * 0.01 AS DECIMAL(14, 2))
               AS median_basket_local
    FROM (SELECT store_id, total_amount,
                 row_number() OVER (PARTITION BY store_id ORDER BY total_amount) AS rn,
                 CAST(count(*) OVER (PARTITION BY store_id) - 1 AS FLOAT8) * 0.5 AS pos
          FROM store_orders WHERE total_amount IS NOT NULL) AS by_basket
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY store_id
), assortment AS (
    SELECT so.store_id, count(DISTINCT i.product_id) AS products_sold
    FROM store_orders so JOIN order_items i ON i.order_id = so.order_id
    GROUP BY so.store_id
), online AS (
    SELECT DISTINCT customer_id FROM orders WHERE channel <> 'store'
), omni AS (
    SELECT so.store_id, count(DISTINCT so.customer_id) AS omnichannel_customers
    FROM store_orders so JOIN online ON online.customer_id = so.customer_id
    GROUP BY so.store_id
), store_customers AS (
    SELECT DISTINCT store_id, customer_id FROM store_orders
), browsing AS (
    SELECT sc.store_id, count(*) AS customer_web_sessions
    FROM store_customers sc JOIN web_sessions ws ON ws.customer_id = sc.customer_id
    GROUP BY sc.store_id
), by_category AS (
    SELECT so.store_id, coalesce(c.parent_id, c.category_id) AS top_category_id,
           sum(i.quantity) AS units
    FROM store_orders so
    JOIN order_items i ON i.order_id = so.order_id
    JOIN products p ON p.product_id = i.product_id
    JOIN categories c ON c.category_id = p.category_id
    GROUP BY so.store_id, coalesce(c.parent_id, c.category_id)
), ranked AS (
    SELECT store_id, top_category_id, units,
           CAST(sum(units) OVER (PARTITION BY store_id) AS BIGINT) AS units_sold,
           row_number() OVER (PARTITION BY store_id
                              ORDER BY units DESC, top_category_id) AS rn
    FROM by_category
)
SELECT s.store_id, s.store_code, s.name, s.store_type, s.country_code,
       k.name AS country_name, r.name AS region_name, k.currency_code,
       s.city, s.street_address, s.postal_code, s.floor_area_m2, s.opened_on,
       s.manager_name, s.phone,
       coalesce(sales.order_count, 0) AS order_count,
       coalesce(sales.customer_count, 0) AS customer_count,
       coalesce(sales.revenue_local, 0) AS revenue_local, sales_median.median_basket_local,
       coalesce(omni.omnichannel_customers, 0) AS omnichannel_customers,
       coalesce(browsing.customer_web_sessions, 0) AS customer_web_sessions,
       coalesce(ranked.units_sold, 0) AS units_sold,
       coalesce(assortment.products_sold, 0) AS products_sold,
       ranked.top_category_id AS best_top_category_id,
       sales.first_order_ts, sales.last_order_ts
FROM stores s
JOIN countries k ON k.country_code = s.country_code
JOIN regions r ON r.region_id = k.region_id
LEFT JOIN sales ON sales.store_id = s.store_id
LEFT JOIN sales_median ON sales_median.store_id = s.store_id
LEFT JOIN omni ON omni.store_id = s.store_id
LEFT JOIN browsing ON browsing.store_id = s.store_id
LEFT JOIN assortment ON assortment.store_id = s.store_id
LEFT JOIN ranked ON ranked.store_id = s.store_id AND ranked.rn = 1
ORDER BY s.store_id
