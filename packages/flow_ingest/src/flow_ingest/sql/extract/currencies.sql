WITH used AS (
    SELECT currency_code, count(*) AS country_count,
           string_agg(country_code, ',' ORDER BY country_code) AS country_codes
    FROM countries GROUP BY currency_code
), ord AS (
    SELECT currency, count(*) AS order_count,
           count(DISTINCT customer_id) AS buyer_count,
           sum(total_amount) AS order_value,
           CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY total_amount)
                AS DECIMAL(14, 2)) AS median_order_value
    FROM orders WHERE status <> 'cancelled' GROUP BY currency
), lines AS (
    SELECT o.currency, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
           sum(i.discount_amount) AS discount_value,
           count(DISTINCT i.product_id) AS products_sold,
           CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY i.unit_price)
                AS DECIMAL(14, 2)) AS median_unit_price
    FROM order_items i JOIN orders o ON o.order_id = i.order_id
    GROUP BY o.currency
), pay AS (
    SELECT currency, count(*) AS payment_count,
           count(*) FILTER (WHERE method = 'card') AS card_payments,
           count(*) FILTER (WHERE method = 'paypal') AS paypal_payments,
           count(*) FILTER (WHERE method NOT IN ('card', 'paypal')) AS other_payments,
           coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0) AS refunded_amount,
           CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS DECIMAL(14, 2))
               AS median_payment
    FROM payments GROUP BY currency
), ret AS (
    SELECT currency, count(*) AS return_count, sum(refund_amount) AS return_refunds
    FROM returns GROUP BY currency
)
SELECT cu.currency_code, cu.name, cu.symbol, cu.minor_units, cu.price_list_factor,
       coalesce(used.country_count, 0) AS country_count, used.country_codes,
       coalesce(ord.order_count, 0) AS order_count,
       coalesce(ord.buyer_count, 0) AS buyer_count,
       coalesce(ord.order_value, 0) AS order_value, ord.median_order_value,
       coalesce(lines.units_sold, 0) AS units_sold,
       coalesce(lines.discount_value, 0) AS discount_value, lines.median_unit_price,
       coalesce(lines.products_sold, 0) AS products_sold,
       coalesce(pay.payment_count, 0) AS payment_count,
       coalesce(pay.card_payments, 0) AS card_payments,
       coalesce(pay.paypal_payments, 0) AS paypal_payments,
       coalesce(pay.other_payments, 0) AS other_payments,
       coalesce(pay.refunded_amount, 0) AS refunded_amount, pay.median_payment,
       coalesce(ret.return_count, 0) AS return_count,
       coalesce(ret.return_refunds, 0) AS return_refunds
FROM currencies cu
LEFT JOIN used ON used.currency_code = cu.currency_code
LEFT JOIN ord ON ord.currency = cu.currency_code
LEFT JOIN lines ON lines.currency = cu.currency_code
LEFT JOIN pay ON pay.currency = cu.currency_code
LEFT JOIN ret ON ret.currency = cu.currency_code
ORDER BY cu.currency_code
