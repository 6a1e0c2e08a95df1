CREATE TABLE customers AS
WITH c AS (
    SELECT range + 1 AS customer_id,
           pick($weighted_countries, range, 'cust-country') AS country_code,
           pick($first_names, range, 'cust-f') AS first_name,
           pick($last_names, range, 'cust-l') AS last_name
    FROM range($n_customers)
)
SELECT c.customer_id,
       lower(replace(c.first_name, ' ', '')) || '.' || lower(replace(c.last_name, ' ', ''))
           || '.' || c.customer_id || '@mail.example.com' AS email,
       c.first_name, c.last_name, c.country_code,
       pick(ci.cities, c.customer_id, 'cust-city') AS city,
       lpad(CAST(ri(c.customer_id, 'cust-zip', 1000, 99999) AS VARCHAR), 5, '0') AS postal_code,
       ri(c.customer_id, 'birth', 1945, 2006) AS birth_year,
       pick(['bronze', 'bronze', 'bronze', 'silver', 'silver', 'gold', 'platinum'],
            c.customer_id, 'tier') AS loyalty_tier,
       u(c.customer_id, 'optin') < 0.55 AS marketing_opt_in,
       -- signed up from a year before the order range until a month before its end
       CAST($start_ts AS TIMESTAMP) - INTERVAL 365 DAY
           + secs(u(c.customer_id, 'signup') * ($span_s + (365 - 30) * 86400)) AS signup_ts
FROM c JOIN _cities ci USING (country_code)
