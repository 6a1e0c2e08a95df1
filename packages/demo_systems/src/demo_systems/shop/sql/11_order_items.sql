CREATE TABLE order_items AS
WITH offsets AS (
    SELECT order_id, minor_units, price_list_factor, discount_pct, item_count,
           CAST(sum(item_count) OVER (ORDER BY order_id) - item_count AS BIGINT) AS first_id
    FROM _order_headers
), lines AS (
    SELECT order_id, minor_units, price_list_factor, discount_pct, first_id,
           unnest(range(item_count)) + 1 AS line_no
    FROM offsets
), priced AS (
    SELECT l.order_id, l.line_no, l.first_id + l.line_no AS order_item_id,
           1 + CAST(floor($n_products * pow(u(l.order_id * 8 + l.line_no, 'i-prod'), 2.2))
                    AS BIGINT) AS product_id,
           1 + CAST(floor(4 * pow(u(l.order_id * 8 + l.line_no, 'i-qty'), 3)) AS INTEGER)
               AS quantity,
           l.minor_units, l.price_list_factor, l.discount_pct
    FROM lines l
), p AS (
    SELECT priced.*,
           CAST(money(pr.list_price_eur * priced.price_list_factor, priced.minor_units)
                AS DECIMAL(14, 2)) AS unit_price
    FROM priced JOIN products pr USING (product_id)
)
SELECT order_item_id, order_id, line_no, product_id, quantity, unit_price,
       CAST(money(quantity * unit_price * discount_pct / 100, minor_units)
            AS DECIMAL(14, 2)) AS discount_amount,
       CAST(quantity * unit_price
            - money(quantity * unit_price * discount_pct / 100, minor_units)
            AS DECIMAL(14, 2)) AS line_total
FROM p
