SELECT p.*, round(p.amount * fx.rate_to_eur, 2) AS amount_eur
FROM read_parquet($staged) p
LEFT JOIN read_parquet($fx) fx
       ON fx.currency = p.currency AND CAST(fx.day AS DATE) = CAST(p.paid_ts AS DATE)
