"""The SQL catalog: which tables ingest may extract, and the queries both flows run.

No I/O here. Table names are the only identifiers ever placed in SQL, and only after
:func:`check_table` found them in the allowlist; values are never interpolated. The SQL
is plain (joins, CTEs, ``EXTRACT``, ``date_trunc``, ``FILTER``, ``percentile_cont``) so it
runs on the demo DuckDB file and on PostgreSQL alike; only the lake reports use DuckDB's
``read_parquet``, because the lake is Parquet files read through DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DIMENSIONS: tuple[str, ...] = (
    "regions",
    "countries",
    "currencies",
    "stores",
    "warehouses",
    "suppliers",
    "categories",
    "products",
    "customers",
    "promotions",
)
FACTS: tuple[str, ...] = (
    "orders",
    "order_items",
    "payments",
    "shipments",
    "returns",
    "reviews",
    "inventory_movements",
    "web_sessions",
    "page_views",
    "support_tickets",
)
TABLES: tuple[str, ...] = DIMENSIONS + FACTS


class UnknownTableError(ValueError):
    """A table name outside the allowlist (a typo, or an attempt to inject SQL)."""


def check_table(name: str) -> str:
    """Return ``name`` if it is an allowlisted table; the only way names reach SQL."""
    if isinstance(name, str) and name in TABLES:
        return name
    raise UnknownTableError(f"unknown table {name!r}: choose one of {', '.join(TABLES)}")


# --- extracts ------------------------------------------------------------------------
# Dimension extracts ship the conformed attributes plus activity roll-ups from the facts
# (a "customer 360" style snapshot); fact extracts denormalise the dimensions analysts
# always join and add derived columns. Each ends with ORDER BY its key, so a lake file
# written from it is byte-for-byte reproducible.

_EXTRACTS: dict[str, str] = {
    "regions": """
        WITH geo AS (
            SELECT country_code, region_id FROM countries
        ), ord AS (
            SELECT g.region_id, count(*) AS order_count,
                   count(DISTINCT o.customer_id) AS buyer_count,
                   count(DISTINCT o.currency) AS currency_count
            FROM orders o
            JOIN customers cu ON cu.customer_id = o.customer_id
            JOIN geo g ON g.country_code = cu.country_code
            WHERE o.status <> 'cancelled'
            GROUP BY g.region_id
        ), web AS (
            SELECT g.region_id, count(*) AS session_count,
                   count(*) FILTER (WHERE s.converted) AS converted_sessions
            FROM web_sessions s JOIN geo g ON g.country_code = s.country_code
            GROUP BY g.region_id
        ), viewed AS (
            SELECT g.region_id, count(*) AS page_view_count,
                   count(DISTINCT v.product_id) AS products_viewed
            FROM page_views v
            JOIN web_sessions s ON s.session_id = v.session_id
            JOIN geo g ON g.country_code = s.country_code
            GROUP BY g.region_id
        ), tickets AS (
            SELECT g.region_id, count(*) AS ticket_count,
                   count(*) FILTER (WHERE t.status IN ('open', 'pending')) AS open_ticket_count
            FROM support_tickets t
            JOIN customers cu ON cu.customer_id = t.customer_id
            JOIN geo g ON g.country_code = cu.country_code
            GROUP BY g.region_id
        ), sites AS (
            SELECT g.region_id, count(DISTINCT g.country_code) AS country_count,
                   (SELECT count(*) FROM stores s JOIN geo g2 ON g2.country_code = s.country_code
                    WHERE g2.region_id = g.region_id) AS store_count,
                   (SELECT count(*) FROM warehouses w JOIN geo g3 ON g3.country_code = w.country_code
                    WHERE g3.region_id = g.region_id) AS warehouse_count
            FROM geo g GROUP BY g.region_id
        )
        SELECT r.region_id, r.region_code, r.name, r.sales_director, r.hq_city, r.created_on,
               coalesce(sites.country_count, 0) AS country_count,
               coalesce(sites.store_count, 0) AS store_count,
               coalesce(sites.warehouse_count, 0) AS warehouse_count,
               coalesce(ord.order_count, 0) AS order_count,
               coalesce(ord.buyer_count, 0) AS buyer_count,
               coalesce(ord.currency_count, 0) AS currency_count,
               coalesce(web.session_count, 0) AS session_count,
               coalesce(web.converted_sessions, 0) AS converted_sessions,
               coalesce(viewed.page_view_count, 0) AS page_view_count,
               coalesce(viewed.products_viewed, 0) AS products_viewed,
               coalesce(tickets.ticket_count, 0) AS ticket_count,
               coalesce(tickets.open_ticket_count, 0) AS open_ticket_count
        FROM regions r
        LEFT JOIN sites ON sites.region_id = r.region_id
        LEFT JOIN ord ON ord.region_id = r.region_id
        LEFT JOIN web ON web.region_id = r.region_id
        LEFT JOIN viewed ON viewed.region_id = r.region_id
        LEFT JOIN tickets ON tickets.region_id = r.region_id
        ORDER BY r.region_id
    """,
    "countries": """
        WITH cust AS (
            SELECT country_code, count(*) AS customer_count,
                   count(*) FILTER (WHERE marketing_opt_in) AS opted_in_count
            FROM customers GROUP BY country_code
        ), ord AS (
            SELECT cu.country_code, count(*) AS order_count,
                   count(DISTINCT o.customer_id) AS buyer_count,
                   sum(o.total_amount) AS revenue_local,
                   CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY o.total_amount)
                        AS DECIMAL(14, 2)) AS median_order_local,
                   min(o.order_ts) AS first_order_ts, max(o.order_ts) AS last_order_ts
            FROM orders o JOIN customers cu ON cu.customer_id = o.customer_id
            WHERE o.status <> 'cancelled'
            GROUP BY cu.country_code
        ), web AS (
            SELECT country_code, count(*) AS session_count,
                   count(*) FILTER (WHERE converted) AS converted_sessions,
                   CAST(sum(page_view_count) AS BIGINT) AS page_view_count
            FROM web_sessions GROUP BY country_code
        ), delivered AS (
            SELECT cu.country_code, count(*) AS shipment_count,
                   CAST(percentile_cont(0.5) WITHIN GROUP (
                        ORDER BY EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400)
                        AS DECIMAL(8, 2)) AS median_transit_days
            FROM shipments sh
            JOIN orders o ON o.order_id = sh.order_id
            JOIN customers cu ON cu.customer_id = o.customer_id
            GROUP BY cu.country_code
        ), tickets AS (
            SELECT cu.country_code, count(*) AS ticket_count
            FROM support_tickets t JOIN customers cu ON cu.customer_id = t.customer_id
            GROUP BY cu.country_code
        )
        SELECT k.country_code, k.name, k.region_id, r.name AS region_name, k.currency_code,
               cu.name AS currency_name, k.vat_rate, k.launched_on,
               coalesce(cust.customer_count, 0) AS customer_count,
               coalesce(cust.opted_in_count, 0) AS opted_in_count,
               coalesce(ord.order_count, 0) AS order_count,
               coalesce(ord.buyer_count, 0) AS buyer_count,
               coalesce(ord.revenue_local, 0) AS revenue_local, ord.median_order_local,
               ord.first_order_ts, ord.last_order_ts,
               coalesce(web.session_count, 0) AS session_count,
               coalesce(web.converted_sessions, 0) AS converted_sessions,
               coalesce(web.page_view_count, 0) AS page_view_count,
               coalesce(delivered.shipment_count, 0) AS shipment_count,
               delivered.median_transit_days,
               coalesce(tickets.ticket_count, 0) AS ticket_count
        FROM countries k
        JOIN regions r ON r.region_id = k.region_id
        JOIN currencies cu ON cu.currency_code = k.currency_code
        LEFT JOIN cust ON cust.country_code = k.country_code
        LEFT JOIN ord ON ord.country_code = k.country_code
        LEFT JOIN web ON web.country_code = k.country_code
        LEFT JOIN delivered ON delivered.country_code = k.country_code
        LEFT JOIN tickets ON tickets.country_code = k.country_code
        ORDER BY k.country_code
    """,
    "currencies": """
        WITH used AS (
            SELECT currency_code, count(*) AS country_count,
                   string_agg(country_code, ',' ORDER BY country_code) AS country_codes
            FROM countries GROUP BY currency_code
        ), ord AS (
            SELECT currency, count(*) AS order_count,
                   count(DISTINCT customer_id) AS buyer_count,
                   sum(total_amount) AS order_value,
                   CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY total_amount)
                        AS DECIMAL(14, 2)) AS median_order_value
            FROM orders WHERE status <> 'cancelled' GROUP BY currency
        ), lines AS (
            SELECT o.currency, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
                   sum(i.discount_amount) AS discount_value,
                   count(DISTINCT i.product_id) AS products_sold,
                   CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY i.unit_price)
                        AS DECIMAL(14, 2)) AS median_unit_price
            FROM order_items i JOIN orders o ON o.order_id = i.order_id
            GROUP BY o.currency
        ), pay AS (
            SELECT currency, count(*) AS payment_count,
                   count(*) FILTER (WHERE method = 'card') AS card_payments,
                   count(*) FILTER (WHERE method = 'paypal') AS paypal_payments,
                   count(*) FILTER (WHERE method NOT IN ('card', 'paypal')) AS other_payments,
                   coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0) AS refunded_amount,
                   CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS DECIMAL(14, 2))
                       AS median_payment
            FROM payments GROUP BY currency
        ), ret AS (
            SELECT currency, count(*) AS return_count, sum(refund_amount) AS return_refunds
            FROM returns GROUP BY currency
        )
        SELECT cu.currency_code, cu.name, cu.symbol, cu.minor_units, cu.price_list_factor,
               coalesce(used.country_count, 0) AS country_count, used.country_codes,
               coalesce(ord.order_count, 0) AS order_count,
               coalesce(ord.buyer_count, 0) AS buyer_count,
               coalesce(ord.order_value, 0) AS order_value, ord.median_order_value,
               coalesce(lines.units_sold, 0) AS units_sold,
               coalesce(lines.discount_value, 0) AS discount_value, lines.median_unit_price,
               coalesce(lines.products_sold, 0) AS products_sold,
               coalesce(pay.payment_count, 0) AS payment_count,
               coalesce(pay.card_payments, 0) AS card_payments,
               coalesce(pay.paypal_payments, 0) AS paypal_payments,
               coalesce(pay.other_payments, 0) AS other_payments,
               coalesce(pay.refunded_amount, 0) AS refunded_amount, pay.median_payment,
               coalesce(ret.return_count, 0) AS return_count,
               coalesce(ret.return_refunds, 0) AS return_refunds
        FROM currencies cu
        LEFT JOIN used ON used.currency_code = cu.currency_code
        LEFT JOIN ord ON ord.currency = cu.currency_code
        LEFT JOIN lines ON lines.currency = cu.currency_code
        LEFT JOIN pay ON pay.currency = cu.currency_code
        LEFT JOIN ret ON ret.currency = cu.currency_code
        ORDER BY cu.currency_code
    """,
    "stores": """
        WITH store_orders AS (
            SELECT order_id, store_id, customer_id, total_amount, item_count, order_ts
            FROM orders
            WHERE store_id IS NOT NULL AND status <> 'cancelled'
        ), sales AS (
            SELECT store_id, count(*) AS order_count,
                   count(DISTINCT customer_id) AS customer_count,
                   sum(total_amount) AS revenue_local,
                   CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY total_amount)
                        AS DECIMAL(14, 2)) AS median_basket_local,
                   min(order_ts) AS first_order_ts, max(order_ts) AS last_order_ts
            FROM store_orders GROUP BY store_id
        ), assortment AS (
            SELECT so.store_id, count(DISTINCT i.product_id) AS products_sold
            FROM store_orders so JOIN order_items i ON i.order_id = so.order_id
            GROUP BY so.store_id
        ), online AS (
            SELECT DISTINCT customer_id FROM orders WHERE channel <> 'store'
        ), omni AS (
            SELECT so.store_id, count(DISTINCT so.customer_id) AS omnichannel_customers
            FROM store_orders so JOIN online ON online.customer_id = so.customer_id
            GROUP BY so.store_id
        ), store_customers AS (
            SELECT DISTINCT store_id, customer_id FROM store_orders
        ), browsing AS (
            SELECT sc.store_id, count(*) AS customer_web_sessions
            FROM store_customers sc JOIN web_sessions ws ON ws.customer_id = sc.customer_id
            GROUP BY sc.store_id
        ), by_category AS (
            SELECT so.store_id, coalesce(c.parent_id, c.category_id) AS top_category_id,
                   sum(i.quantity) AS units
            FROM store_orders so
            JOIN order_items i ON i.order_id = so.order_id
            JOIN products p ON p.product_id = i.product_id
            JOIN categories c ON c.category_id = p.category_id
            GROUP BY so.store_id, coalesce(c.parent_id, c.category_id)
        ), ranked AS (
            SELECT store_id, top_category_id, units,
                   CAST(sum(units) OVER (PARTITION BY store_id) AS BIGINT) AS units_sold,
                   row_number() OVER (PARTITION BY store_id
                                      ORDER BY units DESC, top_category_id) AS rn
            FROM by_category
        )
        SELECT s.store_id, s.store_code, s.name, s.store_type, s.country_code,
               k.name AS country_name, r.name AS region_name, k.currency_code,
               s.city, s.street_address, s.postal_code, s.floor_area_m2, s.opened_on,
               s.manager_name, s.phone,
               coalesce(sales.order_count, 0) AS order_count,
               coalesce(sales.customer_count, 0) AS customer_count,
               coalesce(sales.revenue_local, 0) AS revenue_local, sales.median_basket_local,
               coalesce(omni.omnichannel_customers, 0) AS omnichannel_customers,
               coalesce(browsing.customer_web_sessions, 0) AS customer_web_sessions,
               coalesce(ranked.units_sold, 0) AS units_sold,
               coalesce(assortment.products_sold, 0) AS products_sold,
               ranked.top_category_id AS best_top_category_id,
               sales.first_order_ts, sales.last_order_ts
        FROM stores s
        JOIN countries k ON k.country_code = s.country_code
        JOIN regions r ON r.region_id = k.region_id
        LEFT JOIN sales ON sales.store_id = s.store_id
        LEFT JOIN omni ON omni.store_id = s.store_id
        LEFT JOIN browsing ON browsing.store_id = s.store_id
        LEFT JOIN assortment ON assortment.store_id = s.store_id
        LEFT JOIN ranked ON ranked.store_id = s.store_id AND ranked.rn = 1
        ORDER BY s.store_id
    """,
    "warehouses": """
        WITH positions AS (
            SELECT warehouse_id, product_id, sum(quantity) AS on_hand,
                   sum(quantity * unit_cost_eur) AS value_eur, count(*) AS movements,
                   coalesce(sum(quantity) FILTER (WHERE movement_type = 'receipt'), 0)
                       AS received_units,
                   coalesce(-sum(quantity) FILTER (WHERE movement_type = 'pick'), 0)
                       AS picked_units
            FROM inventory_movements GROUP BY warehouse_id, product_id
        ), stock AS (
            SELECT warehouse_id, CAST(sum(movements) AS BIGINT) AS movement_count,
                   count(*) AS product_count,
                   count(*) FILTER (WHERE on_hand <= 0) AS out_of_stock_products,
                   CAST(sum(on_hand) AS BIGINT) AS stock_units, sum(value_eur) AS stock_value_eur,
                   CAST(sum(received_units) AS BIGINT) AS received_units,
                   CAST(sum(picked_units) AS BIGINT) AS picked_units
            FROM positions GROUP BY warehouse_id
        ), shipped AS (
            SELECT warehouse_id, count(*) AS shipment_count,
                   count(*) FILTER (WHERE delivered_ts IS NOT NULL) AS delivered_count,
                   count(*) FILTER (WHERE CAST(delivered_ts AS DATE) <= promised_date)
                       AS on_time_count,
                   CAST(percentile_cont(0.5) WITHIN GROUP (
                        ORDER BY EXTRACT(EPOCH FROM (shipped_ts - o.order_ts)) / 3600)
                        AS DECIMAL(8, 2)) AS median_hours_to_ship,
                   CAST(percentile_cont(0.9) WITHIN GROUP (
                        ORDER BY EXTRACT(EPOCH FROM (delivered_ts - shipped_ts)) / 86400)
                        AS DECIMAL(8, 2)) AS p90_transit_days,
                   count(DISTINCT o.customer_id) AS customers_served
            FROM shipments sh JOIN orders o ON o.order_id = sh.order_id
            GROUP BY warehouse_id
        ), sourcing AS (
            SELECT warehouse_id, count(DISTINCT supplier_id) AS supplier_count
            FROM inventory_movements WHERE movement_type = 'receipt' GROUP BY warehouse_id
        )
        SELECT w.warehouse_id, w.code, w.name, w.country_code, k.name AS country_name,
               r.name AS region_name, w.city, w.capacity_m3, w.is_automated, w.opened_on,
               coalesce(stock.movement_count, 0) AS movement_count,
               coalesce(stock.product_count, 0) AS product_count,
               coalesce(stock.out_of_stock_products, 0) AS out_of_stock_products,
               coalesce(stock.stock_units, 0) AS stock_units,
               coalesce(stock.stock_value_eur, 0) AS stock_value_eur,
               coalesce(stock.received_units, 0) AS received_units,
               coalesce(stock.picked_units, 0) AS picked_units,
               coalesce(shipped.shipment_count, 0) AS shipment_count,
               coalesce(shipped.delivered_count, 0) AS delivered_count,
               coalesce(shipped.on_time_count, 0) AS on_time_count,
               shipped.median_hours_to_ship, shipped.p90_transit_days,
               coalesce(shipped.customers_served, 0) AS customers_served,
               coalesce(sourcing.supplier_count, 0) AS supplier_count
        FROM warehouses w
        JOIN countries k ON k.country_code = w.country_code
        JOIN regions r ON r.region_id = k.region_id
        LEFT JOIN stock ON stock.warehouse_id = w.warehouse_id
        LEFT JOIN shipped ON shipped.warehouse_id = w.warehouse_id
        LEFT JOIN sourcing ON sourcing.warehouse_id = w.warehouse_id
        ORDER BY w.warehouse_id
    """,
    "suppliers": """
        WITH assortment AS (
            SELECT supplier_id, count(*) AS product_count,
                   count(*) FILTER (WHERE NOT is_discontinued) AS active_product_count,
                   CAST(avg(unit_cost_eur) AS DECIMAL(10, 2)) AS avg_unit_cost_eur
            FROM products GROUP BY supplier_id
        ), received AS (
            SELECT supplier_id, count(*) AS receipt_count, CAST(sum(quantity) AS BIGINT) AS received_units,
                   sum(quantity * unit_cost_eur) AS received_value_eur,
                   max(moved_ts) AS last_receipt_ts
            FROM inventory_movements
            WHERE movement_type = 'receipt'
            GROUP BY supplier_id
        ), sold AS (
            SELECT p.supplier_id, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
                   count(DISTINCT i.order_id) AS order_count,
                   sum(i.quantity * p.unit_cost_eur) AS cost_of_goods_sold_eur
            FROM order_items i JOIN products p ON p.product_id = i.product_id
            GROUP BY p.supplier_id
        ), returned AS (
            SELECT p.supplier_id, CAST(sum(rt.quantity) AS BIGINT) AS units_returned,
                   count(*) FILTER (WHERE rt.condition = 'damaged') AS damaged_returns
            FROM returns rt
            JOIN order_items i ON i.order_item_id = rt.order_item_id
            JOIN products p ON p.product_id = i.product_id
            GROUP BY p.supplier_id
        ), rated AS (
            SELECT p.supplier_id, count(*) AS review_count,
                   CAST(avg(v.rating) AS DECIMAL(4, 2)) AS avg_rating
            FROM reviews v JOIN products p ON p.product_id = v.product_id
            GROUP BY p.supplier_id
        )
        SELECT s.supplier_id, s.name, s.country_code, k.name AS country_name,
               s.contact_name, s.contact_email, s.lead_time_days, s.payment_terms_days,
               s.rating, s.active_since,
               coalesce(a.product_count, 0) AS product_count,
               coalesce(a.active_product_count, 0) AS active_product_count,
               a.avg_unit_cost_eur,
               coalesce(rc.receipt_count, 0) AS receipt_count,
               coalesce(rc.received_units, 0) AS received_units,
               coalesce(rc.received_value_eur, 0) AS received_value_eur,
               rc.last_receipt_ts,
               coalesce(sold.units_sold, 0) AS units_sold,
               coalesce(sold.order_count, 0) AS order_count,
               coalesce(sold.cost_of_goods_sold_eur, 0) AS cost_of_goods_sold_eur,
               coalesce(returned.units_returned, 0) AS units_returned,
               coalesce(returned.damaged_returns, 0) AS damaged_returns,
               coalesce(rated.review_count, 0) AS review_count, rated.avg_rating
        FROM suppliers s
        JOIN countries k ON k.country_code = s.country_code
        LEFT JOIN assortment a ON a.supplier_id = s.supplier_id
        LEFT JOIN received rc ON rc.supplier_id = s.supplier_id
        LEFT JOIN sold ON sold.supplier_id = s.supplier_id
        LEFT JOIN returned ON returned.supplier_id = s.supplier_id
        LEFT JOIN rated ON rated.supplier_id = s.supplier_id
        ORDER BY s.supplier_id
    """,
    "categories": """
        WITH sold AS (
            SELECT p.category_id, count(*) AS order_line_count,
                   CAST(sum(i.quantity) AS BIGINT) AS units_sold,
                   count(DISTINCT i.order_id) AS order_count
            FROM order_items i JOIN products p ON p.product_id = i.product_id
            GROUP BY p.category_id
        ), viewed AS (
            SELECT p.category_id, count(*) AS product_view_count,
                   count(DISTINCT v.session_id) AS viewing_sessions
            FROM page_views v JOIN products p ON p.product_id = v.product_id
            GROUP BY p.category_id
        ), rated AS (
            SELECT p.category_id, count(*) AS review_count,
                   CAST(avg(v.rating) AS DECIMAL(4, 2)) AS avg_rating
            FROM reviews v JOIN products p ON p.product_id = v.product_id
            GROUP BY p.category_id
        ), assortment AS (
            SELECT category_id, count(*) AS product_count FROM products GROUP BY category_id
        )
        SELECT c.category_id, c.parent_id, coalesce(c.parent_id, c.category_id) AS top_category_id,
               c.name, parent.name AS parent_name, c.slug, c.depth, c.target_margin_pct,
               coalesce(a.product_count, 0) AS product_count,
               coalesce(sold.order_line_count, 0) AS order_line_count,
               coalesce(sold.order_count, 0) AS order_count,
               coalesce(sold.units_sold, 0) AS units_sold,
               coalesce(viewed.product_view_count, 0) AS product_view_count,
               coalesce(viewed.viewing_sessions, 0) AS viewing_sessions,
               coalesce(rated.review_count, 0) AS review_count, rated.avg_rating
        FROM categories c
        LEFT JOIN categories parent ON parent.category_id = c.parent_id
        LEFT JOIN assortment a ON a.category_id = c.category_id
        LEFT JOIN sold ON sold.category_id = c.category_id
        LEFT JOIN viewed ON viewed.category_id = c.category_id
        LEFT JOIN rated ON rated.category_id = c.category_id
        ORDER BY c.category_id
    """,
    "products": """
        WITH sold AS (
            SELECT i.product_id, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
                   count(*) AS order_line_count,
                   count(DISTINCT o.customer_id) AS buyer_count, max(o.order_ts) AS last_sold_ts
            FROM order_items i JOIN orders o ON o.order_id = i.order_id
            WHERE o.status <> 'cancelled'
            GROUP BY i.product_id
        ), viewed AS (
            SELECT product_id, count(*) AS view_count FROM page_views
            WHERE product_id IS NOT NULL GROUP BY product_id
        ), returned AS (
            SELECT i.product_id, CAST(sum(rt.quantity) AS BIGINT) AS units_returned
            FROM returns rt JOIN order_items i ON i.order_item_id = rt.order_item_id
            GROUP BY i.product_id
        ), rated AS (
            SELECT product_id, count(*) AS review_count,
                   CAST(avg(rating) AS DECIMAL(4, 2)) AS avg_rating
            FROM reviews GROUP BY product_id
        )
        SELECT p.product_id, p.sku, p.name, p.brand, p.color, p.size, p.weight_g,
               p.category_id, c.name AS category_name,
               coalesce(c.parent_id, c.category_id) AS top_category_id,
               top.name AS top_category_name,
               p.supplier_id, s.name AS supplier_name, s.country_code AS supplier_country,
               p.list_price_eur, p.unit_cost_eur,
               p.list_price_eur - p.unit_cost_eur AS margin_eur,
               CAST(100 * (p.list_price_eur - p.unit_cost_eur) / p.list_price_eur
                    AS DECIMAL(6, 2)) AS margin_pct,
               p.description, p.launched_on, p.is_discontinued,
               coalesce(sold.units_sold, 0) AS units_sold,
               coalesce(sold.order_line_count, 0) AS order_line_count,
               coalesce(sold.buyer_count, 0) AS buyer_count, sold.last_sold_ts,
               coalesce(viewed.view_count, 0) AS view_count,
               coalesce(returned.units_returned, 0) AS units_returned,
               coalesce(rated.review_count, 0) AS review_count, rated.avg_rating
        FROM products p
        JOIN categories c ON c.category_id = p.category_id
        JOIN categories top ON top.category_id = coalesce(c.parent_id, c.category_id)
        JOIN suppliers s ON s.supplier_id = p.supplier_id
        LEFT JOIN sold ON sold.product_id = p.product_id
        LEFT JOIN viewed ON viewed.product_id = p.product_id
        LEFT JOIN returned ON returned.product_id = p.product_id
        LEFT JOIN rated ON rated.product_id = p.product_id
        ORDER BY p.product_id
    """,
    "customers": """
        WITH history AS (
            SELECT customer_id, count(*) AS order_count, sum(total_amount) AS lifetime_value_local,
                   min(order_ts) AS first_order_ts, max(order_ts) AS last_order_ts,
                   count(*) FILTER (WHERE channel = 'store') AS store_order_count
            FROM orders WHERE status <> 'cancelled'
            GROUP BY customer_id
        ), web AS (
            SELECT customer_id, count(*) AS session_count, max(started_ts) AS last_session_ts
            FROM web_sessions WHERE customer_id IS NOT NULL GROUP BY customer_id
        ), tickets AS (
            SELECT customer_id, count(*) AS ticket_count FROM support_tickets GROUP BY customer_id
        )
        SELECT cu.customer_id, cu.email, cu.first_name, cu.last_name,
               cu.first_name || ' ' || cu.last_name AS full_name,
               cu.country_code, k.name AS country_name, r.name AS region_name,
               k.currency_code, cu.city, cu.postal_code, cu.birth_year,
               cu.loyalty_tier, cu.marketing_opt_in, cu.signup_ts,
               CAST(date_trunc('month', cu.signup_ts) AS DATE) AS signup_month,
               coalesce(h.order_count, 0) AS order_count,
               coalesce(h.store_order_count, 0) AS store_order_count,
               coalesce(h.lifetime_value_local, 0) AS lifetime_value_local,
               h.first_order_ts, h.last_order_ts,
               coalesce(web.session_count, 0) AS session_count, web.last_session_ts,
               coalesce(tickets.ticket_count, 0) AS ticket_count
        FROM customers cu
        JOIN countries k ON k.country_code = cu.country_code
        JOIN regions r ON r.region_id = k.region_id
        LEFT JOIN history h ON h.customer_id = cu.customer_id
        LEFT JOIN web ON web.customer_id = cu.customer_id
        LEFT JOIN tickets ON tickets.customer_id = cu.customer_id
        ORDER BY cu.customer_id
    """,
    "promotions": """
        WITH sequenced AS (
            SELECT order_id, customer_id, promotion_id, order_ts, discount_amount,
                   row_number() OVER (PARTITION BY customer_id ORDER BY order_ts, order_id)
                       AS customer_order_seq,
                   lead(order_ts) OVER (PARTITION BY customer_id ORDER BY order_ts, order_id)
                       AS next_order_ts
            FROM orders WHERE status <> 'cancelled'
        ), used AS (
            SELECT q.promotion_id, count(*) AS order_count,
                   count(DISTINCT q.customer_id) AS customer_count,
                   count(*) FILTER (WHERE q.customer_order_seq = 1) AS new_customer_count,
                   count(*) FILTER (WHERE q.next_order_ts IS NOT NULL
                                    AND EXTRACT(EPOCH FROM (q.next_order_ts - q.order_ts))
                                        <= 90 * 86400) AS reordered_within_90d,
                   min(q.order_ts) AS first_use_ts, max(q.order_ts) AS last_use_ts
            FROM sequenced q
            WHERE q.promotion_id IS NOT NULL
            GROUP BY q.promotion_id
        ), units AS (
            SELECT o.promotion_id, CAST(sum(i.quantity) AS BIGINT) AS units_sold,
                   count(DISTINCT i.product_id) AS products_sold
            FROM order_items i JOIN orders o ON o.order_id = i.order_id
            WHERE o.promotion_id IS NOT NULL
            GROUP BY o.promotion_id
        )
        SELECT p.promotion_id, p.code, p.name, p.discount_pct, p.channel, p.starts_on,
               p.ends_on, p.ends_on - p.starts_on AS duration_days, p.budget_eur,
               coalesce(used.order_count, 0) AS order_count,
               coalesce(used.customer_count, 0) AS customer_count,
               coalesce(used.new_customer_count, 0) AS new_customer_count,
               coalesce(used.reordered_within_90d, 0) AS reordered_within_90d,
               coalesce(units.units_sold, 0) AS units_sold,
               coalesce(units.products_sold, 0) AS products_sold,
               used.first_use_ts, used.last_use_ts
        FROM promotions p
        LEFT JOIN used ON used.promotion_id = p.promotion_id
        LEFT JOIN units ON units.promotion_id = p.promotion_id
        ORDER BY p.promotion_id
    """,
    "orders": """
        SELECT o.order_id, o.customer_id, cu.country_code, o.store_id, o.channel, o.status,
               o.currency, o.promotion_id, o.order_ts,
               CAST(o.order_ts AS DATE) AS order_date,
               CAST(date_trunc('month', o.order_ts) AS DATE) AS order_month,
               CAST(EXTRACT(ISODOW FROM o.order_ts) AS INTEGER) AS order_weekday,
               CAST(EXTRACT(HOUR FROM o.order_ts) AS INTEGER) AS order_hour,
               row_number() OVER (PARTITION BY o.customer_id ORDER BY o.order_ts, o.order_id)
                   AS customer_order_seq,
               o.item_count, o.subtotal, o.discount_amount, o.shipping_fee, o.total_amount
        FROM orders o
        JOIN customers cu ON cu.customer_id = o.customer_id
        ORDER BY o.order_id
    """,
    "order_items": """
        SELECT i.order_item_id, i.order_id, i.line_no, o.order_ts,
               CAST(o.order_ts AS DATE) AS order_date, o.channel, o.currency,
               i.product_id, p.sku, p.category_id,
               c.name AS category_name, coalesce(c.parent_id, c.category_id) AS top_category_id,
               i.quantity, i.unit_price, i.quantity * i.unit_price AS gross_amount,
               i.discount_amount, i.line_total,
               i.quantity * p.unit_cost_eur AS line_cost_eur
        FROM order_items i
        JOIN orders o ON o.order_id = i.order_id
        JOIN products p ON p.product_id = i.product_id
        JOIN categories c ON c.category_id = p.category_id
        ORDER BY i.order_item_id
    """,
    "payments": """
        SELECT pa.payment_id, pa.order_id, pa.method, pa.status, pa.currency, pa.amount,
               pa.paid_ts, CAST(pa.paid_ts AS DATE) AS paid_date,
               CAST(EXTRACT(EPOCH FROM (pa.paid_ts - o.order_ts)) AS INTEGER)
                   AS seconds_after_order,
               count(*) OVER (PARTITION BY pa.order_id) > 1 AS is_split,
               o.channel, pa.provider_ref
        FROM payments pa
        JOIN orders o ON o.order_id = pa.order_id
        ORDER BY pa.payment_id
    """,
    "shipments": """
        SELECT sh.shipment_id, sh.order_id, sh.warehouse_id, w.country_code AS origin_country,
               cu.country_code AS destination_country,
               w.country_code <> cu.country_code AS is_cross_border,
               sh.carrier, sh.tracking_number, o.order_ts, sh.shipped_ts, sh.promised_date,
               sh.delivered_ts,
               CAST(EXTRACT(EPOCH FROM (sh.shipped_ts - o.order_ts)) / 3600 AS DECIMAL(8, 2))
                   AS hours_to_ship,
               CAST(EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400
                    AS DECIMAL(8, 2)) AS days_in_transit,
               CAST(sh.delivered_ts AS DATE) <= sh.promised_date AS delivered_on_time,
               sh.shipping_cost_eur, sh.parcel_weight_g
        FROM shipments sh
        JOIN orders o ON o.order_id = sh.order_id
        JOIN customers cu ON cu.customer_id = o.customer_id
        JOIN warehouses w ON w.warehouse_id = sh.warehouse_id
        ORDER BY sh.shipment_id
    """,
    "returns": """
        SELECT rt.return_id, rt.order_item_id, rt.order_id, i.product_id, p.sku,
               p.category_id, c.name AS category_name, rt.quantity, i.quantity AS ordered_quantity,
               rt.reason, rt.condition, rt.refund_amount, rt.currency,
               o.order_ts, rt.requested_ts, rt.received_ts,
               CAST(EXTRACT(EPOCH FROM (rt.requested_ts - o.order_ts)) / 86400 AS INTEGER)
                   AS days_after_order,
               rt.received_ts IS NOT NULL AS is_received
        FROM returns rt
        JOIN order_items i ON i.order_item_id = rt.order_item_id
        JOIN orders o ON o.order_id = rt.order_id
        JOIN products p ON p.product_id = i.product_id
        JOIN categories c ON c.category_id = p.category_id
        ORDER BY rt.return_id
    """,
    "reviews": """
        SELECT v.review_id, v.product_id, p.sku, p.brand, p.category_id,
               c.name AS category_name, v.customer_id, cu.country_code, v.order_id,
               v.rating, v.rating >= 4 AS is_positive, v.title, v.body,
               length(v.body) AS body_length, v.created_ts,
               CAST(date_trunc('month', v.created_ts) AS DATE) AS created_month,
               v.helpful_votes, v.verified_purchase
        FROM reviews v
        JOIN products p ON p.product_id = v.product_id
        JOIN categories c ON c.category_id = p.category_id
        JOIN customers cu ON cu.customer_id = v.customer_id
        ORDER BY v.review_id
    """,
    "inventory_movements": """
        SELECT m.movement_id, m.product_id, p.sku, p.category_id, m.warehouse_id,
               w.code AS warehouse_code, w.country_code AS warehouse_country,
               m.movement_type,
               CASE WHEN m.quantity >= 0 THEN 'in' ELSE 'out' END AS direction,
               m.quantity, m.unit_cost_eur, m.quantity * m.unit_cost_eur AS value_eur,
               m.supplier_id, m.moved_ts, CAST(m.moved_ts AS DATE) AS moved_date,
               m.reference
        FROM inventory_movements m
        JOIN products p ON p.product_id = m.product_id
        JOIN warehouses w ON w.warehouse_id = m.warehouse_id
        ORDER BY m.movement_id
    """,
    "web_sessions": """
        SELECT s.session_id, s.customer_id, s.customer_id IS NOT NULL AS is_logged_in,
               cu.loyalty_tier, s.country_code, s.started_ts, s.ended_ts,
               CAST(s.started_ts AS DATE) AS session_date,
               CAST(EXTRACT(HOUR FROM s.started_ts) AS INTEGER) AS start_hour,
               CAST(EXTRACT(EPOCH FROM (s.ended_ts - s.started_ts)) AS INTEGER)
                   AS duration_seconds,
               s.device, s.browser, s.landing_page, s.utm_source, s.page_view_count,
               s.page_view_count = 1 AS is_bounce, s.converted
        FROM web_sessions s
        LEFT JOIN customers cu ON cu.customer_id = s.customer_id
        ORDER BY s.session_id
    """,
    "page_views": """
        SELECT v.view_id, v.session_id, v.seq, v.viewed_ts, s.device, s.utm_source,
               s.country_code, v.page_type, v.url, v.product_id, p.category_id,
               v.time_on_page_ms, v.seq = s.page_view_count AS is_exit
        FROM page_views v
        JOIN web_sessions s ON s.session_id = v.session_id
        LEFT JOIN products p ON p.product_id = v.product_id
        ORDER BY v.view_id
    """,
    "support_tickets": """
        SELECT t.ticket_id, t.customer_id, cu.country_code, t.order_id,
               o.channel AS order_channel, t.channel, t.category, t.priority, t.status,
               t.status IN ('open', 'pending') AS is_open, t.subject, t.agent_name,
               t.opened_ts, t.first_response_ts, t.resolved_ts,
               CAST(EXTRACT(EPOCH FROM (t.first_response_ts - t.opened_ts)) / 3600
                    AS DECIMAL(8, 2)) AS hours_to_first_response,
               CAST(EXTRACT(EPOCH FROM (t.resolved_ts - t.opened_ts)) / 3600
                    AS DECIMAL(8, 2)) AS hours_to_resolution,
               t.satisfaction_score
        FROM support_tickets t
        JOIN customers cu ON cu.customer_id = t.customer_id
        LEFT JOIN orders o ON o.order_id = t.order_id
        ORDER BY t.ticket_id
    """,
}


def extract_query(table: str) -> str:
    """The SELECT ingest runs against the shared database to extract ``table``."""
    return _EXTRACTS[check_table(table)].strip()


# Lake datasets that ingest enriches with the partner API's reference data (rates per
# currency and month, country facts). Ingest relies on these extract columns:
#   orders:   order_id, customer_id, country_code, currency, order_ts, total_amount
#             (+ status, channel) -> adds total_amount_eur, region, vat_rate
#   payments: payment_id, order_id, currency, paid_ts, amount (+ method, status)
#             -> adds amount_eur
# The lake reports below read exactly those columns and the ones ingest adds.
ENRICHED_TABLES: dict[str, str] = {
    "orders": "orders in local currency; ingest adds total_amount_eur (rate of the order "
    "month), region and vat_rate (country facts)",
    "payments": "payments in local currency; ingest adds amount_eur (rate of the payment month)",
}


# --- reports -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSpec:
    """One report: a bounded, deterministically ordered query and where it reads from."""

    name: str
    title: str
    description: str
    sql: str
    lake_tables: tuple[str, ...] = ()

    @property
    def reads_lake(self) -> bool:
        return bool(self.lake_tables)


LAKE_PLACEHOLDER = "{lake}"

_REPORTS: tuple[ReportSpec, ...] = (
    ReportSpec(
        name="revenue_by_month",
        title="Revenue by month and currency",
        description="Orders, buyers (new and returning), units, gross and net revenue and "
        "the median basket per month in each selling currency.",
        sql="""
            WITH firsts AS (
                SELECT customer_id, min(order_ts) AS first_order_ts
                FROM orders WHERE status <> 'cancelled' GROUP BY customer_id
            ), units AS (
                SELECT order_id, sum(quantity) AS units FROM order_items GROUP BY order_id
            )
            SELECT CAST(date_trunc('month', o.order_ts) AS DATE) AS month, o.currency,
                   count(*) AS orders, count(DISTINCT o.customer_id) AS customers,
                   count(DISTINCT o.customer_id) FILTER (WHERE o.order_ts = f.first_order_ts)
                       AS new_customers,
                   sum(u.units) AS units,
                   sum(o.subtotal) AS gross_revenue, sum(o.discount_amount) AS discounts,
                   sum(o.shipping_fee) AS shipping_fees, sum(o.total_amount) AS net_revenue,
                   coalesce(sum(o.total_amount) FILTER (WHERE o.order_ts = f.first_order_ts), 0)
                       AS net_revenue_new_customers,
                   CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY o.total_amount)
                        AS DECIMAL(14, 2)) AS median_order_value
            FROM orders o
            JOIN firsts f ON f.customer_id = o.customer_id
            JOIN units u ON u.order_id = o.order_id
            WHERE o.status <> 'cancelled'
            GROUP BY 1, 2
            ORDER BY month, o.currency
        """,
    ),
    ReportSpec(
        name="top_products",
        title="Top 100 products by units sold",
        description="Best sellers with category, orders, product page views, view-to-order "
        "rate, return rate and rating.",
        sql="""
            WITH sold AS (
                SELECT i.product_id, sum(i.quantity) AS units_sold,
                       count(DISTINCT i.order_id) AS orders
                FROM order_items i JOIN orders o ON o.order_id = i.order_id
                WHERE o.status <> 'cancelled'
                GROUP BY i.product_id
            ), viewed AS (
                SELECT product_id, count(*) AS views, count(DISTINCT session_id) AS sessions
                FROM page_views WHERE product_id IS NOT NULL GROUP BY product_id
            ), returned AS (
                SELECT i.product_id, sum(r.quantity) AS units_returned
                FROM returns r JOIN order_items i ON i.order_item_id = r.order_item_id
                GROUP BY i.product_id
            ), rated AS (
                SELECT product_id, CAST(avg(rating) AS DECIMAL(4, 2)) AS avg_rating,
                       count(*) AS reviews
                FROM reviews GROUP BY product_id
            )
            SELECT p.product_id, p.sku, p.name, c.name AS category, p.brand,
                   sold.units_sold, sold.orders,
                   coalesce(viewed.views, 0) AS page_views,
                   CAST(100.0 * sold.orders / nullif(viewed.sessions, 0) AS DECIMAL(8, 2))
                       AS orders_per_100_viewing_sessions,
                   coalesce(returned.units_returned, 0) AS units_returned,
                   CAST(100.0 * coalesce(returned.units_returned, 0) / sold.units_sold
                        AS DECIMAL(6, 2)) AS return_rate_pct,
                   rated.avg_rating, coalesce(rated.reviews, 0) AS reviews
            FROM sold
            JOIN products p ON p.product_id = sold.product_id
            JOIN categories c ON c.category_id = p.category_id
            LEFT JOIN viewed ON viewed.product_id = sold.product_id
            LEFT JOIN returned ON returned.product_id = sold.product_id
            LEFT JOIN rated ON rated.product_id = sold.product_id
            ORDER BY sold.units_sold DESC, p.product_id
            LIMIT 100
        """,
    ),
    ReportSpec(
        name="customer_cohorts",
        title="Customer cohorts by first order month",
        description="Active customers, orders and units per cohort, by months since the "
        "first order.",
        sql="""
            WITH valid AS (
                SELECT o.customer_id, o.order_id,
                       CAST(date_trunc('month', o.order_ts) AS DATE) AS month
                FROM orders o WHERE o.status <> 'cancelled'
            ), firsts AS (
                SELECT customer_id, min(month) AS cohort_month FROM valid GROUP BY customer_id
            ), sized AS (
                SELECT cohort_month, count(*) AS cohort_size FROM firsts GROUP BY cohort_month
            ), units AS (
                SELECT order_id, sum(quantity) AS units FROM order_items GROUP BY order_id
            )
            SELECT f.cohort_month,
                   CAST((EXTRACT(YEAR FROM v.month) - EXTRACT(YEAR FROM f.cohort_month)) * 12
                        + EXTRACT(MONTH FROM v.month) - EXTRACT(MONTH FROM f.cohort_month)
                        AS INTEGER) AS months_since_first,
                   s.cohort_size,
                   count(DISTINCT v.customer_id) AS active_customers,
                   count(*) AS orders,
                   sum(u.units) AS units,
                   CAST(100.0 * count(DISTINCT v.customer_id) / s.cohort_size AS DECIMAL(6, 2))
                       AS retention_pct
            FROM valid v
            JOIN firsts f ON f.customer_id = v.customer_id
            JOIN sized s ON s.cohort_month = f.cohort_month
            JOIN units u ON u.order_id = v.order_id
            GROUP BY f.cohort_month, 2, s.cohort_size
            ORDER BY f.cohort_month, months_since_first
        """,
    ),
    ReportSpec(
        name="inventory_health",
        title="Inventory health by warehouse",
        description="Stock on hand and its value, out-of-stock products, products below "
        "their reorder point (90-day pick rate x supplier lead time), days of cover and "
        "stock-out events replayed from the movement history.",
        sql="""
            WITH horizon AS (
                SELECT max(moved_ts) - INTERVAL '90' DAY AS since FROM inventory_movements
            ), positions AS (
                SELECT m.warehouse_id, m.product_id, sum(m.quantity) AS on_hand,
                       sum(m.quantity * m.unit_cost_eur) AS value_eur,
                       coalesce(-sum(m.quantity) FILTER (
                           WHERE m.movement_type = 'pick' AND m.moved_ts >= h.since), 0)
                           AS picked_90d
                FROM inventory_movements m CROSS JOIN horizon h
                GROUP BY m.warehouse_id, m.product_id
            ), levels AS (
                SELECT warehouse_id, product_id, quantity,
                       sum(quantity) OVER (
                           PARTITION BY warehouse_id, product_id ORDER BY moved_ts, movement_id
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS level
                FROM inventory_movements
            ), stockouts AS (
                SELECT warehouse_id, count(*) AS stockout_events
                FROM levels WHERE level <= 0 AND level - quantity > 0
                GROUP BY warehouse_id
            ), rated AS (
                SELECT pos.*, s.lead_time_days,
                       pos.picked_90d / 90.0 * s.lead_time_days AS reorder_point
                FROM positions pos
                JOIN products p ON p.product_id = pos.product_id
                JOIN suppliers s ON s.supplier_id = p.supplier_id
            ), shipped AS (
                SELECT sh.warehouse_id, count(*) AS shipments_90d, sum(i.quantity) AS units_shipped_90d
                FROM shipments sh
                JOIN order_items i ON i.order_id = sh.order_id
                CROSS JOIN horizon h
                WHERE sh.shipped_ts >= h.since
                GROUP BY sh.warehouse_id
            )
            SELECT w.warehouse_id, w.code, w.country_code, count(*) AS products,
                   sum(r.on_hand) AS units_on_hand, sum(r.value_eur) AS stock_value_eur,
                   count(*) FILTER (WHERE r.on_hand <= 0) AS out_of_stock_products,
                   count(*) FILTER (WHERE r.on_hand > 0 AND r.on_hand < r.reorder_point)
                       AS below_reorder_point,
                   sum(r.picked_90d) AS units_picked_90d,
                   CAST(sum(r.on_hand) / nullif(sum(r.picked_90d) / 90.0, 0) AS DECIMAL(10, 1))
                       AS days_of_cover,
                   CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY r.on_hand)
                        AS DECIMAL(10, 1)) AS median_units_per_product,
                   coalesce(max(sh.shipments_90d), 0) AS shipments_90d,
                   coalesce(max(sh.units_shipped_90d), 0) AS units_shipped_90d,
                   coalesce(max(so.stockout_events), 0) AS stockout_events
            FROM rated r
            JOIN warehouses w ON w.warehouse_id = r.warehouse_id
            LEFT JOIN shipped sh ON sh.warehouse_id = r.warehouse_id
            LEFT JOIN stockouts so ON so.warehouse_id = r.warehouse_id
            GROUP BY w.warehouse_id, w.code, w.country_code
            ORDER BY w.warehouse_id
        """,
    ),
    ReportSpec(
        name="return_rate_by_category",
        title="Return rate by top-level category",
        description="Units sold and returned, the most common reason, how fast items come "
        "back, and the rating of returned against kept items, per category.",
        sql="""
            WITH lines AS (
                SELECT i.order_item_id, i.order_id, i.product_id, i.quantity, o.order_ts,
                       o.customer_id, coalesce(c.parent_id, c.category_id) AS top_id
                FROM order_items i
                JOIN orders o ON o.order_id = i.order_id
                JOIN products p ON p.product_id = i.product_id
                JOIN categories c ON c.category_id = p.category_id
                WHERE o.status = 'completed'
            ), back AS (
                SELECT l.top_id, r.reason, r.quantity, l.order_id, l.product_id,
                       EXTRACT(EPOCH FROM (r.requested_ts - l.order_ts)) / 86400 AS days
                FROM returns r JOIN lines l ON l.order_item_id = r.order_item_id
            ), reasons AS (
                SELECT top_id, reason,
                       row_number() OVER (PARTITION BY top_id ORDER BY count(*) DESC, reason) AS rn
                FROM back GROUP BY top_id, reason
            ), returned AS (
                SELECT top_id, count(*) AS returns, sum(quantity) AS units_returned,
                       CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS DECIMAL(6, 1))
                           AS median_days_to_return
                FROM back GROUP BY top_id
            ), sold AS (
                SELECT top_id, sum(quantity) AS units_sold, count(*) AS lines
                FROM lines GROUP BY top_id
            ), rated AS (
                SELECT l.top_id,
                       CAST(avg(v.rating) FILTER (WHERE b.order_id IS NOT NULL) AS DECIMAL(4, 2))
                           AS avg_rating_returned,
                       CAST(avg(v.rating) FILTER (WHERE b.order_id IS NULL) AS DECIMAL(4, 2))
                           AS avg_rating_kept
                FROM reviews v
                JOIN lines l ON l.order_id = v.order_id AND l.product_id = v.product_id
                LEFT JOIN (SELECT DISTINCT order_id, product_id FROM back) b
                       ON b.order_id = v.order_id AND b.product_id = v.product_id
                GROUP BY l.top_id
            )
            SELECT c.category_id, c.name AS category, sold.lines, sold.units_sold,
                   coalesce(returned.returns, 0) AS returns,
                   coalesce(returned.units_returned, 0) AS units_returned,
                   CAST(100.0 * coalesce(returned.units_returned, 0) / sold.units_sold
                        AS DECIMAL(6, 2)) AS return_rate_pct,
                   reasons.reason AS top_reason, returned.median_days_to_return,
                   rated.avg_rating_returned, rated.avg_rating_kept
            FROM sold
            JOIN categories c ON c.category_id = sold.top_id
            LEFT JOIN returned ON returned.top_id = sold.top_id
            LEFT JOIN reasons ON reasons.top_id = sold.top_id AND reasons.rn = 1
            LEFT JOIN rated ON rated.top_id = sold.top_id
            ORDER BY return_rate_pct DESC, c.category_id
        """,
    ),
    ReportSpec(
        name="support_backlog",
        title="Support backlog by priority and category",
        description="Open and pending tickets, response and resolution times, satisfaction, "
        "and how many tickets follow a late delivery or a return.",
        sql="""
            WITH late AS (
                SELECT order_id FROM shipments
                WHERE CAST(delivered_ts AS DATE) > promised_date
                   OR (delivered_ts IS NULL AND shipped_ts IS NOT NULL)
            ), returned AS (
                SELECT DISTINCT order_id FROM returns
            ), per_customer AS (
                SELECT customer_id, count(*) AS tickets_of_customer
                FROM support_tickets GROUP BY customer_id
            ), history AS (
                SELECT customer_id, count(*) AS orders_of_customer
                FROM orders GROUP BY customer_id
            )
            SELECT t.priority, t.category, count(*) AS tickets,
                   count(*) FILTER (WHERE t.status = 'open') AS open_tickets,
                   count(*) FILTER (WHERE t.status = 'pending') AS pending_tickets,
                   count(*) FILTER (WHERE t.first_response_ts IS NULL) AS unanswered,
                   count(*) FILTER (WHERE late.order_id IS NOT NULL) AS after_late_delivery,
                   count(*) FILTER (WHERE ret.order_id IS NOT NULL) AS after_return,
                   count(*) FILTER (WHERE pc.tickets_of_customer > 1) AS from_repeat_contacts,
                   CAST(avg(coalesce(h.orders_of_customer, 0)) AS DECIMAL(8, 2))
                       AS avg_orders_of_customer,
                   CAST(percentile_cont(0.5) WITHIN GROUP (
                        ORDER BY EXTRACT(EPOCH FROM (t.first_response_ts - t.opened_ts)) / 3600)
                        AS DECIMAL(10, 2)) AS median_hours_to_first_response,
                   CAST(percentile_cont(0.9) WITHIN GROUP (
                        ORDER BY EXTRACT(EPOCH FROM (t.resolved_ts - t.opened_ts)) / 3600)
                        AS DECIMAL(10, 2)) AS p90_hours_to_resolution,
                   CAST(avg(t.satisfaction_score) AS DECIMAL(4, 2)) AS avg_satisfaction,
                   count(DISTINCT t.customer_id) AS customers,
                   count(DISTINCT t.order_id) AS orders,
                   count(DISTINCT t.agent_name) AS agents,
                   count(DISTINCT cu.country_code) AS countries
            FROM support_tickets t
            JOIN customers cu ON cu.customer_id = t.customer_id
            JOIN per_customer pc ON pc.customer_id = t.customer_id
            LEFT JOIN history h ON h.customer_id = t.customer_id
            LEFT JOIN late ON late.order_id = t.order_id
            LEFT JOIN returned ret ON ret.order_id = t.order_id
            GROUP BY t.priority, t.category
            ORDER BY CASE t.priority WHEN 'urgent' THEN 1 WHEN 'high' THEN 2
                                     WHEN 'normal' THEN 3 ELSE 4 END, t.category
        """,
    ),
    ReportSpec(
        name="web_conversion",
        title="Web conversion by month and device",
        description="Sessions, bounces, product views and the share of sessions that bought.",
        sql="""
            WITH views AS (
                SELECT session_id,
                       count(*) FILTER (WHERE page_type = 'product') AS product_views,
                       count(*) FILTER (WHERE page_type IN ('cart', 'checkout')) AS cart_views,
                       sum(time_on_page_ms) AS time_ms
                FROM page_views GROUP BY session_id
            )
            SELECT CAST(date_trunc('month', s.started_ts) AS DATE) AS month, s.device,
                   count(*) AS sessions,
                   count(*) FILTER (WHERE s.customer_id IS NOT NULL) AS logged_in_sessions,
                   count(DISTINCT s.customer_id) AS known_visitors,
                   count(*) FILTER (WHERE s.page_view_count = 1) AS bounces,
                   sum(v.product_views) AS product_views,
                   count(*) FILTER (WHERE v.cart_views > 0) AS sessions_with_cart,
                   count(*) FILTER (WHERE s.converted) AS converted_sessions,
                   CAST(100.0 * count(*) FILTER (WHERE s.converted) / count(*) AS DECIMAL(6, 2))
                       AS conversion_pct,
                   CAST(avg(v.time_ms) / 1000 AS DECIMAL(10, 1)) AS avg_seconds_on_site
            FROM web_sessions s JOIN views v ON v.session_id = s.session_id
            GROUP BY 1, 2
            ORDER BY month, s.device
        """,
    ),
    ReportSpec(
        name="shipping_performance",
        title="Shipping performance by carrier and destination",
        description="Shipments, units, time to ship, transit time percentiles, on-time rate "
        "and returns blamed on late delivery.",
        sql="""
            WITH units AS (
                SELECT order_id, sum(quantity) AS units FROM order_items GROUP BY order_id
            ), late_returns AS (
                SELECT order_id, count(*) AS n FROM returns
                WHERE reason = 'late delivery' GROUP BY order_id
            )
            SELECT sh.carrier, cu.country_code AS destination_country, count(*) AS shipments,
                   sum(u.units) AS units,
                   count(*) FILTER (WHERE sh.delivered_ts IS NOT NULL) AS delivered,
                   CAST(percentile_cont(0.5) WITHIN GROUP (
                        ORDER BY EXTRACT(EPOCH FROM (sh.shipped_ts - o.order_ts)) / 3600)
                        AS DECIMAL(8, 1)) AS median_hours_to_ship,
                   CAST(percentile_cont(0.5) WITHIN GROUP (
                        ORDER BY EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400)
                        AS DECIMAL(8, 2)) AS median_transit_days,
                   CAST(percentile_cont(0.9) WITHIN GROUP (
                        ORDER BY EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400)
                        AS DECIMAL(8, 2)) AS p90_transit_days,
                   CAST(100.0 * count(*) FILTER (
                        WHERE CAST(sh.delivered_ts AS DATE) <= sh.promised_date)
                        / nullif(count(*) FILTER (WHERE sh.delivered_ts IS NOT NULL), 0)
                        AS DECIMAL(6, 2)) AS on_time_pct,
                   coalesce(sum(lr.n), 0) AS late_delivery_returns,
                   sum(sh.shipping_cost_eur) AS shipping_cost_eur
            FROM shipments sh
            JOIN orders o ON o.order_id = sh.order_id
            JOIN customers cu ON cu.customer_id = o.customer_id
            JOIN units u ON u.order_id = sh.order_id
            LEFT JOIN late_returns lr ON lr.order_id = sh.order_id
            GROUP BY sh.carrier, cu.country_code
            ORDER BY sh.carrier, destination_country
        """,
    ),
    ReportSpec(
        name="revenue_eur_by_region",
        title="Revenue in EUR by region and month (lake)",
        description="Ingest's enriched orders: EUR revenue and the VAT it contains, per "
        "API region and month.",
        lake_tables=("orders",),
        sql="""
            WITH lake_orders AS (
                -- exact decimals per row: summing doubles in parallel is not reproducible
                SELECT order_id, customer_id, country_code, order_ts, region,
                       CAST(total_amount_eur AS DECIMAL(18, 2)) AS total_amount_eur,
                       CAST(total_amount_eur * vat_rate / (1 + vat_rate) AS DECIMAL(18, 4))
                           AS vat_eur,
                       order_ts = min(order_ts) OVER (PARTITION BY customer_id) AS is_first
                FROM read_parquet('{lake}/orders.parquet')
            )
            SELECT coalesce(region, 'unknown') AS region,
                   CAST(date_trunc('month', order_ts) AS DATE) AS month,
                   count(*) AS orders, count(DISTINCT customer_id) AS customers,
                   count(*) FILTER (WHERE is_first) AS first_orders,
                   count(DISTINCT country_code) AS countries,
                   sum(total_amount_eur) AS revenue_eur,
                   CAST(sum(vat_eur) AS DECIMAL(18, 2)) AS vat_eur,
                   CAST(sum(total_amount_eur) / count(*) AS DECIMAL(14, 2)) AS avg_order_eur,
                   CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY total_amount_eur)
                        AS DECIMAL(14, 2)) AS median_order_eur
            FROM lake_orders
            GROUP BY 1, 2
            ORDER BY region, month
        """,
    ),
    ReportSpec(
        name="payments_eur_by_method",
        title="Payments in EUR by method and region (lake)",
        description="Ingest's enriched payments joined to enriched orders: EUR volume, "
        "count and split share per payment method and region.",
        lake_tables=("orders", "payments"),
        sql="""
            WITH pay AS (
                SELECT payment_id, order_id, method, currency,
                       CAST(amount_eur AS DECIMAL(18, 2)) AS amount_eur,
                       count(*) OVER (PARTITION BY order_id) > 1 AS is_split
                FROM read_parquet('{lake}/payments.parquet')
            )
            SELECT p.method, coalesce(o.region, 'unknown') AS region,
                   count(*) AS payments, count(DISTINCT p.order_id) AS orders,
                   count(DISTINCT p.currency) AS currencies,
                   count(*) FILTER (WHERE p.is_split) AS split_payments,
                   sum(p.amount_eur) AS amount_eur,
                   CAST(sum(p.amount_eur) / count(*) AS DECIMAL(14, 2)) AS avg_amount_eur
            FROM pay p
            LEFT JOIN read_parquet('{lake}/orders.parquet') o ON o.order_id = p.order_id
            GROUP BY 1, 2
            ORDER BY p.method, region
        """,
    ),
)

REPORTS: dict[str, ReportSpec] = {spec.name: spec for spec in _REPORTS}


def report_query(name: str, lake_dir: Path | None = None) -> str:
    """The SQL of report ``name``; lake reports get ``lake_dir`` in place of ``{lake}``."""
    spec = REPORTS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"unknown report {name!r}: choose one of {', '.join(REPORTS)}")
    sql = spec.sql.strip()
    if not spec.reads_lake:
        return sql
    if lake_dir is None:
        raise ValueError(f"report {name!r} reads the lake: pass lake_dir")
    folder = Path(lake_dir).as_posix().replace("'", "''")
    return sql.replace(LAKE_PLACEHOLDER, folder)
