CREATE TEMP TABLE _country_sites AS
SELECT g.country_code,
       (SELECT list(store_id ORDER BY store_id) FROM stores s
        WHERE s.country_code = g.country_code) AS store_ids,
       (SELECT list(warehouse_id ORDER BY warehouse_id) FROM warehouses w
        WHERE w.country_code = g.country_code) AS warehouse_ids
FROM _geo g
