SELECT o.*,
       round(o.total_amount * fx.rate_to_eur, 2) AS total_amount_eur,
       c.region, c.vat_rate
FROM read_parquet($staged) o
LEFT JOIN read_parquet($fx) fx
       ON fx.currency = o.currency AND CAST(fx.day AS DATE) = CAST(o.order_ts AS DATE)
LEFT JOIN read_parquet($countries) c ON c.code = o.country_code
