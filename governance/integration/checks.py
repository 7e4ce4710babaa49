"""Blocking checks of the integrated tables, computed from what is on disk.

Each function returns a ``CheckOutcome``: whether it holds, the figures behind it and a few
offending rows as examples. ``assets/integration.py`` turns them into Dagster asset checks
(blocking, ERROR severity) — the domain logic lives here, with no Dagster import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from governance.integration.config import COUNT_COLUMNS
from governance.integration.events import ANONYMOUS_TABLE
from governance.integration.identity import UserLookup, source_system
from governance.integration.schemas import PRIMARY_KEYS
from governance.storage import Lake

EXAMPLES = 5
LAYER = "integrated"


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    figures: dict = field(default_factory=dict)
    examples: pl.DataFrame | None = None
    description: str = ""


def _read(lake: Lake, table: str, partition: str | None) -> pl.DataFrame:
    return lake.read(LAYER, table, partition)


# ---------------------------------------------------------------------------------------------
# keys


def primary_key(frame: pl.DataFrame, table: str) -> CheckOutcome:
    """The declared primary key is never null and never repeated."""
    key = list(PRIMARY_KEYS[table])
    nulls = frame.filter(pl.any_horizontal([pl.col(c).is_null() for c in key]))
    dupes = frame.filter(pl.struct(key).is_duplicated()) if frame.height else frame
    ok = nulls.is_empty() and dupes.is_empty()
    examples = pl.concat([nulls.head(EXAMPLES), dupes.sort(key).head(EXAMPLES)]).select(key) if not ok else None
    return CheckOutcome(f"{table}_primary_key", ok,
                        {"rows": frame.height, "key": ", ".join(key), "null_keys": nulls.height,
                         "duplicate_rows": dupes.height,
                         "distinct_keys": frame.select(pl.struct(key).n_unique()).item() if frame.height else 0},
                        examples, f"({', '.join(key)}) is unique and not null")


# ---------------------------------------------------------------------------------------------
# referential integrity


def _orphans(frame: pl.DataFrame, column: str, valid: pl.Series) -> pl.DataFrame:
    return frame.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(valid.implode()))


def referential_integrity_daily(lake: Lake, table: str, day: str, users: UserLookup,
                                product_ids: pl.Series) -> CheckOutcome:
    """Every user_key and product_id of a daily table's partition exists.

    Users: in integrated.user_keys, or a behaviour-only user (a system without a registry) attested
    by the clean events/queries of that day. Products: in integrated.product_history.
    """
    frame = _read(lake, table, day)
    user_col_required = table == "interactions"
    valid_users = users.mapping["user_key"]
    behaviour = _behaviour_keys(lake, day, users)
    if behaviour is not None:
        valid_users = pl.concat([valid_users, behaviour])
    figures = {"rows": frame.height}
    examples = []
    ok = True
    if "user_key" in frame.columns:
        bad_users = _orphans(frame, "user_key", valid_users)
        null_users = frame.filter(pl.col("user_key").is_null()) if user_col_required else frame.head(0)
        figures.update({"orphan_user_rows": bad_users.height, "null_user_rows": null_users.height,
                        "anonymous_rows": frame.filter(pl.col("user_key").is_null()).height,
                        "distinct_users": frame["user_key"].n_unique()})
        ok &= bad_users.is_empty() and null_users.is_empty()
        examples.append(bad_users.head(EXAMPLES))
    if "product_id" in frame.columns:
        bad_products = _orphans(frame, "product_id", product_ids)
        null_products = frame.filter(pl.col("product_id").is_null())
        figures.update({"orphan_product_rows": bad_products.height, "null_product_rows": null_products.height,
                        "distinct_products": frame["product_id"].n_unique()})
        ok &= bad_products.is_empty() and null_products.is_empty()
        examples.append(bad_products.head(EXAMPLES))
    ex = pl.concat(examples, how="diagonal_relaxed") if examples else None
    return CheckOutcome(f"{table}_referential_integrity", ok, figures, ex if ex is not None and ex.height else None,
                        "every user_key and product_id exists (user_keys / product_history)")


def _behaviour_keys(lake: Lake, day: str, users: UserLookup) -> pl.Series | None:
    ids = []
    for table in ("events", "queries"):
        path = lake.part_path("clean", table, day)
        if path.exists():
            ids.append(pl.read_parquet(path, columns=["user_id"])["user_id"])
    if not ids:
        return None
    raw = pl.concat(ids).drop_nulls().unique().to_frame("user_id")
    raw = raw.filter(~source_system(pl.col("user_id")).is_in(users.registry_systems))
    if raw.is_empty():
        return None
    return users.resolve(raw)["user_key"].drop_nulls()


def referential_integrity_snapshot(lake: Lake, table: str, key_table: str, key: str) -> CheckOutcome:
    """Every key referenced by the daily tables exists in a snapshot (users or products)."""
    snapshot = lake.read(LAYER, key_table).select(key)
    valid = snapshot[key]
    figures = {f"{key_table}_rows": snapshot.height}
    examples = []
    ok = True
    for daily in ("interactions", "product_activity", "sessions", "query_clicks"):
        if not lake.partitions(LAYER, daily):
            continue
        cols = lake.scan(LAYER, daily).collect_schema().names()
        if key not in cols:
            continue
        refs = lake.scan(LAYER, daily).select(key, "date").filter(pl.col(key).is_not_null()).collect()
        bad = refs.filter(~pl.col(key).is_in(valid.implode()))
        figures[f"orphans_in_{daily}"] = bad.height
        ok &= bad.is_empty()
        if bad.height:
            examples.append(bad.head(EXAMPLES).with_columns(pl.lit(daily).alias("table")))
    return CheckOutcome(f"{table}_referenced_keys_exist", ok, figures,
                        pl.concat(examples) if examples else None,
                        f"every {key} in the daily integrated tables exists in integrated.{key_table}")


# ---------------------------------------------------------------------------------------------
# reconciliation with the clean layer


def _count(lake: Lake, layer: str, table: str, day: str | None, part: str = "data") -> int | None:
    path = lake.part_path(layer, table, day, part)
    if not path.exists():
        return None
    return pl.scan_parquet(path).select(pl.len()).collect().item()


def events_reconciliation(lake: Lake, day: str) -> CheckOutcome:
    """Nothing vanishes between layers: clean events of the day = events counted in interactions +
    anonymous events routed aside (integrated.anonymous_events) + rows quarantined here (each with a
    reason); product activity = interactions + anonymous events, and product activity's own count of
    anonymous events agrees with the routed rows."""
    clean = _count(lake, "clean", "events", day) or 0
    inter = lake.read(LAYER, "interactions", day)
    activity = lake.read(LAYER, "product_activity", day)
    anonymous = _count(lake, LAYER, ANONYMOUS_TABLE, day)
    anonymous_table_missing = anonymous is None
    anonymous = anonymous or 0
    qpath = lake.part_path("quarantine", "events", day, "integration")
    q = pl.read_parquet(qpath, columns=["rule", "reason", "key"]) if qpath.exists() else pl.DataFrame(
        schema={"rule": pl.String, "reason": pl.String, "key": pl.String})
    by_rule = dict(q.group_by("rule").len().sort("len", descending=True).iter_rows())
    counted = int(inter["events"].sum())
    in_activity = int(activity["events"].sum())
    anonymous_in_activity = int(activity["anonymous_events"].sum())
    missing_reason = q.filter(pl.col("reason").is_null() | (pl.col("reason") == "")).height
    diff = clean - counted - anonymous - q.height
    ok = (diff == 0 and in_activity == counted + anonymous and anonymous_in_activity == anonymous
          and missing_reason == 0 and not (anonymous_table_missing and anonymous_in_activity))
    return CheckOutcome("events_reconcile_with_clean", ok, {
        "clean_events": clean, "events_in_interactions": counted, "anonymous_events": anonymous,
        "quarantined_here": q.height, "difference": diff, "events_in_product_activity": in_activity,
        "anonymous_in_product_activity": anonymous_in_activity, "quarantined_without_reason": missing_reason,
        "quarantined_by_rule": by_rule,
    }, None, "clean events = interactions + anonymous events (routed aside) + quarantined (each with a reason)")


# ---------------------------------------------------------------------------------------------
# no negative or impossible aggregates


_NON_NEGATIVE = {
    "interactions": ["events", *COUNT_COLUMNS.values(), "units", "revenue", "weight"],
    "product_activity": ["events", *COUNT_COLUMNS.values(), "units", "revenue", "anonymous_events", "users",
                         "sessions", "purchase_sessions"],
    "sessions": ["events", *COUNT_COLUMNS.values(), "units", "revenue", "products", "queries", "duration_s"],
    "query_clicks": [*COUNT_COLUMNS.values(), "seconds_to_first_action"],
    "products": [*COUNT_COLUMNS.values(), "units_sold", "revenue", "sessions", "purchase_sessions", "review_count",
                 "labelled_reviews"],
    "users": ["events", *COUNT_COLUMNS.values(), "sessions", "orders", "units", "monetary", "review_count",
              "active_days", "recency_days"],
}


def _impossible(table: str) -> list[tuple[str, pl.Expr]]:
    counts = [pl.col(c) for c in COUNT_COLUMNS.values()]
    rules: list[tuple[str, pl.Expr]] = []
    if table in ("interactions", "product_activity", "sessions"):
        rules.append(("counts_do_not_add_up", pl.sum_horizontal(counts) != pl.col("events")))
        rules.append(("no_event", pl.col("events") < 1) if table != "sessions" else
                     ("empty_session", (pl.col("events") + pl.col("queries")) < 1))
        rules.append(("units_without_purchase", (pl.col("units") > 0) & (pl.col("purchases") == 0)))
        rules.append(("fewer_units_than_purchases", pl.col("units") < pl.col("purchases")))
    if table in ("interactions", "product_activity"):
        rules.append(("first_after_last", pl.col("first_event_at") > pl.col("last_event_at")))
        rules.append(("event_outside_day", pl.col("first_event_at").dt.date() != pl.col("date")))
    if table == "product_activity":
        rules.append(("more_purchase_sessions_than_sessions", pl.col("purchase_sessions") > pl.col("sessions")))
    if table == "sessions":
        rules.append(("end_before_start", pl.col("session_end") < pl.col("session_start")))
        rules.append(("converted_without_purchase", pl.col("converted") != (pl.col("purchases") > 0)))
    if table == "query_clicks":
        rules.append(("no_action", (pl.col("clicks") + pl.col("add_to_carts") + pl.col("purchases")) < 1))
    if table == "products":
        rules.append(("conversion_outside_0_1", ~pl.col("conversion_rate").is_between(0, 1)))
        rules.append(("share_outside_0_1", ~pl.col("positive_share").is_between(0, 1)
                      | ~pl.col("negative_share").is_between(0, 1)
                      | ((pl.col("positive_share") + pl.col("negative_share")) > 1 + 1e-9)))
        rules.append(("rating_outside_1_5", ~pl.col("mean_rating").is_between(1, 5)))
    if table == "users":
        rules.append(("orders_exceed_sessions", pl.col("orders") > pl.col("sessions")))
        rules.append(("sentiment_outside_-1_1", ~pl.col("mean_review_sentiment").is_between(-1, 1)))
        rules.append(("first_seen_after_last_seen", pl.col("first_seen_at") > pl.col("last_seen_at")))
    return rules


def _aggregates(frame: pl.DataFrame, table: str, extra: dict | None = None) -> CheckOutcome:
    figures: dict = {"rows": frame.height, **(extra or {})}
    bad_frames = []
    for c in _NON_NEGATIVE[table]:
        n = frame.filter(pl.col(c) < 0)
        figures[f"negative_{c}"] = n.height
        if n.height:
            bad_frames.append(n.head(EXAMPLES).with_columns(pl.lit(f"negative {c}").alias("problem")))
    for name, expr in _impossible(table):
        n = frame.filter(expr.fill_null(False))
        figures[name] = n.height
        if n.height:
            bad_frames.append(n.head(EXAMPLES).with_columns(pl.lit(name).alias("problem")))
    ok = not bad_frames
    key = list(PRIMARY_KEYS[table])
    examples = pl.concat([b.select("problem", *key) for b in bad_frames]) if bad_frames else None
    return CheckOutcome(f"{table}_aggregates_possible", ok, figures, examples,
                        "no negative counts or amounts, counts add up, no impossible values")


def aggregates_possible(lake: Lake, table: str, day: str | None = None) -> CheckOutcome:
    return _aggregates(_read(lake, table, day), table)


__all__ = ["CheckOutcome", "aggregates_possible", "events_reconciliation", "primary_key",
           "referential_integrity_daily", "referential_integrity_snapshot"]
