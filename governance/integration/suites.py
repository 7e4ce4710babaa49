"""The Great Expectations suites of the integrated tables, generated from their declared schemas.

``python -m governance.integration.suites`` writes ``integrated.<table>.json`` into the ``expectations``
package (GX 1.x ExpectationSuite JSON; our conventions: ``meta.severity`` error|warn, a one-line ``notes``). The
test suite checks that the files on disk equal what this module generates, so the suites and the
schemas cannot drift apart.

Severity: ``error`` for what the integration stage guarantees by construction (exact columns and
types, primary keys, non-negative counts, values in their domain) — a failure is a bug upstream of
every consumer; ``warn`` for expectations about the data that can legitimately move (shares of
anonymous sessions, conversion rates).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from governance.integration.config import COUNT_COLUMNS, EVENT_TYPES
from governance.integration.schemas import DAILY_TABLES, PRIMARY_KEYS, SCHEMAS
from governance.quality.suites import derive_check_name
from governance.quality.validation import gx_type_name

COUNTS = list(COUNT_COLUMNS.values())
DESCRIPTIONS = {
    "user_keys": "Source user id → pseudonymous user_key, for registry and behaviour-only ids.",
    "product_keys": "Source product id → integrated product_key (ids and cleaning's duplicate remap).",
    "product_history": "Price and category history per product (SCD type 2).",
    "products": "One row per product: catalog attributes and behaviour features.",
    "users": "One row per person (pseudonymous): RFM, top categories and brands, review sentiment.",
    "interactions": "User × product × day counts and implicit-feedback weight (recommender training table).",
    "product_activity": "Product × day behaviour counts over every admitted event.",
    "sessions": "One row per session: start, end, duration, counts by event type, queries, conversion.",
    "query_clicks": "Search query × product clicked / carted / bought after it in the same session.",
    "catalog_findings": "Model-backed catalog findings for review: miscategorised and duplicate products.",
    "embedding_cache": "Text embeddings of products by content hash.",
}


def _e(expectation: str, notes: str, severity: str = "error", check_name: str | None = None, **kwargs) -> dict:
    meta = {"severity": severity}
    if check_name:
        meta["check_name"] = check_name
    return {"type": expectation, "kwargs": kwargs, "meta": meta, "notes": notes,
            "severity": "critical" if severity == "error" else "warning"}


def _not_null(table: str, *columns: str) -> list[dict]:
    return [_e("expect_column_values_to_not_be_null", f"{c} is never null in integrated.{table}.", column=c)
            for c in columns]


def _non_negative(table: str, *columns: str) -> list[dict]:
    return [_e("expect_column_values_to_be_between", f"{c} is a count or amount: never negative.", column=c,
               min_value=0) for c in columns]


def _share(*columns: str) -> list[dict]:
    return [_e("expect_column_values_to_be_between", f"{c} is a share: between 0 and 1.", column=c, min_value=0,
               max_value=1) for c in columns]


def _in_partition(column: str) -> dict:
    return _e("expect_column_values_to_be_between", f"{column} falls on the partition's day.", column=column,
              min_value={"$PARAMETER": "partition_start"}, max_value={"$PARAMETER": "partition_end"}, strict_max=True)


def _specific(table: str) -> list[dict]:
    if table == "user_keys":
        return [
            _e("expect_column_values_to_match_regex", "user_key is a pseudonym: u_ + 20 hex digits (no id, e-mail or "
               "name in it).", column="user_key", regex=r"^u_[0-9a-f]{20}$"),
            _e("expect_column_values_to_be_in_set", "origin is registry (clean.users) or behaviour (ids of systems "
               "without a registry).", column="origin", value_set=["registry", "behaviour"]),
            _e("expect_column_values_to_be_in_set", "matched_by is id or email.", column="matched_by",
               value_set=["id", "email"]),
            *_not_null("user_keys", "source_system", "user_key", "origin"),
            *_non_negative("user_keys", "records"),
        ]
    if table == "product_keys":
        return [
            _e("expect_column_values_to_be_in_set", "matched_by is id or duplicate_map.", column="matched_by",
               value_set=["id", "duplicate_map"]),
            *_not_null("product_keys", "source_system", "product_key"),
            *_non_negative("product_keys", "records", "conflicting_versions"),
        ]
    if table == "product_history":
        return [
            *_not_null("product_history", "version", "is_current", "changed"),
            _e("expect_column_values_to_be_between", "version numbers start at 1.", column="version", min_value=1),
            _e("expect_column_pair_values_a_to_be_greater_than_b", "a version ends after it starts.",
               column_A="valid_to", column_B="valid_from", ignore_row_if="either_value_is_missing"),
            _e("expect_column_values_to_be_between", "catalog prices are positive.", column="price", min_value=0,
               strict_min=True),
            _e("expect_column_values_to_not_be_null", "every version names its category.", "warn",
               column="category_l1"),
        ]
    if table == "products":
        return [
            *_not_null("products", "title", "versions", *COUNTS, "units_sold", "revenue", "sessions", "review_count"),
            *_non_negative("products", *COUNTS, "units_sold", "revenue", "sessions", "purchase_sessions",
                           "review_count", "labelled_reviews"),
            *_share("conversion_rate", "positive_share", "negative_share"),
            _e("expect_column_values_to_be_between", "mean rating is on the 1-5 star scale.", column="mean_rating",
               min_value=1, max_value=5),
            _e("expect_column_values_to_be_between", "current prices are positive.", column="price", min_value=0,
               strict_min=True),
            _e("expect_column_values_to_not_be_null", "most catalog products are viewed at least once (a product "
               "nobody saw is listed in the every_product_seen check).", "warn", check_name="first_seen_at_mostly_set",
               column="first_seen_at", mostly=0.5),
        ]
    if table == "users":
        return [
            _e("expect_column_values_to_match_regex", "user_key is a pseudonym: u_ + 20 hex digits.",
               column="user_key", regex=r"^u_[0-9a-f]{20}$"),
            _e("expect_column_values_to_be_in_set", "origin is registry, behaviour, or unmapped (a key active in the "
               "daily tables but missing from user_keys: refresh user_keys).", column="origin",
               value_set=["registry", "behaviour", "unmapped"]),
            _e("expect_column_values_to_be_in_set", "no user is unmapped (user_keys is up to date).", "warn",
               check_name="origin_mapped", column="origin", value_set=["registry", "behaviour"]),
            *_not_null("users", "events", "orders", "monetary", "as_of"),
            *_non_negative("users", "events", *COUNTS, "sessions", "orders", "units", "monetary", "review_count",
                           "recency_days", "active_days"),
            _e("expect_column_values_to_be_between", "mean review sentiment (p_positive - p_negative) is in [-1, 1].",
               column="mean_review_sentiment", min_value=-1, max_value=1),
            _e("expect_column_pair_values_a_to_be_greater_than_b", "a user is last seen no earlier than first seen.",
               column_A="last_seen_at", column_B="first_seen_at", or_equal=True,
               ignore_row_if="either_value_is_missing"),
            _e("expect_column_pair_values_a_to_be_greater_than_b", "orders are sessions with a purchase: never more "
               "than sessions.", column_A="sessions", column_B="orders", or_equal=True),
        ]
    if table == "interactions":
        return [
            *_not_null("interactions", "events", *COUNTS, "units", "revenue", "weight", "first_event_at"),
            *_non_negative("interactions", *COUNTS, "units", "revenue", "weight"),
            _e("expect_column_values_to_be_between", "every row counts at least one event.", column="events",
               min_value=1),
            _in_partition("first_event_at"),
            _in_partition("last_event_at"),
            _e("expect_column_pair_values_a_to_be_greater_than_b", "last event no earlier than the first.",
               column_A="last_event_at", column_B="first_event_at", or_equal=True),
            _e("expect_column_values_to_be_between", "weights are positive: a row exists because something happened.",
               column="weight", min_value=0, strict_min=True, check_name="weight_positive"),
        ]
    if table == "product_activity":
        return [
            *_not_null("product_activity", "events", *COUNTS, "units", "revenue", "sessions", "users"),
            *_non_negative("product_activity", *COUNTS, "units", "revenue", "anonymous_events", "users",
                           "purchase_sessions"),
            _e("expect_column_values_to_be_between", "every row counts at least one event.", column="events",
               min_value=1),
            _e("expect_column_values_to_be_between", "every row counts at least one session.", column="sessions",
               min_value=1),
            _e("expect_column_pair_values_a_to_be_greater_than_b", "purchase sessions are a subset of sessions.",
               column_A="sessions", column_B="purchase_sessions", or_equal=True),
            _in_partition("first_event_at"),
        ]
    if table == "sessions":
        return [
            *_not_null("sessions", "session_start", "session_end", "duration_s", "events", "queries", "converted"),
            *_non_negative("sessions", "duration_s", "events", *COUNTS, "units", "revenue", "products", "queries"),
            _in_partition("session_start"),
            _e("expect_column_pair_values_a_to_be_greater_than_b", "a session ends no earlier than it starts.",
               column_A="session_end", column_B="session_start", or_equal=True),
            _e("expect_column_values_to_be_between", "sessions last at most 12 hours (longer ones are bots, shared "
               "devices or broken session ids).", "warn", check_name="duration_plausible", column="duration_s",
               max_value=12 * 3600, mostly=0.999),
            _e("expect_column_values_to_not_be_null", "most sessions belong to a known user.", "warn",
               check_name="user_key_mostly_known", column="user_key", mostly=0.5),
        ]
    if table == "query_clicks":
        return [
            *_not_null("query_clicks", "session_id", "query_time", *COUNTS, "first_action_at"),
            *_non_negative("query_clicks", *COUNTS, "seconds_to_first_action"),
            _in_partition("query_time"),
            _e("expect_column_pair_values_a_to_be_greater_than_b", "actions follow their query.",
               column_A="first_action_at", column_B="query_time", or_equal=True),
        ]
    if table == "catalog_findings":
        return [
            _e("expect_column_values_to_be_in_set", "kind is miscategorised or duplicate.", column="kind",
               value_set=["miscategorised", "duplicate"]),
            _e("expect_column_values_to_be_in_set", "status is a review state.", column="status",
               value_set=["open", "confirmed", "rejected"]),
            *_not_null("catalog_findings", "kind", "evidence", "similarity"),
            _e("expect_column_values_to_be_between", "similarities are cosines.", column="similarity", min_value=-1,
               max_value=1.0001),
        ]
    if table == "embedding_cache":
        return [
            _e("expect_column_values_to_be_in_set", "one encoder model.", column="model",
               value_set=["sentence-transformers/all-MiniLM-L6-v2"]),
            _e("expect_column_values_to_match_regex", "content_hash is a SHA-256 hex digest.", column="content_hash",
               regex=r"^[0-9a-f]{64}$"),
        ]
    raise KeyError(table)


def build_suite(table: str) -> dict:
    schema = SCHEMAS[table]
    key = list(PRIMARY_KEYS[table])
    columns = list(schema)
    exps = [_e("expect_table_columns_to_match_ordered_list",
               f"The columns of integrated.{table}, in order (governance/integration/schemas.py): a change here "
               "breaks every reader.", column_list=columns)]
    exps += [_e("expect_column_values_to_be_of_type", f"{c} is stored as {dtype} (GX/pandas type {gx_type_name(dtype)}).",
                column=c, type_=gx_type_name(dtype)) for c, dtype in schema.items()
             if gx_type_name(dtype) != "object"]
    exps += _not_null(table, *key)
    if len(key) == 1:
        exps.append(_e("expect_column_values_to_be_unique", f"{key[0]} is the primary key of integrated.{table}.",
                       column=key[0]))
    else:
        exps.append(_e("expect_compound_columns_to_be_unique",
                       f"({', '.join(key)}) is the primary key of integrated.{table}.", column_list=key))
    exps += _specific(table)
    if "event_type" in schema:
        exps.append(_e("expect_column_values_to_be_in_set", "event types are the four of the contract.",
                       column="event_type", value_set=list(EVENT_TYPES)))
    exps.append(_e("expect_table_row_count_to_be_between",
                   "the table is not empty." if table not in ("catalog_findings",) else "findings may be empty.",
                   "error" if table not in ("catalog_findings", "query_clicks") else "warn",
                   min_value=1 if table != "catalog_findings" else 0, max_value=1_000_000_000))
    seen: dict[str, dict] = {}
    for e in exps:  # a name depends on the expectation only: a collision is a generator bug, not renumbered
        name = e["meta"].get("check_name") or derive_check_name(e["type"], e["kwargs"])
        if name in seen:
            raise ValueError(f"integrated.{table}: two expectations would both be named {name!r} "
                             f"({seen[name]['notes']!r} and {e['notes']!r}); give one a check_name")
        seen[name] = e
    return {
        "name": f"integrated.{table}",
        "id": None,
        "expectations": exps,
        "meta": {"table": f"integrated.{table}", "key": key, "description": DESCRIPTIONS[table],
                 "partitioned": table in DAILY_TABLES},
        "notes": f"Generated by governance/integration/suites.py from the declared schema of integrated.{table}.",
    }


def suite_path(directory: Path, table: str) -> Path:
    return Path(directory) / f"integrated.{table}.json"


def render(table: str) -> str:
    return json.dumps(build_suite(table), indent=2) + "\n"


def write_suites(directory: Path) -> list[Path]:
    paths = []
    for table in SCHEMAS:
        path = suite_path(directory, table)
        path.write_text(render(table))
        paths.append(path)
    return paths


if __name__ == "__main__":
    from governance.quality.runner import suites_dir

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else suites_dir()
    for p in write_suites(target):
        print(p)
