CREATE TABLE promotions AS
WITH p AS (
    SELECT range + 1 AS promotion_id,
           CAST($start_ts AS DATE)
               + CAST(floor(u(range, 'promo-start') * ($span_s / 86400 - 14)) AS INTEGER)
               AS starts_on
    FROM range($n_promotions)
)
SELECT promotion_id,
       upper(pick($words, promotion_id, 'promo-code')) || ri(promotion_id, 'pct', 5, 40)
           || '-' || promotion_id AS code,
       cap(pick($words, promotion_id, 'promo-w')) || ' '
           || pick($nouns, promotion_id, 'promo-n') || ' days' AS name,
       CAST(ri(promotion_id, 'pct', 5, 40) AS DECIMAL(5, 2)) AS discount_pct,
       pick(['all', 'web', 'store', 'app'], promotion_id, 'promo-channel') AS channel,
       starts_on,
       starts_on + CAST(ri(promotion_id, 'promo-len', 3, 30) AS INTEGER) AS ends_on,
       CAST(ri(promotion_id, 'budget', 10, 500) * 1000 AS DECIMAL(12, 2)) AS budget_eur
FROM p
