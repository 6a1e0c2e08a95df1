CREATE TABLE reviews AS
WITH r AS (
    SELECT i.order_item_id, i.product_id, o.customer_id, o.order_id, o.order_ts,
           u(i.order_item_id, 'rev-rating') AS ru
    FROM order_items i JOIN orders o USING (order_id)
    WHERE o.status = 'completed' AND u(i.order_item_id, 'rev') < 0.3
)
SELECT row_number() OVER (ORDER BY order_item_id) AS review_id,
       product_id, customer_id, order_id,
       CASE WHEN ru < 0.05 THEN 1 WHEN ru < 0.12 THEN 2 WHEN ru < 0.25 THEN 3
            WHEN ru < 0.55 THEN 4 ELSE 5 END AS rating,
       pick($review_titles, order_item_id, 'rev-title') AS title,
       'I bought this ' || pick($words, order_item_id, 'rev-w1') || ' '
           || pick($nouns, order_item_id, 'rev-n') || ' for my '
           || pick(['partner', 'kids', 'office', 'trip', 'home', 'friend'], order_item_id, 'rev-for')
           || '. ' || pick(['Quality is great', 'Colour is a bit off', 'Fits as expected',
                            'Packaging was poor', 'Arrived quickly', 'Sturdier than it looks'],
                           order_item_id, 'rev-s1')
           || ' and ' || pick(['I would recommend it.', 'the price is fair.',
                               'support was helpful.', 'I expected more.'],
                              order_item_id, 'rev-s2') AS body,
       order_ts + secs(86400 * ri(order_item_id, 'rev-days', 5, 60)) AS created_ts,
       CAST(floor(40 * pow(u(order_item_id, 'rev-votes'), 4)) AS INTEGER) AS helpful_votes,
       u(order_item_id, 'rev-verified') < 0.93 AS verified_purchase
FROM r
