CREATE TABLE warehouses AS
WITH w AS (
    SELECT range + 1 AS warehouse_id,
           CASE WHEN range < $n_countries
                THEN (SELECT country_code FROM _geo WHERE country_no = range + 1)
                ELSE pick($weighted_countries, range, 'wh-country') END AS country_code
    FROM range($n_warehouses)
)
SELECT w.warehouse_id,
       'WH-' || w.country_code || '-' || lpad(CAST(w.warehouse_id AS VARCHAR), 3, '0')
           AS code,
       pick(c.cities, w.warehouse_id, 'wh-city') || ' Distribution Centre ' || w.warehouse_id
           AS name,
       w.country_code,
       pick(c.cities, w.warehouse_id, 'wh-city') AS city,
       ri(w.warehouse_id, 'capacity', 5000, 250000) AS capacity_m3,
       u(w.warehouse_id, 'automated') < 0.4 AS is_automated,
       CAST($start_ts AS DATE) - CAST(ri(w.warehouse_id, 'opened', 60, 6000) AS INTEGER)
           AS opened_on
FROM w JOIN _cities c USING (country_code)
ORDER BY w.warehouse_id
