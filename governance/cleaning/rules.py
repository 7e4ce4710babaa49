"""The cleaning rules of every source, as data: an ordered list of named rules, each with an action.

Order matters: a row is removed by the first quarantine rule that matches it, so cheap structural
rules come first and rules that look at whole sessions or categories come after duplicates are
gone. Fixes keep the original value in `audit.<source>`; flags add a boolean column.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from governance.cleaning import blocks as b
from governance.cleaning import text
from governance.cleaning.engine import Rule
from governance.contracts import CONTRACTS

#: the earliest plausible timestamp for any shop on this platform: the first online shops opened in
#: 1994 (CDNOW's real purchases start in 1997); 1970-01-01 (epoch 0) and other defaults of broken
#: clocks fall before it. Not the generated shop's start: real exports' history is older
SHOP_OPENED = datetime(1994, 1, 1, tzinfo=UTC)
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
EVENT_TYPE_SYNONYMS = {
    "pv": "view", "page_view": "view", "pageview": "view", "detail": "view", "views": "view",
    "clicks": "click", "clicked": "click",
    "cart": "add_to_cart", "carts": "add_to_cart", "addtocart": "add_to_cart", "add-to-cart": "add_to_cart",
    "add to cart": "add_to_cart",
    "buy": "purchase", "order": "purchase", "orders": "purchase", "transaction": "purchase", "purchased": "purchase",
}
#: fixed conversion rates to the shop's currency (a production shop would load a daily rate table)
USD_RATES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CAD": 0.73, "AUD": 0.66, "JPY": 0.0067}
CARTED = pl.col("event_type").is_in(["add_to_cart", "purchase"])


def _columns(source: str) -> list[str]:
    return CONTRACTS[source].column_names


def _exact_duplicates(source: str):
    """Exact duplicates over the source's contract columns, narrowed by its business key; for
    time-partitioned sources also against the look-back window's key index (``earlier_keys``)."""
    return b.exact_duplicates(_columns(source), key=tuple(k for k in CONTRACTS[source].key if not k.startswith("_")),
                              earlier="earlier_keys" if CONTRACTS[source].partitioned else None, source=source)


#: the one keep-policy of every duplicate rule (see governance/cleaning/keyindex.py)
KEEP_POLICY = ("the earliest delivery is kept (an earlier day within the look-back window, else the first in "
               "landing order); later copies are quarantined with a reason naming the kept one")


def _tidy_all(*columns: str):
    return b.fixes(**{c: text.tidy(pl.col(c)) for c in columns})


EVENTS_RULES: tuple[Rule, ...] = (
    Rule("exact_duplicate", "quarantine",
         "Rows equal in every contract column to a row delivered earlier (this day, or an earlier day in the "
         "look-back window): " + KEEP_POLICY + ".",
         tuple(_columns("events")), _exact_duplicates("events")),
    Rule("normalise_event_type", "fix",
         "Event types lower-cased, trimmed and mapped from common synonyms (pv, cart, buy, orders…).",
         ("event_type",), b.fixes_per_value(event_type=pl.col("event_type").str.strip_chars().str.to_lowercase()
                                  .replace(EVENT_TYPE_SYNONYMS))),
    Rule("normalise_device", "fix", "Device names lower-cased and trimmed.",
         ("device",), b.fixes_per_value(device=text.tidy(pl.col("device")).str.to_lowercase())),
    Rule("price_usd_converted", "flag", "Marks prices that arrived in another currency (converted next).",
         ("currency",), b.flag_per_value("price_usd_converted", "currency",
                                         pl.col("currency").str.strip_chars().str.to_uppercase() != "USD")),
    Rule("currency_to_usd", "fix", f"Prices converted to USD at fixed rates {USD_RATES}, rounded to cents.",
         ("price", "currency"), b.currency_to_usd(USD_RATES)),
    Rule("key_duplicate", "quarantine",
         "Several rows with one event_id (a re-sent event, this day or an earlier day in the look-back window): "
         + KEEP_POLICY + ".",
         ("event_id",), b.key_duplicates(("event_id",), earlier="earlier_keys", source="events")),
    Rule("invalid_event_type", "quarantine", f"Event types outside {EVENT_TYPES} after normalisation.",
         ("event_type",), b.not_in_set("event_type", EVENT_TYPES)),
    Rule("timestamp_out_of_range", "quarantine",
         "Event times in the future or before the shop existed (epoch 0 and other broken clocks).",
         ("event_time",), b.timestamp_window("event_time", SHOP_OPENED)),
    Rule("bot_session", "quarantine",
         "Whole sessions with inhuman browsing rates (≥30 views/clicks at >20 a minute, or ≥15 with a median "
         "gap under 1 s; checkouts that book many items at once do not count), kept together with the "
         "session-level reason.",
         ("session_id", "event_time"), b.bot_sessions()),
    Rule("remap_duplicate_product", "fix",
         "Events on a product id that cleaning found to duplicate another product are moved to the kept id.",
         ("item_id",), b.remap("item_id", "product_id_map", "duplicate_id", "canonical_id")),
    Rule("unknown_item", "quarantine",
         "Events on items that never appeared in the catalog (clean or quarantined rows): quarantined, because "
         "no later stage (prices, categories, recommendations) can use an event about an unknown item.",
         ("item_id",), b.unknown_reference("item_id", "product_ids", "product_id", "the catalog")),
    Rule("unknown_user", "quarantine",
         "Events of a user_id that never appeared in the user profiles (clean or quarantined rows): "
         "quarantined, because such ids are fabricated and integration requires a known user for every "
         "interaction (anonymous events, user_id null, are kept; so are ids of an imported system that "
         "delivers no user profiles at all).",
         ("user_id",), b.unknown_reference("user_id", "user_ids", "user_id", "the user profiles")),
    Rule("zero_price_nulled", "fix",
         "A view or click with price 0 (a page that showed no price) keeps the event: the price is nulled, and "
         "the audit row under this rule is its flag.",
         ("price", "event_type"), b.fixes(price=pl.when((pl.col("price") == 0) & pl.col("event_type").is_in(
             ["view", "click"])).then(None).otherwise(pl.col("price")))),
    Rule("price_not_positive", "quarantine",
         "Negative prices (a zero price is a free item or, on a view or click, no price shown: kept).",
         ("price",), b.negative("price")),
    Rule("price_outlier", "quarantine",
         "Prices far from the item's own price — the median of its priced events in the partition when it has at "
         "least 3, else its catalog price (never an imputed one): log(price / that price) beyond 6 × its "
         "category's robust spread (scaled MAD over distinct item prices), and at least a factor of 3 (of 25 against "
         "its own observed prices: one item id can cover a range of real prices).",
         ("price", "item_id"), b.price_outlier_vs_catalog("price", "item_id")),
    Rule("quantity_not_positive", "quarantine", "Zero or negative quantities.",
         ("quantity",), b.non_positive("quantity")),
    Rule("impute_price", "fix",
         "Missing prices of add_to_cart/purchase events filled with the item's current catalog price.",
         ("price", "item_id"), b.impute_from_reference("price", CARTED, "products", "item_id", "product_id", "price",
                                                       "catalog price")),
    Rule("impute_quantity", "fix", "Missing quantities of add_to_cart/purchase events set to 1 (not when the "
         "partition has no quantity at all: a shop that does not send quantities gets none invented).",
         ("quantity",), b.fixes_if_present("quantity", quantity=pl.when(pl.col("quantity").is_null() & CARTED).then(1)
                                           .otherwise(pl.col("quantity")))),
    Rule("round_price", "fix", "Prices rounded to cents.",
         ("price",), b.fixes(price=pl.col("price").round(2))),
)

PRODUCTS_RULES: tuple[Rule, ...] = (
    Rule("exact_duplicate", "quarantine",
         "Rows equal in every contract column to a row delivered earlier (this day, or an earlier day in the "
         "look-back window): " + KEEP_POLICY + ".",
         tuple(_columns("products")), _exact_duplicates("products")),
    Rule("tidy_text", "fix", "Title, description and brand: Unicode NFC, trimmed, whitespace collapsed.",
         ("title", "description", "brand"), _tidy_all("title", "description", "brand")),
    Rule("normalise_category_path", "fix", "Category paths written 'Level 1 > Level 2 > Level 3'.",
         ("category_path",), b.fixes(category_path=text.category_path(pl.col("category_path")))),
    Rule("canonical_brand", "fix", "Every spelling of a brand (case, spacing, punctuation, a legal-form suffix "
         "such as Inc.) mapped to its most frequent one.",
         ("brand",), b.canonical_spelling("brand", key=text.brand_key)),
    Rule("canonical_category", "fix", "Every spelling of a category path mapped to its most frequent one.",
         ("category_path",), b.canonical_spelling("category_path")),
    Rule("currency_to_usd", "fix", f"Prices converted to USD at fixed rates {USD_RATES}, rounded to cents.",
         ("price", "currency"), b.currency_to_usd(USD_RATES)),
    Rule("updated_at_out_of_range", "fix", "Impossible updated_at values (future, before the shop) removed.",
         ("updated_at",), b.null_out_of_range_timestamp("updated_at", SHOP_OPENED)),
    Rule("key_duplicate", "quarantine",
         "A product_id listed twice in one landed file: the first row (the earliest delivery) is kept. Rows of one product in "
         "different files are its versions (history); is_current marks the latest.",
         ("product_id",), b.key_duplicates(("product_id", "_source_file"))),
    Rule("near_duplicate_product", "quarantine",
         "Another product_id listing the same product, on real evidence only: the same known brand and category, an "
         "informative title (a word that is not the brand's or the category's) equal up to case, punctuation "
         "and word order, and no contradicting description or price (within 1.5×); at most 3 ids per title. The "
         "first listed is kept and events on the duplicate id are remapped to it (clean.product_id_map).",
         ("product_id", "brand", "title", "category_path", "description", "price"), b.near_duplicate_products()),
    Rule("price_not_positive", "fix", "Zero or negative prices removed (then imputed), original audited.",
         ("price",), b.fixes(price=pl.when(pl.col("price") <= 0).then(None).otherwise(pl.col("price")))),
    Rule("price_outlier", "fix",
         "Impossible prices removed (then imputed), original audited: more than 10× from the product's own "
         "history (median of ≥ 3 priced versions), or, without such history, outside the leaf category's robust "
         "range and more than 50× from its median. An unusual but possible price is never replaced.",
         ("price", "category_path", "product_id"),
         b.price_absurd("price", "product_id", pl.col("category_path"), "category")),
    Rule("price_imputed", "flag", "Marks prices that are missing and get imputed next.",
         ("price",), b.flag("price_imputed", pl.col("price").is_null())),
    Rule("impute_price", "fix", "Missing prices filled with the median of the product's own other versions, "
         "else of its leaf category.",
         ("price", "category_path"), b.impute_own_then_group_median("price", "product_id", "category_path")),
)

USERS_RULES: tuple[Rule, ...] = (
    Rule("exact_duplicate", "quarantine",
         "Rows equal in every contract column to a row delivered earlier (this day, or an earlier day in the "
         "look-back window): " + KEEP_POLICY + ".",
         tuple(_columns("users")), _exact_duplicates("users")),
    Rule("normalise_contact", "fix",
         "Emails trimmed and lower-cased (invalid ones removed); phones trimmed (fewer than 7 digits removed); "
         "country codes upper-cased (anything but two letters removed); names tidied.",
         ("email", "phone", "country", "name"), b.fixes(
             email=pl.when(pl.col("email").str.strip_chars().str.to_lowercase().str.contains(f"^{text.EMAIL}$"))
             .then(pl.col("email").str.strip_chars().str.to_lowercase()),
             phone=pl.when(pl.col("phone").str.replace_all(r"\D", "").str.len_chars() >= 7)
             .then(text.tidy(pl.col("phone"))),
             country=pl.when(pl.col("country").str.strip_chars().str.contains(r"^[A-Za-z]{2}$"))
             .then(pl.col("country").str.strip_chars().str.to_uppercase()),
             name=text.tidy(pl.col("name")),
         )),
    Rule("key_duplicate", "quarantine",
         "A user_id listed twice in one landed file: the first row (the earliest delivery) is kept. Rows of one user in different "
         "files are profile versions; is_current marks the latest.",
         ("user_id",), b.key_duplicates(("user_id", "_source_file"))),
    Rule("signup_invalid", "flag", "Marks sign-up times in the future or before the shop existed (removed next).",
         ("signup_at",), b.flag_out_of_range_timestamp("signup_invalid", "signup_at", SHOP_OPENED)),
    Rule("signup_out_of_range", "fix",
         "Impossible sign-up times removed (audited); the user is kept because their activity is real.",
         ("signup_at",), b.null_out_of_range_timestamp("signup_at", SHOP_OPENED)),
    Rule("updated_at_out_of_range", "fix", "Impossible updated_at values removed (audited).",
         ("updated_at",), b.null_out_of_range_timestamp("updated_at", SHOP_OPENED)),
    Rule("country_missing", "flag", "Marks users without a valid country (kept: country is optional).",
         ("country",), b.flag("country_missing", pl.col("country").is_null())),
)

REVIEWS_RULES: tuple[Rule, ...] = (
    Rule("exact_duplicate", "quarantine",
         "Rows equal in every contract column to a row delivered earlier (this day, or an earlier day in the "
         "look-back window): " + KEEP_POLICY + ".",
         tuple(_columns("reviews")), _exact_duplicates("reviews")),
    Rule("tidy_text", "fix", "Title and text: Unicode NFC, trimmed, whitespace collapsed.",
         ("title", "text"), _tidy_all("title", "text")),
    Rule("key_duplicate", "quarantine", "Several rows with one review_id: " + KEEP_POLICY + ".",
         ("review_id",), b.key_duplicates(("review_id",), earlier="earlier_keys", source="reviews")),
    Rule("rating_out_of_range", "quarantine", "Ratings outside 1–5 stars.",
         ("rating",), b.outside_range("rating", 1, 5, "★")),
    Rule("timestamp_out_of_range", "quarantine", "Review times in the future or before the shop existed.",
         ("review_time",), b.timestamp_window("review_time", SHOP_OPENED)),
    Rule("remap_duplicate_product", "fix", "Reviews of a duplicate product id moved to the kept id.",
         ("product_id",), b.remap("product_id", "product_id_map", "duplicate_id", "canonical_id")),
    Rule("unknown_product", "quarantine",
         "Reviews of products that never appeared in the catalog: quarantined (a review must describe a known "
         "product).",
         ("product_id",), b.unknown_reference("product_id", "product_ids", "product_id", "the catalog")),
    Rule("unknown_user", "quarantine",
         "Reviews by a user_id that never appeared in the user profiles: quarantined (fabricated authors; null "
         "authors are kept).",
         ("user_id",), b.unknown_reference("user_id", "user_ids", "user_id", "the user profiles")),
    Rule("near_duplicate_review", "quarantine",
         "The same user reviewing the same product again with near-identical text (≥80% token overlap), in "
         "this or an earlier partition: the first is kept.",
         ("user_id", "product_id", "text"), b.near_duplicate_text(("user_id", "product_id"), "text",
                                                                  earlier="earlier_reviews")),
    Rule("mask_pii", "fix",
         "Emails, phone numbers and card-like numbers in title/text replaced by [EMAIL]/[PHONE]/[CARD]; "
         "the count per review is kept in pii_spans_masked.",
         ("title", "text"), b.mask_pii("title", "text", count_column="pii_spans_masked")),
    Rule("text_damaged", "flag",
         "Marks reviews whose text arrived as broken UTF-8 (kept, but labelling treats them as unreliable).",
         ("title", "text"), b.flag("text_damaged", text.damaged(pl.col("text")) | text.damaged(pl.col("title")))),
)

QUERIES_RULES: tuple[Rule, ...] = (
    Rule("exact_duplicate", "quarantine",
         "Rows equal in every contract column to a row delivered earlier (this day, or an earlier day in the "
         "look-back window): " + KEEP_POLICY + ".",
         tuple(_columns("queries")), _exact_duplicates("queries")),
    Rule("normalise_query", "fix", "Query text: Unicode NFC, trimmed, whitespace collapsed (case is kept: "
         "brand and model names carry meaning).",
         ("query_text",), b.fixes(query_text=text.tidy(pl.col("query_text")))),
    Rule("key_duplicate", "quarantine", "Several rows with one query_id: " + KEEP_POLICY + ".",
         ("query_id",), b.key_duplicates(("query_id",), earlier="earlier_keys", source="queries")),
    Rule("empty_query", "quarantine", "Queries with no text left after normalisation.",
         ("query_text",), b.missing("query_text")),
    Rule("timestamp_out_of_range", "quarantine", "Query times in the future or before the shop existed.",
         ("query_time",), b.timestamp_window("query_time", SHOP_OPENED)),
    Rule("mask_pii", "fix",
         "Emails, phone numbers and card-like numbers in queries replaced by [EMAIL]/[PHONE]/[CARD].",
         ("query_text",), b.mask_pii("query_text", count_column="pii_spans_masked")),
    Rule("text_damaged", "flag", "Marks queries that arrived as broken UTF-8.",
         ("query_text",), b.flag("text_damaged", text.damaged(pl.col("query_text")))),
    Rule("user_unknown", "flag",
         "Marks queries by a user_id that never appeared in the user profiles: kept, because search analytics "
         "count every query.",
         ("user_id",), b.flag_unknown_reference("user_unknown", "user_id", "user_ids", "user_id")),
)

RULES: dict[str, tuple[Rule, ...]] = {
    "events": EVENTS_RULES,
    "products": PRODUCTS_RULES,
    "users": USERS_RULES,
    "reviews": REVIEWS_RULES,
    "queries": QUERIES_RULES,
}
