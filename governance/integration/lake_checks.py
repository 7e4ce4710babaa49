"""Every integration check over the lake, one function per Dagster asset check.

``checks`` (blocking outcomes) and ``consistency`` (warning findings) hold the logic over frames;
these functions read what a check needs from the lake and call it, so each check in
``assets/integration.py`` is one call. Primary keys are not here: the GX suite of every integrated
table checks its key (``expectations/integrated.<table>.json``), once.
"""

from __future__ import annotations

import polars as pl

from governance.integration import checks as C
from governance.integration import consistency as K
from governance.integration.config import IntegrationConfig
from governance.integration.identity import UserLookup
from governance.integration.pipeline import DaySource, load_lookups, read_all_daily, shift_day
from governance.integration.profiles import review_facts
from governance.privacy import pii_columns as pii_columns_of_contracts
from governance.storage import Lake

LAYER = C.LAYER



def references_exist(lake: Lake, table: str, day: str, config: IntegrationConfig) -> C.CheckOutcome:
    """Every user_key and product_id of a daily table's partition is known."""
    lookup = UserLookup.from_mapping(lake.read(LAYER, "user_keys"), config)
    product_ids = lake.read(LAYER, "product_history").select("product_id").unique()["product_id"]
    return C.referential_integrity_daily(lake, table, day, lookup, product_ids)


def event_findings(lake: Lake, day: str, config: IntegrationConfig) -> dict[str, K.Finding]:
    """The day's event-level warnings, from the clean events admitted as integration admits them:
    purchase prices against the catalog price of the time, and purchases without earlier interest."""
    users, product_keys = load_lookups(lake, config)
    source = DaySource(lake, users, product_keys)
    today = source.admitted(day)
    if today is None:
        empty = K.Finding("no_events", 0, 0, pl.DataFrame(), "no clean events on this day", unit="events")
        return {"purchase_price_matches_catalog": empty, "purchases_follow_interest": empty}
    return {
        "purchase_price_matches_catalog": K.price_mismatches(today, lake.read(LAYER, "product_history"), config),
        "purchases_follow_interest": K.purchases_without_interest(today, source.admitted(shift_day(day, -1))),
    }


def session_durations(lake: Lake, day: str, config: IntegrationConfig) -> K.Finding:
    return K.impossible_sessions(lake.read(LAYER, "sessions", day), config)


def _interactions(lake: Lake, schema: dict) -> pl.LazyFrame:
    if lake.partitions(LAYER, "interactions"):
        return lake.scan(LAYER, "interactions")
    return pl.DataFrame(schema=schema).lazy()


def activity_before_signup(lake: Lake) -> K.Finding:
    inter = _interactions(lake, {"user_key": pl.String, "date": pl.Date, "events": pl.Int64})
    return K.activity_before_signup(lake.read(LAYER, "users"), inter)


def products_never_seen(lake: Lake) -> K.Finding:
    return K.products_never_seen(lake.read(LAYER, "products"))


def reviews_verified(lake: Lake, config: IntegrationConfig) -> K.Finding:
    users, product_keys = load_lookups(lake, config)
    reviews = read_all_daily(lake, "clean", "reviews", ["review_id", "user_id", "product_id", "rating", "review_time"])
    facts = review_facts(reviews, None, users, product_keys)
    inter = _interactions(lake, {"user_key": pl.String, "product_id": pl.String, "purchases": pl.Int64})
    return K.unverified_reviews(facts.reviews, inter)


def history_consistent(lake: Lake) -> C.CheckOutcome:
    """Per product: versions do not overlap, valid_to is the next valid_from, exactly one current version."""
    h = lake.read(LAYER, "product_history").sort("product_id", "valid_from")
    nxt = pl.col("valid_from").shift(-1).over("product_id")
    bad_chain = h.filter(pl.col("valid_to").ne_missing(nxt))
    currents = h.group_by("product_id").agg(pl.col("is_current").sum().alias("n"))
    bad_current = currents.filter(pl.col("n") != 1)
    empty = h.filter(pl.col("valid_to").is_not_null() & (pl.col("valid_to") <= pl.col("valid_from")))
    ok = bad_chain.is_empty() and bad_current.is_empty() and empty.is_empty()
    return C.CheckOutcome("history_is_consistent", ok, {
        "versions": h.height, "products": currents.height, "broken_chains": bad_chain.height,
        "products_without_exactly_one_current": bad_current.height, "empty_intervals": empty.height},
        bad_chain.head(C.EXAMPLES).select("product_id", "version", "valid_from", "valid_to") if bad_chain.height
        else None, "valid_from/valid_to chain without gaps or overlaps")


def no_personal_data(lake: Lake) -> C.CheckOutcome:
    """The identity mapping carries no e-mail, phone or name, and every user_key is a pseudonym."""
    m = lake.read(LAYER, "user_keys")
    pii_columns = [c for c in m.columns if c.lower() in pii_columns_of_contracts()]
    bad_keys = m.filter(~pl.col("user_key").str.contains(r"^u_[0-9a-f]{20}$"))
    ok = not pii_columns and bad_keys.is_empty()
    return C.CheckOutcome("no_personal_data", ok, {"pii_columns": ", ".join(pii_columns) or "none",
                                                   "malformed_keys": bad_keys.height},
                          bad_keys.head(C.EXAMPLES).select("user_key") if bad_keys.height else None,
                          "no PII columns; keys are pseudonyms")
