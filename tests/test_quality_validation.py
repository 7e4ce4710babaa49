"""Validation through our path (Polars → pandas → ephemeral GX context): failures really fail, and the
projection/two-pass optimisations give exactly GX's own whole-frame answers."""

from __future__ import annotations

import polars as pl
import pytest

from synthetic_data import quality_frames as S
from governance.quality.suites import load_suite
from governance.quality.validation import REDACTED, scrub, validate, validate_whole
from test_quality_support import SUITES, snapshots

DAY = "2026-10-07"


@pytest.fixture(scope="module")
def world():
    products, users = snapshots()
    events = S.events_frame(DAY, 3000, products, users)
    return products, users, events, {"clean.products": products, "clean.users": users}


@pytest.fixture(scope="module")
def events_suite():
    return load_suite(SUITES / "clean.events.json")


def by_name(result):
    return {r.check_name: r for r in result.results}


def test_clean_partition_passes_every_expectation(world, events_suite):
    *_, events, refs = world
    result = validate(events_suite, events, DAY, refs)
    failed = [(r.check_name, r.exception, r.observed_value) for r in result.results if not r.success]
    assert failed == []
    assert result.status == "passed" and result.row_count == events.height
    assert len(result.results) == len(events_suite.expectations)


def _break(events: pl.DataFrame) -> pl.DataFrame:
    i = pl.int_range(pl.len())
    return events.with_columns(
        pl.when(i < 4).then(pl.lit("bogus")).otherwise(pl.col("event_type")).alias("event_type"),
        pl.when((i >= 100) & (i < 160)).then(pl.lit("p999999")).otherwise(pl.col("item_id")).alias("item_id"),
        pl.when(i == 11).then(pl.col("event_id").first()).otherwise(pl.col("event_id")).alias("event_id"),
        pl.when(i == 12).then(None).otherwise(pl.col("session_id")).alias("session_id"),
        pl.when(i == 13).then(pl.lit(-5.0)).otherwise(pl.col("price")).alias("price"),
        pl.when(i == 14).then(pl.col("event_time") + pl.duration(days=3)).otherwise(pl.col("event_time"))
        .alias("event_time"),
    )


def test_failing_expectations_really_fail_through_our_path(world, events_suite):
    *_, events, refs = world
    result = validate(events_suite, _break(events), DAY, refs)
    r = by_name(result)
    assert result.status == "failed" and not result.success
    expected = {"event_type_in_set": 4, "item_id_in_products": 60, "event_id_unique": 2, "session_id_not_null": 1,
                "price_in_range": 1, "event_time_in_range": 1}
    for name, count in expected.items():
        assert not r[name].success, name
        assert r[name].unexpected_count == count, name
        assert r[name].severity == ("warn" if name == "item_id_in_products" else "error")
        assert r[name].examples, name  # example failing rows, identified by the key column
        assert all("event_id" in row for row in r[name].examples), name
    assert r["event_type_in_set"].unexpected_percent == pytest.approx(4 / events.height * 100)
    assert {row["event_type"] for row in r["event_type_in_set"].examples} == {"bogus"}
    assert r["item_id_in_products"].examples[0]["item_id"] == "p999999"  # the orphan value itself
    assert r["item_id_in_products"].unexpected_percent == pytest.approx(60 / events.height * 100)
    assert not r["event_types_all_present"].success and r["event_types_all_present"].severity == "warn"
    # everything else still passes
    others = [n for n, x in r.items() if not x.success and n not in expected and n != "event_types_all_present"]
    assert others == []


def test_aggregate_expectations_fail_with_observed_values(world, events_suite):
    products, users, _, refs = world
    shifted = S.events_frame(DAY, 3000, S.products_frame(300, price_factor={t: 40.0 for t in S.TAXONOMY}), users)
    r = by_name(validate(events_suite, shifted, DAY, {"clean.products": shifted.select(
        pl.col("item_id").alias("product_id")).unique(), "clean.users": users}))
    assert not r["price_mean"].success and r["price_mean"].observed_value > 500
    assert not r["price_quantiles"].success
    assert r["price_quantiles"].observed_value["quantiles"] == [0.05, 0.5, 0.95]


def test_projection_gives_gx_whole_frame_answers(world, events_suite):
    """Our optimisations (projection, non-null aggregates, two passes) change no verdict and no count."""
    *_, events, refs = world
    broken = _break(events)
    ours = by_name(validate(events_suite, broken, DAY, refs))
    whole = validate_whole(events_suite, broken, DAY, refs)
    assert len(whole.results) == len(ours)
    for item in whole.results:
        name = item.expectation_config.meta["check_name"]
        mine = ours[name]
        assert mine.success == item.success, name
        res = item.result or {}
        assert mine.unexpected_count == res.get("unexpected_count"), name
        if isinstance(res.get("observed_value"), float):
            assert mine.observed_value == pytest.approx(res["observed_value"]), name


def test_missing_reference_table_fails_only_its_expectations(world, events_suite):
    *_, events, refs = world
    r = by_name(validate(events_suite, events, DAY, {"clean.users": refs["clean.users"]}))
    assert not r["item_id_in_products"].success
    assert "clean.products is not available" in r["item_id_in_products"].exception
    assert r["user_id_in_users"].success and r["event_id_unique"].success


def test_schema_change_fails_the_schema_expectations(world, events_suite):
    *_, events, refs = world
    changed = events.drop("device").with_columns(pl.col("quantity").cast(pl.Float64))
    r = by_name(validate(events_suite, changed, DAY, refs))
    assert not r["columns"].success
    assert not r["quantity_type"].success and r["quantity_type"].observed_value == "float64"
    assert not r["device_in_set"].success and "missing" in r["device_in_set"].exception


def test_pii_never_reaches_examples():
    products, users = snapshots()
    suite = load_suite(SUITES / "clean.reviews.json")
    reviews = S.reviews_frame(DAY, 500, products, users).with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("mail me at jane.doe@example.com"))
        .otherwise(pl.col("text")).alias("text"))
    r = by_name(validate(suite, reviews, DAY, {"clean.products": products, "clean.users": users}))
    leak = r["text_no_email"]
    assert not leak.success and leak.unexpected_count == 3
    assert all(row["text"] == REDACTED for row in leak.examples)
    assert "example.com" not in repr(leak.as_dict())
    assert scrub("write to a.b@c.io or +44 20 7946 0958") == "write to ‹email› or ‹phone›"
    assert scrub("2026-10-07 and e2072800000005") == "2026-10-07 and e2072800000005"


@pytest.mark.parametrize("source", ["products", "users", "reviews", "queries"])
def test_other_clean_suites_pass_on_conforming_frames(source):
    products, users = snapshots()
    frames = {
        "products": products, "users": users,
        "reviews": S.reviews_frame(DAY, 800, products, users),
        "queries": S.queries_frame(DAY, 800, users),
    }
    suite = load_suite(SUITES / f"clean.{source}.json")
    result = validate(suite, frames[source], None if source in ("products", "users") else DAY,
                      {"clean.products": products, "clean.users": users})
    assert [(r.check_name, r.exception) for r in result.results if not r.success] == []


def test_uniqueness_on_hashes_is_exact_for_large_partitions(world, events_suite):
    """≥100k rows: uniqueness and nullness of strings are tested on surrogates first; results stay exact."""
    products, users, _, refs = world
    big = S.events_frame(DAY, 120_000, products, users)
    assert by_name(validate(events_suite, big, DAY, refs))["event_id_unique"].success
    i = pl.int_range(pl.len())
    dup = big.with_columns(pl.when(i.is_in([7, 70_000])).then(pl.lit("e-dup")).otherwise(pl.col("event_id"))
                           .alias("event_id"),
                           pl.when(i.is_in([5, 6, 99_999])).then(None).otherwise(pl.col("session_id"))
                           .alias("session_id"))
    ours = by_name(validate(events_suite, dup, DAY, refs))
    r = ours["event_id_unique"]
    assert not r.success and r.unexpected_count == 2
    assert {row["event_id"] for row in r.examples} == {"e-dup"}
    s = ours["session_id_not_null"]
    assert not s.success and s.unexpected_count == 3 and s.unexpected_percent == pytest.approx(3 / 120_000 * 100)
    assert {row["event_id"] for row in s.examples} == set(dup["event_id"].gather([5, 6, 99_999]).to_list())
    whole = {i.expectation_config.meta["check_name"]: i for i in validate_whole(events_suite, dup, DAY, refs).results}
    for name in ("event_id_unique", "session_id_not_null", "event_id_not_null"):
        assert whole[name].success == ours[name].success
        assert whole[name].result["unexpected_count"] == ours[name].unexpected_count


def test_result_summary_words_every_kind_of_result_once():
    from governance.quality.store import CheckRecord
    from governance.quality.validation import ExpectationResult, result_summary

    base = dict(check_name="c", expectation_type="t", column="x", severity="error", notes="n", description="d")
    rows = ExpectationResult(**base, success=False, element_count=2000, unexpected_count=1234, unexpected_percent=61.7)
    assert result_summary(rows) == "1,234 of 2,000 rows unexpected (61.7%)."
    sets = ExpectationResult(**base, success=False, details={"partial_missing_list": ["view"],
                                                             "partial_unexpected_counts": [{"value": "bogus", "count": 3}]})
    assert result_summary(sets) == 'Missing: ["view"]. Unexpected: ["bogus"].'
    assert result_summary(ExpectationResult(**base, success=True, observed_value=12.5)) == "Observed 12.5."
    assert result_summary(ExpectationResult(**base, success=False, exception="boom")) == "Could not evaluate: boom"
    stored = CheckRecord(table="clean.events", partition=None, check_name="c", kind="expectation", severity="error",
                         passed=False, element_count=10, unexpected_count=1, unexpected_percent=10.0)
    assert result_summary(stored) == "1 of 10 rows unexpected (10%)."
    failed_to_run = CheckRecord(table="clean.events", partition=None, check_name="c", kind="expectation",
                                severity="error", passed=False, details={"exception": "no such column"})
    assert result_summary(failed_to_run) == "Could not evaluate: no such column"
