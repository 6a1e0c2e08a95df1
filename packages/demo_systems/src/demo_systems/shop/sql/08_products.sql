CREATE TABLE products AS
SELECT range + 1 AS product_id,
       'SKU-' || lpad(CAST(range + 1 AS VARCHAR), 8, '0') AS sku,
       cap(pick($words, range, 'p-w1')) || ' ' || pick($words, range, 'p-w2') || ' '
           || pick($nouns, range, 'p-noun') AS name,
       ri(range, 'p-cat', $n_top + 1, $n_categories) AS category_id,
       ri(range, 'p-sup', 1, $n_suppliers) AS supplier_id,
       pick($brands, range, 'p-brand') AS brand,
       pick(['black', 'white', 'navy', 'sand', 'olive', 'red', 'grey', 'teal'], range, 'p-color')
           AS color,
       pick(['XS', 'S', 'M', 'L', 'XL', 'one size'], range, 'p-size') AS size,
       ri(range, 'p-weight', 40, 12000) AS weight_g,
       CAST(round(4.99 + 295 * pow(u(range, 'p-price'), 2), 2) AS DECIMAL(10, 2))
           AS list_price_eur,
       CAST(round((4.99 + 295 * pow(u(range, 'p-price'), 2))
                  * (0.35 + 0.3 * u(range, 'p-cost')), 2) AS DECIMAL(10, 2))
           AS unit_cost_eur,
       'Our ' || pick($words, range, 'd1') || ', ' || pick($words, range, 'd2') || ' '
           || pick($nouns, range, 'p-noun') || ' by ' || pick($brands, range, 'p-brand')
           || '. Made to last with ' || pick($words, range, 'd3') || ' materials; ships in '
           || ri(range, 'd-days', 2, 5) || ' days. Care: '
           || pick(['machine wash 30°C', 'wipe clean', 'hand wash only', 'do not tumble dry'],
                   range, 'd-care') || '.' AS description,
       CAST($start_ts AS DATE) - CAST(ri(range, 'p-launch', -600, 1500) AS INTEGER)
           AS launched_on,
       u(range, 'p-disc') < 0.07 AS is_discontinued
FROM range($n_products)
