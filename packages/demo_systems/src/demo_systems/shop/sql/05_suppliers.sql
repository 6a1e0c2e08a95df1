CREATE TABLE suppliers AS
SELECT range + 1 AS supplier_id,
       pick($brands, range, 'sup-brand') || ' ' || pick($nouns, range, 'sup-noun')
           || ' ' || pick(['GmbH', 'Ltd', 'AB', 'S.A.', 'Inc.', 'B.V.', 'K.K.'], range, 'sup-form')
           || ' #' || (range + 1) AS name,
       pick($weighted_countries, range, 'sup-country') AS country_code,
       pick($first_names, range, 'sup-f') || ' ' || pick($last_names, range, 'sup-l')
           AS contact_name,
       'orders+' || (range + 1) || '@supplier' || (range % 97) || '.example.com'
           AS contact_email,
       ri(range, 'lead', 2, 45) AS lead_time_days,
       pick([14, 30, 45, 60], range, 'terms') AS payment_terms_days,
       CAST(1 + 4 * u(range, 'sup-rating') AS DECIMAL(3, 2)) AS rating,
       CAST($start_ts AS DATE) - CAST(ri(range, 'since', 30, 4000) AS INTEGER)
           AS active_since
FROM range($n_suppliers)
