-- Order lines by currency as the roll-ups write it today: holistic aggregates, whose values
-- DuckDB keeps whole per group.
SELECT o.currency,
       count(DISTINCT i.product_id) AS products_sold,
       CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY i.unit_price) AS DECIMAL(14, 2)) AS median_unit_price
FROM order_items i JOIN orders o ON o.order_id = i.order_id
GROUP BY o.currency
ORDER BY o.currency
