CREATE TABLE returns AS
WITH r AS (
    SELECT i.order_item_id, i.order_id, i.quantity, i.unit_price, o.currency, o.order_ts
    FROM order_items i JOIN orders o USING (order_id)
    WHERE o.status = 'completed'
      AND u(i.order_item_id, 'ret') < 0.06 + 0.12 * u(i.product_id, 'ret-prone')
)
SELECT row_number() OVER (ORDER BY order_item_id) AS return_id,
       order_item_id, order_id,
       1 + CAST(floor(u(order_item_id, 'ret-qty') * quantity) AS INTEGER) AS quantity,
       pick(['too small', 'too large', 'damaged', 'not as described', 'changed mind',
             'late delivery', 'wrong item'], order_item_id, 'ret-reason') AS reason,
       CAST((1 + floor(u(order_item_id, 'ret-qty') * quantity)) * unit_price
            AS DECIMAL(14, 2)) AS refund_amount,
       currency,
       order_ts + secs(86400 * ri(order_item_id, 'ret-req', 3, 28)) AS requested_ts,
       CASE WHEN u(order_item_id, 'ret-recv') < 0.9
            THEN order_ts + secs(86400 * ri(order_item_id, 'ret-req', 3, 28)
                                 + 86400 * ri(order_item_id, 'ret-transit', 2, 10))
       END AS received_ts,
       pick(['resellable', 'resellable', 'resellable', 'damaged', 'opened'],
            order_item_id, 'ret-cond') AS condition
FROM r
