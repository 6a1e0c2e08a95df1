-- orders whose total is not subtotal - discount + shipping
SELECT count(*) FROM orders
WHERE total_amount <> subtotal - discount_amount + shipping_fee
