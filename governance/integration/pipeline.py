"""The integration stage over the lake: read clean (and labelled) tables, write integrated ones.

Every function here is what one Dagster asset runs (``assets/integration.py`` adds only metadata),
and ``integrate`` runs them all in dependency order for the CLI, the tests and the benchmark:

    identity (user_keys) ─┐
    catalog (product_history, product_keys) ─┼─► per day: interactions + product_activity
                                              │           (+ anonymous_events routed aside, + quarantine)
                                              ├─► per day: sessions          (days D-1, D, D+1)
                                              ├─► per day: query_clicks      (days D, D+1)
                                              ├─► products (incremental over product_activity)
                                              ├─► users    (incremental over interactions, sessions)
                                              └─► catalog_findings (+ embedding_cache)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from governance.integration.catalog import CatalogResolution, current_products, resolve_catalog
from governance.integration.config import DEFAULT_CONFIG, IntegrationConfig
from governance.integration.events import (
    ANONYMOUS_TABLE,
    READ_COLUMNS,
    Admission,
    EventsReconciliation,
    admit_events,
    interactions,
    product_activity,
)
from governance.integration.identity import UserIdentity, UserLookup, behaviour_mapping, resolve_users, source_system
from governance.integration.incremental import BuildInfo
from governance.integration.profiles import build_product_features, build_user_profiles, review_facts
from governance.integration.schemas import conform_table
from governance.integration.sessions import (
    QUERY_COLUMNS,
    QueryClicksResult,
    SessionsResult,
    build_query_clicks,
    build_sessions,
    prepare_queries,
)
from governance.storage import Lake

LAYER = "integrated"


class MissingInputError(FileNotFoundError):
    """An input table of the integration stage has not been materialized."""


def _require(lake: Lake, layer: str, table: str, hint: str) -> None:
    if not lake.exists(layer, table):
        raise MissingInputError(f"{layer}.{table} has not been materialized ({hint})")


def shift_day(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def read_daily(lake: Lake, layer: str, table: str, day: str, columns: list[str] | None = None) -> pl.DataFrame | None:
    """One day of a daily table (only ``columns`` that exist), or None when it was never materialized."""
    path = lake.part_path(layer, table, day)
    if not path.exists():
        return None
    if columns is None:
        return pl.read_parquet(path)
    have = pl.read_parquet_schema(path)
    return pl.read_parquet(path, columns=[c for c in columns if c in have])


def read_all_daily(lake: Lake, layer: str, table: str, columns: list[str] | None = None) -> pl.DataFrame | None:
    """Every materialized partition of a daily table (None when there is none)."""
    if not lake.partitions(layer, table):
        return None
    lf = lake.scan(layer, table)
    if columns is not None:
        have = lf.collect_schema().names()
        lf = lf.select([c for c in columns if c in have])
    return lf.collect()


# ---------------------------------------------------------------------------------------------
# identity and catalog (snapshots)


@dataclass
class IdentityResult:
    identity: UserIdentity
    user_keys: pl.DataFrame
    behaviour_ids: int


def behaviour_user_ids(lake: Lake, registry_systems: list[str]) -> pl.Series:
    """Distinct user ids of systems without a registry, over every clean events/reviews/queries day."""
    frames = []
    for table in ("events", "reviews", "queries"):
        if lake.partitions("clean", table):
            frames.append(lake.scan("clean", table).select("user_id")
                          .filter(pl.col("user_id").is_not_null()
                                  & ~source_system(pl.col("user_id")).is_in(registry_systems)).unique())
    if not frames:
        return pl.Series("user_id", [], pl.String)
    return pl.concat(frames).unique().collect()["user_id"]


def build_identity(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG) -> IdentityResult:
    users = lake.read("clean", "users") if lake.exists("clean", "users") else pl.DataFrame()
    identity = resolve_users(users, config)
    behaviour = behaviour_mapping(behaviour_user_ids(lake, identity.registry_systems), identity.registry_systems,
                                  config)
    user_keys = pl.concat([identity.mapping, behaviour]).sort("source_user_id")
    return IdentityResult(identity, user_keys, behaviour.height)


def write_identity(lake: Lake, result: IdentityResult) -> None:
    lake.write(LAYER, "user_keys", result.user_keys)


def build_catalog(lake: Lake) -> CatalogResolution:
    _require(lake, "clean", "products", "materialize clean/products first")
    id_map = lake.read("clean", "product_id_map") if lake.exists("clean", "product_id_map") else None
    return resolve_catalog(lake.read("clean", "products"), id_map)


def write_catalog(lake: Lake, result: CatalogResolution) -> None:
    lake.write(LAYER, "product_history", result.history)
    lake.write(LAYER, "product_keys", result.mapping)


def load_lookups(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG) -> tuple[UserLookup, pl.DataFrame]:
    _require(lake, LAYER, "user_keys", "materialize integrated/user_keys first")
    _require(lake, LAYER, "product_keys", "materialize integrated/product_history first")
    return (UserLookup.from_mapping(lake.read(LAYER, "user_keys"), config),
            lake.read(LAYER, "product_keys").select("source_product_id", "product_key"))


# ---------------------------------------------------------------------------------------------
# daily tables


class DaySource:
    """Clean events and queries of single days, admitted once and kept for neighbouring days.

    A partition's builders need days D-1..D+1; the batch path (``integrate``) walks days in order
    and this cache makes it read and admit each day once.
    """

    def __init__(self, lake: Lake, users: UserLookup, product_keys: pl.DataFrame, *, run_id: str = "",
                 now: datetime | None = None, keep: int = 4):
        self.lake, self.users, self.product_keys = lake, users, product_keys
        self.run_id, self.now = run_id, now or datetime.now(UTC)
        self.keep = keep
        self._admissions: OrderedDict[str, Admission | None] = OrderedDict()
        self._queries: OrderedDict[str, pl.DataFrame] = OrderedDict()

    def _remember(self, cache: OrderedDict, day: str, value) -> None:
        cache[day] = value
        cache.move_to_end(day)
        while len(cache) > self.keep:
            cache.popitem(last=False)

    def admission(self, day: str) -> Admission | None:
        """The day's admission (with its quarantine rows), None when clean.events has no such day."""
        if day not in self._admissions:
            events = read_daily(self.lake, "clean", "events", day, READ_COLUMNS)
            value = None if events is None else admit_events(events, day, self.users, self.product_keys,
                                                             run_id=self.run_id, now=self.now)
            self._remember(self._admissions, day, value)
        return self._admissions[day]

    def admitted(self, day: str) -> pl.DataFrame | None:
        a = self.admission(day)
        return None if a is None else a.admitted

    def queries(self, day: str) -> pl.DataFrame | None:
        if day not in self._queries:
            q = read_daily(self.lake, "clean", "queries", day, QUERY_COLUMNS)
            self._remember(self._queries, day, None if q is None else prepare_queries(q, self.users))
        return self._queries[day]


@dataclass
class EventsDayResult:
    interactions: pl.DataFrame
    product_activity: pl.DataFrame
    quarantine: pl.DataFrame
    reconciliation: EventsReconciliation
    #: the day's admitted events without a user (integrated.anonymous_events)
    anonymous_events: pl.DataFrame | None = None


def integrate_events_day(lake: Lake, day: str, source: DaySource, config: IntegrationConfig = DEFAULT_CONFIG,
                         *, write: bool = True) -> EventsDayResult:
    admission = source.admission(day)
    if admission is None:
        raise MissingInputError(f"clean.events has no partition {day}; materialize clean/events for {day} first")
    inter = interactions(admission, config, today=source.now.date())
    activity = product_activity(admission)
    rec = EventsReconciliation(day, admission.clean_rows, int(inter["events"].sum()), int(activity["events"].sum()),
                               admission.by_rule, admission.anonymous.height)
    if write:
        # the day's tables, its anonymous events and its rejections are published together
        with lake.transaction():
            lake.write(LAYER, "interactions", inter, day)
            lake.write(LAYER, "product_activity", activity, day)
            lake.write(LAYER, ANONYMOUS_TABLE, admission.anonymous, day)
            lake.write("quarantine", "events", admission.quarantine, day, part="integration")
    return EventsDayResult(inter, activity, admission.quarantine, rec, admission.anonymous)


def integrate_sessions_day(lake: Lake, day: str, source: DaySource, *, write: bool = True) -> SessionsResult:
    admitted = source.admitted(day)
    queries = source.queries(day)
    if admitted is None and queries is None:
        raise MissingInputError(f"clean.events and clean.queries have no partition {day}")
    empty_events = pl.DataFrame(schema=_ADMITTED_SCHEMA)
    prev_day, next_day = shift_day(day, -1), shift_day(day, 1)
    earlier = [f["session_id"] for f in (source.admitted(prev_day), source.queries(prev_day)) if f is not None]
    result = build_sessions(
        day, admitted if admitted is not None else empty_events,
        queries if queries is not None else prepare_queries(None, source.users),
        earlier_session_ids=pl.concat(earlier) if earlier else None,
        next_admitted=source.admitted(next_day), next_queries=source.queries(next_day))
    if write:
        lake.write(LAYER, "sessions", result.sessions, day)
    return result


def integrate_query_clicks_day(lake: Lake, day: str, source: DaySource, *, write: bool = True) -> QueryClicksResult:
    queries = source.queries(day)
    if queries is None:
        raise MissingInputError(f"clean.queries has no partition {day}; materialize clean/queries for {day} first")
    admitted = source.admitted(day)
    next_day = shift_day(day, 1)
    result = build_query_clicks(day, queries, admitted if admitted is not None else pl.DataFrame(schema=_ADMITTED_SCHEMA),
                                next_queries=source.queries(next_day), next_admitted=source.admitted(next_day))
    if write:
        lake.write(LAYER, "query_clicks", result.query_clicks, day)
    return result


_ADMITTED_SCHEMA = {"event_id": pl.String, "session_id": pl.String, "user_key": pl.String, "product_id": pl.String,
                    "event_type": pl.String, "event_time": pl.Datetime("us", "UTC"), "price": pl.Float64,
                    "quantity": pl.Int64, "device": pl.String, "is_anonymous": pl.Boolean}


# ---------------------------------------------------------------------------------------------
# snapshots over the daily tables


def _reviews(lake: Lake, users: UserLookup, product_keys: pl.DataFrame):
    reviews = read_all_daily(lake, "clean", "reviews", ["review_id", "user_id", "product_id", "rating", "review_time"])
    labels = read_all_daily(lake, "labelled", "reviews", ["review_id", "sentiment", "p_positive", "p_negative"])
    return review_facts(reviews, labels, users, product_keys)


def integrate_identity(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG) -> IdentityResult:
    """``integrated.user_keys``, built and written (what its asset does)."""
    result = build_identity(lake, config)
    write_identity(lake, result)
    return result


def integrate_catalog(lake: Lake) -> CatalogResolution:
    """``integrated.product_history`` and ``product_keys``, built and written."""
    result = build_catalog(lake)
    write_catalog(lake, result)
    return result


def integrate_products(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG) -> tuple[pl.DataFrame, BuildInfo]:
    """``integrated.products``, recomputed incrementally and written."""
    frame, info = build_products_snapshot(lake, config)
    lake.write(LAYER, "products", frame)
    return frame, info


def integrate_users(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG) -> tuple[pl.DataFrame, BuildInfo]:
    """``integrated.users``, recomputed incrementally and written."""
    frame, info = build_users_snapshot(lake, config)
    lake.write(LAYER, "users", frame)
    return frame, info


def build_products_snapshot(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG, *, full: bool = False
                            ) -> tuple[pl.DataFrame, BuildInfo]:
    _require(lake, LAYER, "product_history", "materialize integrated/product_history first")
    users, product_keys = load_lookups(lake, config)
    current = current_products(lake.read(LAYER, "product_history"))
    return build_product_features(lake, current, _reviews(lake, users, product_keys), config, full=full)


def build_users_snapshot(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG, *, full: bool = False,
                         identity: UserIdentity | None = None) -> tuple[pl.DataFrame, BuildInfo]:
    users, product_keys = load_lookups(lake, config)
    if identity is None:
        identity = resolve_users(lake.read("clean", "users") if lake.exists("clean", "users") else pl.DataFrame(),
                                 config)
    attributes = identity.attributes
    user_keys = lake.read(LAYER, "user_keys")
    behaviour = user_keys.filter(pl.col("origin") == "behaviour")
    history = lake.read(LAYER, "product_history")
    return build_user_profiles(lake, attributes, behaviour, history, _reviews(lake, users, product_keys), config,
                               full=full)


# ---------------------------------------------------------------------------------------------
# model-backed catalog findings


def build_catalog_findings(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG, encoder=None, *,
                           write: bool = True, model_cache: Path | str | None = None):
    """Embed the current catalog (cache first), find miscategorised and duplicate products.

    ``model_cache`` (``Settings.model_cache``) holds the encoder's ONNX export between runs.
    """
    from governance.integration.findings import catalog_findings

    catalog = build_catalog(lake)
    cache = lake.read(LAYER, "embedding_cache") if lake.exists(LAYER, "embedding_cache") else None
    result = catalog_findings(catalog.current, cache, config, encoder, model_cache=model_cache)
    if write:
        lake.write(LAYER, "catalog_findings", result.findings)
        if result.embedded.embedded or cache is None:
            lake.write(LAYER, "embedding_cache", result.embedded.cache)
    return result


# ---------------------------------------------------------------------------------------------
# everything, in order


@dataclass
class IntegrationRun:
    days: list[str]
    reconciliation: list[EventsReconciliation] = field(default_factory=list)
    sessions_beyond_window: int = 0
    products: BuildInfo | None = None
    users: BuildInfo | None = None
    timings: dict[str, float] = field(default_factory=dict)


def integrate(lake: Lake, config: IntegrationConfig = DEFAULT_CONFIG, *, days: list[str] | None = None,
              snapshots: bool = True, dims: bool = True, full: bool = False, run_id: str = "batch",
              now: datetime | None = None) -> IntegrationRun:
    """Run the whole stage (without the model-backed findings) over ``days`` (all clean event days).

    ``dims=False`` reuses materialized identity and catalog tables; ``full=True`` recomputes the
    snapshots from every partition instead of incrementally.
    """
    import time

    t = time.perf_counter()
    timings: dict[str, float] = {}
    identity = None
    if dims:
        ident = build_identity(lake, config)
        write_identity(lake, ident)
        identity = ident.identity
        write_catalog(lake, build_catalog(lake))
        timings["dims"] = time.perf_counter() - t
    users, product_keys = load_lookups(lake, config)
    all_days = days if days is not None else sorted(set(lake.partitions("clean", "events"))
                                                    | set(lake.partitions("clean", "queries")))
    source = DaySource(lake, users, product_keys, run_id=run_id, now=now)
    run = IntegrationRun(days=all_days, timings=timings)
    t = time.perf_counter()
    event_days = set(lake.partitions("clean", "events"))
    query_days = set(lake.partitions("clean", "queries"))
    for day in all_days:
        if day in event_days:
            run.reconciliation.append(integrate_events_day(lake, day, source, config).reconciliation)
        if day in event_days or day in query_days:
            run.sessions_beyond_window += integrate_sessions_day(lake, day, source).events_beyond_window
        if day in query_days:
            integrate_query_clicks_day(lake, day, source)
    timings["daily"] = time.perf_counter() - t
    if snapshots:
        t = time.perf_counter()
        products, run.products = build_products_snapshot(lake, config, full=full)
        lake.write(LAYER, "products", products)
        timings["products"] = time.perf_counter() - t
        t = time.perf_counter()
        users_frame, run.users = build_users_snapshot(lake, config, full=full, identity=identity)
        lake.write(LAYER, "users", users_frame)
        timings["users"] = time.perf_counter() - t
    return run


__all__ = ["DaySource", "EventsDayResult", "IdentityResult", "IntegrationRun", "MissingInputError", "build_catalog",
           "build_catalog_findings",
           "build_identity", "build_products_snapshot", "build_users_snapshot", "conform_table", "integrate",
           "integrate_catalog", "integrate_identity", "integrate_products", "integrate_users",
           "integrate_events_day", "integrate_query_clicks_day", "integrate_sessions_day", "load_lookups",
           "read_all_daily", "read_daily", "shift_day", "write_catalog", "write_identity"]
