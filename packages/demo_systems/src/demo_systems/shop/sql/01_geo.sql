CREATE TEMP TABLE _geo AS
SELECT c.country_code, c.currency_code, cu.minor_units, cu.price_list_factor,
       row_number() OVER (ORDER BY c.country_code) AS country_no
FROM countries c JOIN currencies cu ON cu.currency_code = c.currency_code
