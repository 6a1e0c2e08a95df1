WITH used AS (
    SELECT currency_code, count(*) AS country_count,
           string_agg(country_code, ',' ORDER BY country_code) AS country_codes
    FROM countries GROUP BY currency_code
), ord AS (
    SELECT currency, count(*) AS order_count,
           count(DISTINCT customer_id) AS buyer_count,
           sum(total_amount) AS order_value
    FROM orders WHERE status <> 'cancelled' GROUP BY currency
), ord_median AS (
    -- the middle rows of a sort per group, as a percentile (why: flow_ingest.catalog)
    SELECT currency,
           CAST(floor((min(total_amount) + max(total_amount)) * 50) * 0.01 AS DECIMAL(14, 2))
               AS median_order_value
    FROM (SELECT currency, total_amount,
                 row_number() OVER (PARTITION BY currency ORDER BY total_amount) AS rn,
                 CAST(count(*) OVER (PARTITION BY currency) - 1 AS FLOAT8) * 0.5 AS pos
          FROM orders WHERE status <> 'cancelled' AND total_amount IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY currency
), lines AS (
    SELECT o.currency, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
           sum(i.discount_amount) AS discount_value,
           count(DISTINCT i.product_id) AS products_sold
    FROM order_items i JOIN orders o ON o.order_id = i.order_id
    GROUP BY o.currency
), lines_median AS (
    SELECT currency,
           CAST(floor((min(unit_price) + max(unit_price)) * 50) * 0.01 AS DECIMAL(14, 2))
               AS median_unit_price
    FROM (SELECT o.currency, i.unit_price,
                 row_number() OVER (PARTITION BY o.currency ORDER BY i.unit_price) AS rn,
                 CAST(count(*) OVER (PARTITION BY o.currency) - 1 AS FLOAT8) * 0.5 AS pos
          FROM order_items i JOIN orders o ON o.order_id = i.order_id
          WHERE i.unit_price IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY currency
), pay AS (
    SELECT currency, count(*) AS payment_count,
           count(*) FILTER (WHERE method = 'card') AS card_payments,
           count(*) FILTER (WHERE method = 'paypal') AS paypal_payments,
           count(*) FILTER (WHERE method NOT IN ('card', 'paypal')) AS other_payments,
           coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0) AS refunded_amount
    FROM payments GROUP BY currency
), pay_median AS (
    SELECT currency,
           CAST(floor((min(amount) + max(amount)) * 50) * 0.01 AS DECIMAL(14, 2))
               AS median_payment
    FROM (SELECT currency, amount,
                 row_number() OVER (PARTITION BY currency ORDER BY amount) AS rn,
                 CAST(count(*) OVER (PARTITION BY currency) - 1 AS FLOAT8) * 0.5 AS pos
          FROM payments WHERE amount IS NOT NULL) AS ranked
    WHERE rn IN (floor(pos) + 1, ceil(pos) + 1)
    GROUP BY currency
), ret AS (
    SELECT currency, count(*) AS return_count, sum(refund_amount) AS return_refunds
    FROM returns GROUP BY currency
)
SELECT cu.currency_code, cu.name, cu.symbol, cu.minor_units, cu.price_list_factor,
       coalesce(used.country_count, 0) AS country_count, used.country_codes,
       coalesce(ord.order_count, 0) AS order_count,
       coalesce(ord.buyer_count, 0) AS buyer_count,
       coalesce(ord.order_value, 0) AS order_value, ord_median.median_order_value,
       coalesce(lines.units_sold, 0) AS units_sold,
       coalesce(lines.discount_value, 0) AS discount_value, lines_median.median_unit_price,
       coalesce(lines.products_sold, 0) AS products_sold,
       coalesce(pay.payment_count, 0) AS payment_count,
       coalesce(pay.card_payments, 0) AS card_payments,
       coalesce(pay.paypal_payments, 0) AS paypal_payments,
       coalesce(pay.other_payments, 0) AS other_payments,
       coalesce(pay.refunded_amount, 0) AS refunded_amount, pay_median.median_payment,
       coalesce(ret.return_count, 0) AS return_count,
       coalesce(ret.return_refunds, 0) AS return_refunds
FROM currencies cu
LEFT JOIN used ON used.currency_code = cu.currency_code
LEFT JOIN ord ON ord.currency = cu.currency_code
LEFT JOIN ord_median ON ord_median.currency = cu.currency_code
LEFT JOIN lines ON lines.currency = cu.currency_code
LEFT JOIN lines_median ON lines_median.currency = cu.currency_code
LEFT JOIN pay ON pay.currency = cu.currency_code
LEFT JOIN pay_median ON pay_median.currency = cu.currency_code
LEFT JOIN ret ON ret.currency = cu.currency_code
ORDER BY cu.currency_code
