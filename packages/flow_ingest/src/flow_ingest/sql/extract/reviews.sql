SELECT v.review_id, v.product_id, p.sku, p.brand, p.category_id,
       c.name AS category_name, v.customer_id, cu.country_code, v.order_id,
       v.rating, v.rating >= 4 AS is_positive, v.title, v.body,
       length(v.body) AS body_length, v.created_ts,
       CAST(date_trunc('month', v.created_ts) AS DATE) AS created_month,
       v.helpful_votes, v.verified_purchase
FROM reviews v
JOIN products p ON p.product_id = v.product_id
JOIN categories c ON c.category_id = p.category_id
JOIN customers cu ON cu.customer_id = v.customer_id
ORDER BY v.review_id
