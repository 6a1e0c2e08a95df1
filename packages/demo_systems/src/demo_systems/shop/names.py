"""The demo shop's sizes and vocabulary: row counts at scale 1 and the word lists the
generation SQL draws names from (bound as parameters, never interpolated)."""

from __future__ import annotations

# Row counts at scale 1. "Large" tables (facts, customers, products) grow with scale;
# the other dimensions have a fixed, realistic size.
FIXED_ROWS: dict[str, int] = {
    "stores": 600,
    "warehouses": 48,
    "suppliers": 2_500,
    "categories": 240,  # the first TOP_CATEGORIES are top level, the rest their children
    "promotions": 800,
}
SCALED_ROWS: dict[str, int] = {
    "customers": 120_000,
    "products": 50_000,
    "orders": 500_000,  # order_items, payments, shipments, returns, reviews follow orders
    "inventory_movements": 1_200_000,
    "web_sessions": 500_000,  # page_views follow sessions
    "support_tickets": 200_000,
}
TOP_CATEGORIES = 24

# Shares of customers (and stores, warehouses, sessions) per country, in percent-ish
# weights; countries missing here get DEFAULT_WEIGHT.
COUNTRY_WEIGHTS: dict[str, int] = {"DE": 16, "GB": 12, "US": 14, "FR": 10, "NL": 6, "IT": 7, "ES": 6}
DEFAULT_WEIGHT = 3

# name, symbol, minor units, price-list factor (local list price = EUR list price x factor:
# a shop's price list, not an exchange rate; the partner API is the authority on rates).
CURRENCY_INFO: dict[str, tuple[str, str, int, float]] = {
    "EUR": ("Euro", "€", 2, 1.0),
    "SEK": ("Swedish krona", "kr", 2, 11.5),
    "NOK": ("Norwegian krone", "kr", 2, 11.7),
    "DKK": ("Danish krone", "kr.", 2, 7.45),
    "PLN": ("Polish zloty", "zł", 2, 4.3),
    "CZK": ("Czech koruna", "Kč", 2, 25.0),
    "CHF": ("Swiss franc", "CHF", 2, 0.95),
    "GBP": ("Pound sterling", "£", 2, 0.86),
    "USD": ("US dollar", "$", 2, 1.09),
    "CAD": ("Canadian dollar", "C$", 2, 1.48),
    "JPY": ("Japanese yen", "¥", 0, 160.0),
}

CITIES: dict[str, list[str]] = {
    "DE": ["Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Leipzig"],
    "FR": ["Paris", "Lyon", "Marseille", "Toulouse", "Lille"],
    "NL": ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven"],
    "ES": ["Madrid", "Barcelona", "Valencia", "Seville"],
    "IT": ["Milan", "Rome", "Turin", "Naples", "Bologna"],
    "SE": ["Stockholm", "Gothenburg", "Malmö"],
    "NO": ["Oslo", "Bergen", "Trondheim"],
    "DK": ["Copenhagen", "Aarhus", "Odense"],
    "PL": ["Warsaw", "Kraków", "Wrocław", "Gdańsk"],
    "CZ": ["Prague", "Brno", "Ostrava"],
    "CH": ["Zurich", "Geneva", "Basel", "Bern"],
    "GB": ["London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol"],
    "IE": ["Dublin", "Cork", "Galway"],
    "US": ["New York", "Chicago", "Austin", "Seattle", "Boston", "Denver", "Atlanta"],
    "CA": ["Toronto", "Montreal", "Vancouver", "Calgary"],
    "JP": ["Tokyo", "Osaka", "Nagoya", "Fukuoka"],
}

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Elena",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Katja",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "William",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Aiko",
    "Lars",
    "Marta",
    "Pierre",
]
LAST_NAMES = [
    "Müller",
    "Smith",
    "Dubois",
    "Rossi",
    "García",
    "Jansen",
    "Nowak",
    "Svensson",
    "Hansen",
    "Novák",
    "Murphy",
    "Johnson",
    "Tremblay",
    "Sato",
    "Schmidt",
    "Martin",
    "Bianchi",
    "López",
    "de Vries",
    "Kowalski",
    "Lindqvist",
    "Berg",
    "Jensen",
    "Dvořák",
    "Walsh",
    "Brown",
    "Roy",
    "Suzuki",
    "Weber",
    "Moreau",
]
WORDS = [
    "organic",
    "cotton",
    "classic",
    "slim",
    "premium",
    "recycled",
    "lightweight",
    "durable",
    "waterproof",
    "vintage",
    "modern",
    "compact",
    "wireless",
    "ceramic",
    "wooden",
    "linen",
    "merino",
    "stainless",
    "handmade",
    "everyday",
    "travel",
    "outdoor",
    "kitchen",
    "studio",
]
NOUNS = [
    "jacket",
    "mug",
    "backpack",
    "lamp",
    "sneaker",
    "blanket",
    "speaker",
    "bottle",
    "scarf",
    "kettle",
    "notebook",
    "chair",
    "headphones",
    "vase",
    "towel",
    "watch",
    "shirt",
    "pan",
]
BRANDS = [
    "Nordlys",
    "Atelier 9",
    "Kumo",
    "Brightwater",
    "Fjell",
    "Casa Verde",
    "Ironleaf",
    "Polaris",
    "Mareva",
    "Urbano",
    "Tidewell",
    "Hanami",
]
CATEGORY_NAMES = [
    "Clothing",
    "Shoes",
    "Home",
    "Kitchen",
    "Electronics",
    "Outdoor",
    "Beauty",
    "Toys",
    "Sports",
    "Garden",
    "Office",
    "Books",
    "Bags",
    "Jewellery",
    "Pets",
    "Baby",
]
SUBCATEGORY_WORDS = [
    "Essentials",
    "Accessories",
    "Basics",
    "Premium",
    "Kids",
    "Pro",
    "Travel",
    "Eco",
    "Seasonal",
    "Classics",
]
CARRIERS = ["DHL", "UPS", "FedEx", "DPD", "GLS", "PostNord", "Royal Mail", "Yamato", "Canada Post"]
REVIEW_TITLES = [
    "Love it",
    "Great value",
    "Not as described",
    "Does the job",
    "Fast delivery",
    "Disappointed",
    "Exactly what I needed",
    "Good quality",
    "Runs small",
    "Would buy again",
]
TICKET_SUBJECTS = [
    "Where is my order?",
    "Refund not received",
    "Wrong size delivered",
    "Cannot log in",
    "Payment declined",
    "Item arrived damaged",
    "Change delivery address",
    "Question about warranty",
    "Missing item",
    "Cancel my order",
]
