CREATE TABLE inventory_movements AS
WITH m AS (
    SELECT range + 1 AS movement_id,
           1 + CAST(floor($n_products * pow(u(range, 'mv-prod'), 1.6)) AS BIGINT)
               AS product_id,
           ri(range, 'mv-wh', 1, $n_warehouses) AS warehouse_id,
           u(range, 'mv-type') AS tu
    FROM range($n_movements)
), t AS (
    SELECT m.*,
           CASE WHEN tu < 0.22 THEN 'receipt' WHEN tu < 0.82 THEN 'pick'
                WHEN tu < 0.88 THEN 'return_restock' WHEN tu < 0.95 THEN 'adjustment'
                ELSE 'transfer_out' END AS movement_type
    FROM m
)
SELECT t.movement_id, t.product_id, t.warehouse_id, t.movement_type,
       CASE t.movement_type
            WHEN 'receipt' THEN ri(t.movement_id, 'mv-qty', 20, 400)
            WHEN 'pick' THEN -ri(t.movement_id, 'mv-qty', 1, 6)
            WHEN 'return_restock' THEN ri(t.movement_id, 'mv-qty', 1, 3)
            WHEN 'adjustment' THEN ri(t.movement_id, 'mv-qty', -12, 8)
            ELSE -ri(t.movement_id, 'mv-qty', 10, 80) END AS quantity,
       CASE WHEN t.movement_type = 'receipt' THEN p.supplier_id END AS supplier_id,
       p.unit_cost_eur,
       CAST($start_ts AS TIMESTAMP) + secs(u(t.movement_id, 'mv-ts') * $span_s) AS moved_ts,
       CASE t.movement_type
            WHEN 'receipt' THEN 'PO-' || (100000 + t.movement_id % 90000)
            WHEN 'pick' THEN 'PICK-' || lpad(CAST(t.movement_id AS VARCHAR), 9, '0')
            WHEN 'return_restock' THEN 'RMA-' || (t.movement_id % 500000)
            WHEN 'adjustment' THEN 'CYCLE-COUNT-' || (t.movement_id % 997)
            ELSE 'TO-' || (t.movement_id % 70000) END AS reference
FROM t JOIN products p USING (product_id)
