"""The declared shape and primary key of every integrated table.

Every builder conforms its output to ``SCHEMAS[table]`` (exact columns and types, in order), and
``PRIMARY_KEYS[table]`` is what the blocking key checks, the GX suites and the tests hold it to.
"""

from __future__ import annotations

import polars as pl

from governance.quarantine import conform

TS = pl.Datetime("us", "UTC")
STR = pl.String()
I64 = pl.Int64()
F64 = pl.Float64()
BOOL = pl.Boolean()
DATE = pl.Date()

_COUNTS = {"views": I64, "clicks": I64, "add_to_carts": I64, "purchases": I64}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    # --- identity -------------------------------------------------------------------------------
    "user_keys": {
        "source_user_id": STR,  # the id as it appears in the clean layer (namespaced per export)
        "source_system": STR,  # "shop" or the importer kind ("instacart", ...)
        "user_key": STR,  # pseudonymous stable key (keyed hash of the identity's canonical id)
        "origin": STR,  # registry (clean.users) | behaviour (ids of systems without a registry)
        "matched_by": STR,  # id (the canonical record itself) | email (linked across systems)
        "is_canonical": BOOL,
        "records": I64,  # rows of clean.users behind this id (0 for behaviour ids)
        "first_ingested_at": TS,
        "last_ingested_at": TS,
    },
    "product_keys": {
        "source_product_id": STR,
        "source_system": STR,
        "product_key": STR,  # = the canonical product_id used by every integrated table
        "matched_by": STR,  # id | duplicate_map (cleaning's near-duplicate remap, clean.product_id_map)
        "records": I64,  # rows (versions) of clean.products behind this id
        "conflicting_versions": I64,  # versions landed twice with different attributes
        "first_ingested_at": TS,
        "last_ingested_at": TS,
    },
    # --- catalog --------------------------------------------------------------------------------
    "product_history": {
        "product_id": STR,
        "version": I64,
        "valid_from": TS,
        "valid_to": TS,  # exclusive; null for the current version
        "is_current": BOOL,
        "title": STR,
        "brand": STR,
        "category_l1": STR,
        "category_l2": STR,
        "category_l3": STR,
        "category_path": STR,
        "price": F64,
        "currency": STR,
        "changed": STR,  # "new" or the comma-separated attributes that changed from the previous version
        "source_system": STR,
        "_source_file": STR,  # lineage of the clean row this version came from
        "_ingested_at": TS,
    },
    "products": {
        "product_id": STR,
        "source_system": STR,
        "title": STR,
        "brand": STR,
        "category_l1": STR,
        "category_l2": STR,
        "category_l3": STR,
        "category_path": STR,
        "price": F64,
        "currency": STR,
        "price_valid_from": TS,
        "versions": I64,
        **_COUNTS,
        "units_sold": I64,
        "revenue": F64,
        "sessions": I64,
        "purchase_sessions": I64,
        "conversion_rate": F64,  # purchase_sessions / sessions (null without sessions)
        "first_seen_at": TS,
        "last_seen_at": TS,
        "review_count": I64,
        "mean_rating": F64,
        "labelled_reviews": I64,
        "positive_share": F64,
        "negative_share": F64,
        "sentiment_note": STR,  # why positive/negative_share is null, when it is
    },
    "users": {
        "user_key": STR,
        "origin": STR,
        "source_systems": STR,  # comma-separated systems the identity was seen in
        "source_ids": I64,  # source ids mapped to this key
        "signup_date": DATE,
        "country": STR,
        "first_seen_at": TS,
        "last_seen_at": TS,
        "active_days": I64,
        "events": I64,
        **_COUNTS,
        "sessions": I64,
        "orders": I64,  # frequency: sessions with a purchase
        "units": I64,
        "monetary": F64,  # revenue of the purchases, USD
        "last_purchase_date": DATE,
        "recency_days": I64,  # whole days from the last purchase day to the profile's as-of day
        "as_of": DATE,  # last day of activity in the data: recency is measured to its end
        "top_categories": STR,  # "A|B|C" by interaction weight
        "top_brands": STR,
        "review_count": I64,
        "labelled_reviews": I64,
        "mean_review_sentiment": F64,  # mean of p_positive - p_negative, in [-1, 1]
        "sentiment_note": STR,
    },
    # --- behaviour (daily) ----------------------------------------------------------------------
    "interactions": {
        "user_key": STR,
        "product_id": STR,
        "date": DATE,
        "events": I64,
        **_COUNTS,
        "units": I64,
        "revenue": F64,
        "first_event_at": TS,
        "last_event_at": TS,
        "weight": F64,
        "weight_decayed": F64,
        "decay_as_of": DATE,
    },
    "product_activity": {
        "product_id": STR,
        "date": DATE,
        "events": I64,
        **_COUNTS,
        "units": I64,
        "revenue": F64,
        "anonymous_events": I64,
        "users": I64,
        "sessions": I64,
        "purchase_sessions": I64,
        "first_event_at": TS,
        "last_event_at": TS,
    },
    "sessions": {
        "session_id": STR,
        "user_key": STR,
        "is_anonymous": BOOL,
        "date": DATE,  # day of the session's first event or query
        "session_start": TS,
        "session_end": TS,
        "duration_s": F64,
        "events": I64,
        **_COUNTS,
        "units": I64,
        "revenue": F64,
        "products": I64,
        "queries": I64,
        "converted": BOOL,
        "device": STR,
        "spans_days": BOOL,
        "user_conflict": BOOL,  # events of several users in one session (the smallest user_key is kept)
    },
    "query_clicks": {
        "query_id": STR,
        "product_id": STR,
        "date": DATE,
        "session_id": STR,
        "user_key": STR,
        "query_text": STR,
        "query_time": TS,
        **_COUNTS,
        "first_action_at": TS,
        "seconds_to_first_action": F64,
    },
    # --- model-backed findings --------------------------------------------------------------------
    "catalog_findings": {
        "finding_id": STR,
        "kind": STR,  # miscategorised | duplicate
        "product_id": STR,
        "other_product_id": STR,
        "brand": STR,
        "title": STR,
        "other_title": STR,
        "assigned_category": STR,
        "suggested_category": STR,
        "similarity": F64,  # miscategorised: to the suggested centroid; duplicate: between the two
        "assigned_similarity": F64,
        "margin": F64,
        "evidence": STR,
        "status": STR,
    },
    "embedding_cache": {
        "content_hash": STR,
        "model": STR,
        "embedding": pl.Array(pl.Float32, 384),
    },
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "user_keys": ("source_user_id",),
    "product_keys": ("source_product_id",),
    "product_history": ("product_id", "valid_from"),
    "products": ("product_id",),
    "users": ("user_key",),
    "interactions": ("user_key", "product_id", "date"),
    "product_activity": ("product_id", "date"),
    "sessions": ("session_id",),
    "query_clicks": ("query_id", "product_id"),
    "catalog_findings": ("finding_id",),
    "embedding_cache": ("content_hash",),
}

#: tables partitioned by day (the rest are snapshots)
DAILY_TABLES = ("interactions", "product_activity", "sessions", "query_clicks")


def conform_table(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Exactly the declared columns, in order, with the declared types."""
    if frame.width == 0:  # (selecting literals from a frame without columns would make one row)
        return empty(table)
    return conform(frame, SCHEMAS[table])


def empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[table])
