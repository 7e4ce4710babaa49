"""Profiles and product features recomputed incrementally from the changed days equal a full recompute."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from governance.integration.pipeline import (
    DaySource,
    build_catalog,
    build_products_snapshot,
    build_users_snapshot,
    integrate,
    integrate_events_day,
    integrate_query_clicks_day,
    integrate_sessions_day,
    load_lookups,
    shift_day,
    write_catalog,
)
from synthetic_data.integration_lake import write_synthetic_clean
from governance.storage import Lake

NOW = datetime(2026, 10, 20, tzinfo=UTC)


def _rebuild_days(lake: Lake, days: list[str]) -> None:
    """What Dagster does when clean days change: rerun the daily assets of those days (and the
    neighbouring days whose sessions read them)."""
    users, product_keys = load_lookups(lake)
    source = DaySource(lake, users, product_keys, now=NOW)
    affected = sorted({d for day in days for d in (shift_day(day, -1), day, shift_day(day, 1))}
                      & set(lake.partitions("clean", "events")))
    for day in affected:
        if day in days:
            integrate_events_day(lake, day, source)
        integrate_sessions_day(lake, day, source)
        if day in lake.partitions("clean", "queries"):
            integrate_query_clicks_day(lake, day, source)


def _both(lake: Lake):
    inc_products, p_info = build_products_snapshot(lake)
    inc_users, u_info = build_users_snapshot(lake)
    full_products, _ = build_products_snapshot(lake, full=True)
    full_users, _ = build_users_snapshot(lake, full=True)
    return (inc_products, full_products, p_info), (inc_users, full_users, u_info)


@pytest.fixture
def lake(tmp_path) -> Lake:
    lake = Lake.at(tmp_path / "lake")
    write_synthetic_clean(lake, 30_000, days=5, seed=11)
    integrate(lake, now=NOW)
    return lake


def test_unchanged_inputs_reuse_the_snapshot(lake):
    (inc_p, full_p, p_info), (inc_u, full_u, u_info) = _both(lake)
    assert p_info.mode == "unchanged" and u_info.mode == "unchanged"
    assert_frame_equal(inc_p, full_p)
    assert_frame_equal(inc_u, full_u)


def test_changed_day_incremental_equals_full(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    write_synthetic_clean(lake, 30_000, days=5, seed=11)
    days = lake.partitions("clean", "events")
    day = days[2]
    # "loners": users active on `day` only, so nothing but the old index can tell that they vanished
    loners = lake.read("clean", "events", day)["user_id"].drop_nulls().unique().sort().head(5)
    for other in days:
        if other != day:
            ev = lake.read("clean", "events", other)
            lake.write("clean", "events", ev.filter(~pl.col("user_id").is_in(loners.implode())
                                                    | pl.col("user_id").is_null()), other)
    integrate(lake, now=NOW)

    events = lake.read("clean", "events", day)
    kept = events.filter(~pl.col("user_id").is_in(loners.implode()) | pl.col("user_id").is_null())
    # and a burst of purchases of one product by one user appears
    extra = kept.filter(pl.col("event_type") == "purchase").head(1)
    extra = pl.concat([extra] * 3).with_columns(pl.format("x{}", pl.int_range(pl.len())).alias("event_id"))
    lake.write("clean", "events", pl.concat([kept, extra]), day)
    _rebuild_days(lake, [day])

    (inc_p, full_p, p_info), (inc_u, full_u, u_info) = _both(lake)
    assert p_info.mode == "incremental" and u_info.mode == "incremental"
    assert 0 < u_info.affected_keys < u_info.total_keys
    assert set(u_info.changed_days["interactions"]) == {day}
    assert_frame_equal(inc_p, full_p)
    assert_frame_equal(inc_u, full_u)
    assert (full_u.filter(pl.col("origin") == "registry")["events"] == 0).sum() >= len(loners)


def test_new_and_removed_days_incremental_equals_full(lake):
    days = lake.partitions("clean", "events")
    # a day is withdrawn (its integrated partitions deleted) and the next run sees it gone
    for table in ("interactions", "product_activity", "sessions", "query_clicks"):
        path = lake.part_path("integrated", table, days[0])
        path.unlink(missing_ok=True)
    (inc_p, full_p, p_info), (inc_u, full_u, u_info) = _both(lake)
    assert u_info.mode == "incremental" and days[0] in u_info.changed_days["interactions"]
    assert_frame_equal(inc_p, full_p)
    assert_frame_equal(inc_u, full_u)


def test_category_change_reaches_top_categories_incrementally(lake):
    products = lake.read("clean", "products")
    top = (lake.scan("integrated", "interactions").group_by("product_id").agg(pl.col("weight").sum())
           .sort("weight", descending=True).head(1).collect()["product_id"].item())
    current = products.filter(pl.col("product_id") == top).sort("updated_at").tail(1)
    recategorised = current.with_columns(
        pl.lit("Garden > Tools > Spades").alias("category_path"), pl.lit("Garden").alias("category_l1"),
        pl.lit("Tools").alias("category_l2"), pl.lit("Spades").alias("category_l3"),
        pl.lit(datetime(2026, 10, 4, tzinfo=UTC)).alias("updated_at"))
    lake.write("clean", "products", pl.concat([products, recategorised]))
    write_catalog(lake, build_catalog(lake))
    (inc_p, full_p, _), (inc_u, full_u, u_info) = _both(lake)
    assert u_info.mode == "incremental" and u_info.affected_keys > 0
    assert inc_u["top_categories"].str.contains("Tools").any()
    assert_frame_equal(inc_p, full_p)
    assert_frame_equal(inc_u, full_u)


def test_config_change_forces_a_full_recompute(lake):
    from governance.integration.config import IntegrationConfig

    frame, info = build_users_snapshot(lake, IntegrationConfig(weights={"view": 0.0}))
    assert info.mode == "full" and info.reason == "integration config changed"
