CREATE TEMP TABLE _order_headers AS
WITH o AS (
    SELECT range + 1 AS order_id,
           -- frequent buyers: low customer ids order more often
           1 + CAST(floor($n_customers * pow(u(range, 'o-cust'), 1.7)) AS BIGINT)
               AS customer_id,
           pick(['web', 'web', 'web', 'app', 'app', 'store', 'store'], range, 'o-channel')
               AS channel
    FROM range($n_orders)
), t AS (
    SELECT o.*, c.country_code, c.signup_ts,
           greatest(c.signup_ts, CAST($start_ts AS TIMESTAMP)) AS lo
    FROM o JOIN customers c USING (customer_id)
)
SELECT t.order_id, t.customer_id, t.country_code, t.channel,
       CASE WHEN t.channel = 'store'
            THEN pick(s.store_ids, t.order_id, 'o-store') END AS store_id,
       t.lo + secs(u(t.order_id, 'o-ts')
                   * (epoch(CAST($end_ts AS TIMESTAMP)) - epoch(t.lo))) AS order_ts,
       g.currency_code AS currency, g.minor_units, g.price_list_factor,
       CASE WHEN u(t.order_id, 'o-promo') < 0.12
            THEN ri(t.order_id, 'o-promo-id', 1, $n_promotions) END AS promotion_id,
       CASE WHEN u(t.order_id, 'o-promo') < 0.12
            THEN CAST(ri(t.order_id, 'o-promo-pct', 5, 30) AS DECIMAL(5, 2))
            ELSE CAST(0 AS DECIMAL(5, 2)) END AS discount_pct,
       1 + CAST(floor(5 * pow(u(t.order_id, 'o-items'), 1.8)) AS INTEGER) AS item_count,
       u(t.order_id, 'o-status') AS status_u
FROM t JOIN _geo g USING (country_code)
       JOIN _country_sites s USING (country_code)
