-- The same figures from operators DuckDB can spill (a sort per group, a DISTINCT), in SQL
-- PostgreSQL runs too: the median is the mean of the middle one or two rows of each group,
-- in exact decimals and cut to the cent as DuckDB's percentile_cont cuts a decimal (581.10
-- and 581.17 give 581.13, not 581.14).
WITH lines AS (
    SELECT o.currency, i.product_id, i.unit_price
    FROM order_items i JOIN orders o ON o.order_id = i.order_id
), ranked AS (
    SELECT currency, unit_price,
           row_number() OVER (PARTITION BY currency ORDER BY unit_price) AS rn,
           count(*) OVER (PARTITION BY currency) AS n
    FROM lines
), medians AS (
    SELECT currency, CAST(floor((min(unit_price) + max(unit_price)) * 50) * 0.01 AS DECIMAL(14, 2)) AS median_unit_price
    FROM ranked
    WHERE rn IN (floor((n + 1) / 2.0), ceil((n + 1) / 2.0))
    GROUP BY currency
), products AS (
    SELECT currency, count(*) AS products_sold
    FROM (SELECT DISTINCT currency, product_id FROM lines) AS d
    GROUP BY currency
)
SELECT p.currency, p.products_sold, m.median_unit_price
FROM products p JOIN medians m ON m.currency = p.currency
ORDER BY p.currency
