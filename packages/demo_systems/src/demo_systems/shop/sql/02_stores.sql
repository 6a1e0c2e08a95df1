CREATE TABLE stores AS
WITH s AS (
    SELECT range + 1 AS store_id,
           -- the first stores cover every country once, the rest follow the market
           CASE WHEN range < $n_countries
                THEN (SELECT country_code FROM _geo WHERE country_no = range + 1)
                ELSE pick($weighted_countries, range, 'store-country') END AS country_code
    FROM range($n_stores)
)
SELECT s.store_id,
       'ST-' || lpad(CAST(s.store_id AS VARCHAR), 5, '0') AS store_code,
       pick(c.cities, s.store_id, 'store-city') || ' '
           || pick(['Centre', 'Mall', 'Station', 'Outlet', 'Harbour', 'Old Town'],
                   s.store_id, 'store-name') AS name,
       s.country_code,
       pick(c.cities, s.store_id, 'store-city') AS city,
       ri(s.store_id, 'street-no', 1, 240) || ' '
           || pick($last_names, s.store_id, 'street') || ' Street' AS street_address,
       lpad(CAST(ri(s.store_id, 'zip', 1000, 99999) AS VARCHAR), 5, '0') AS postal_code,
       pick(['flagship', 'mall', 'high street', 'outlet', 'pop-up'], s.store_id, 'type')
           AS store_type,
       ri(s.store_id, 'area', 120, 4200) AS floor_area_m2,
       CAST($start_ts AS DATE) - CAST(ri(s.store_id, 'opened', 30, 5000) AS INTEGER)
           AS opened_on,
       pick($first_names, s.store_id, 'mgr-f') || ' '
           || pick($last_names, s.store_id, 'mgr-l') AS manager_name,
       '+' || ri(s.store_id, 'phone', 10000000000, 99999999999) AS phone
FROM s JOIN _cities c USING (country_code)
ORDER BY s.store_id
