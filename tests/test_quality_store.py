"""The quality store on SQLite (always) and PostgreSQL (when GOVERNANCE_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa

from synthetic_data import quality_frames as S
from governance.quality.profile import profile_frame
from governance.quality.results import KIND_CHECK, count_failures, failure_counts, record_check_result
from governance.quality.runner import record_profile
from governance.quality.store import MIGRATIONS, SCHEMA_VERSION, CheckRecord, QualityStore, migrate
from test_quality_support import BACKENDS, quality_store, snapshots

DAY = "2026-10-07"


@pytest.mark.parametrize("backend", BACKENDS)
def test_schema_is_created_by_ordered_migrations(backend, tmp_path):
    with quality_store(backend, tmp_path) as store:
        assert store.schema_version() == SCHEMA_VERSION == MIGRATIONS[-1][0]
        with store.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT version, description FROM schema_version ORDER BY version")).all()
        assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]
        assert migrate(store.engine) == []  # idempotent: nothing left to apply
        cols = {c["name"] for c in sa.inspect(store.engine).get_columns("column_profiles")}
        assert "histogram" in cols  # added by migration 4


def test_upgrade_from_an_older_schema_applies_only_the_missing_steps(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a database left at version 2 by an older release
        md = sa.MetaData()
        versions = sa.Table("schema_version", md, sa.Column("version", sa.Integer, primary_key=True),
                            sa.Column("description", sa.String(200)), sa.Column("applied_at", sa.DateTime(True)))
        md.create_all(conn)
        for version, description, step in MIGRATIONS[:2]:
            step(conn)
            conn.execute(versions.insert().values(version=version, description=description,
                                                  applied_at=datetime.now(UTC)))
    engine.dispose()
    store = QualityStore(url)
    assert store.schema_version() == SCHEMA_VERSION
    assert "histogram" in {c["name"] for c in sa.inspect(store.engine).get_columns("column_profiles")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_profiles_checks_and_history_round_trip(backend, tmp_path):
    products, users = snapshots()
    with quality_store(backend, tmp_path) as store:
        days = S.days("2026-10-01", 4)
        for i, day in enumerate(days):
            events = S.events_frame(day, 4000 + 100 * i, products, users)
            profile = record_profile(store, "clean.events", day, events, {"bot_session": i + 1},
                                     run_id=f"r{i}", references={"clean.products": products})
            assert profile.row_count == events.height
        # re-materialized partition: the newest profile wins
        record_profile(store, "clean.events", days[-1], S.events_frame(days[-1], 999, products, users),
                       {"cleaning": {"bot_session": 7, "unknown_item": 2}}, run_id="again")
        hist = store.profile_history("clean.events")
        assert [p.partition for p in hist] == days
        assert hist[-1].row_count == 999 and hist[-1].quarantine == {"cleaning": {"bot_session": 7, "unknown_item": 2}}
        assert [p.partition for p in store.profile_history("clean.events", before=days[2])] == days[:2]
        price = hist[0].column("price")
        assert price.kind == "numeric" and price.quantiles["p50"] > 0 and sum(price.histogram.values()) > 0
        assert 0.8 < price.null_rate < 0.95
        et = hist[0].column("event_type")
        assert et.kind == "categorical" and {v for v, _ in et.top_values} == set(S.EVENT_TYPES)
        assert et.distinct_count == 4
        seg = hist[0].column("price", "category_l1=Electronics")
        assert seg is not None and seg.rows > 0
        assert store.row_counts("clean.events")["row_count"].to_list()[-1] == 999
        nulls = store.null_rates("clean.events")
        assert set(nulls["column"]) >= {"price", "user_id"}
        q = store.quarantine_history("clean.events")
        assert q.filter(q["partition"] == days[-1])["rows"].sum() == 9

        now = datetime.now(UTC)
        store.record_checks([
            CheckRecord("clean.events", DAY, "event_id_unique", "expectation", "error", False,
                        expectation_type="expect_column_values_to_be_unique", column="event_id", unexpected_count=2,
                        unexpected_percent=0.1, examples=[{"event_id": "e1"}], run_id="r1", evaluated_at=now),
            CheckRecord("clean.events", DAY, "event_id_unique", "expectation", "error", True, unexpected_count=0,
                        run_id="r2", evaluated_at=now + timedelta(seconds=1)),
            CheckRecord("clean.products", None, "row_count", "expectation", "error", True, observed_value=300),
        ])
        latest = store.check_results(table="clean.events")
        assert len(latest) == 1 and latest[0].passed and latest[0].run_id == "r2"
        everything = store.check_results(latest_only=False)
        assert len(everything) == 3
        snap = store.check_results(table="clean.products")[0]
        assert snap.partition is None and snap.observed_value == 300


@pytest.mark.parametrize("backend", BACKENDS)
def test_incidents_open_update_and_resolve(backend, tmp_path):
    with quality_store(backend, tmp_path) as store:
        first = store.upsert_incident("clean.events", DAY, [{"check_name": "event_id_unique"}], "run-1")
        assert first["new"] and first["occurrences"] == 1 and first["status"] == "open"
        again = store.upsert_incident("clean.events", DAY, [{"check_name": "event_type_in_set"}], "run-2")
        assert not again["new"] and again["id"] == first["id"] and again["occurrences"] == 2
        assert {f["check_name"] for f in again["failing"]} == {"event_id_unique", "event_type_in_set"}
        assert again["first_seen"] == first["first_seen"] and again["first_run_id"] == "run-1"
        assert store.resolve_incidents("clean.events", DAY) == 1
        assert store.incidents(status="open") == []


def test_profile_of_ten_thousand_rows_is_fast_and_complete():
    products, users = snapshots()
    events = S.events_frame(DAY, 10_000, products, users)
    profile = profile_frame(events, "clean.events", DAY, {"categorical": ["event_type", "device"],
                                                          "numeric": ["price"], "pii": ["user_id"]})
    assert profile.row_count == 10_000
    assert {c.column for c in profile.columns} == set(events.columns)
    assert profile.column("user_id").kind == "text" and profile.column("user_id").top_values is None
    assert profile.column("event_time").min.startswith(DAY)


def test_stage_check_results_are_stored_and_counted_like_gx_results(tmp_path):
    with quality_store("sqlite", tmp_path) as store:
        rec = record_check_result(
            store, "integrated.interactions", DAY, "reconciles_with_clean", False, "ERROR",
            description="clean = interactions + anonymous + quarantined", stage="integration", run_id="r1",
            figures={"clean_events": 10, "difference": 2, "by_rule": {"unknown_user": 3}},
            examples=pl.DataFrame({"event_id": ["e1", "e2"], "email": ["a@example.com", None],
                                   "note": ["mail b@example.org", "ok"]}))
        assert rec.kind == KIND_CHECK and rec.severity == "error" and rec.notes == rec.description
        stored = store.check_results(table="integrated.interactions")[0]
        assert stored.observed_value == {"clean_events": 10, "difference": 2, "by_rule": {"unknown_user": 3}}
        assert stored.details == {"stage": "integration"} and stored.run_id == "r1" and not stored.passed
        assert [set(e) for e in stored.examples] == [{"event_id", "note"}] * 2  # PII columns dropped
        assert "b@example.org" not in str(stored.examples)  # e-mail shapes scrubbed
        record_check_result(store, "integrated.products", "all", "every_product_seen", False, "warning",
                            unexpected_count=3, element_count=300)
        seen = store.check_results(table="integrated.products")[0]
        assert seen.partition is None and seen.severity == "warn" and seen.unexpected_percent == pytest.approx(1.0)
        counts = failure_counts(store)
        assert (counts.error, counts.warn, counts.anomalies, counts.evaluated) == (1, 1, 0, 2)
        # a re-run on the same partition replaces the result; another partition is its own result
        record_check_result(store, "integrated.interactions", DAY, "reconciles_with_clean", True, "error")
        record_check_result(store, "integrated.interactions", "2026-10-08", "reconciles_with_clean", False, "error")
        counts = failure_counts(store)
        assert (counts.error, counts.warn, counts.failed, counts.evaluated) == (1, 1, 2, 3)
        assert counts.by_table["integrated.interactions"]["error"] == 1
        assert count_failures(store.check_results(latest_only=False)).error == 2  # the rule needs latest_only
        with pytest.raises(ValueError, match="layer.table"):
            record_check_result(store, "interactions", DAY, "x", True)
        with pytest.raises(ValueError, match="severity"):
            record_check_result(store, "clean.events", DAY, "x", True, "fatal")


def test_null_counts_per_group_are_profiled_and_stored(tmp_path):
    from governance.quality.profile import NULL_SEGMENT_PREFIX

    n = 400
    frame = pl.DataFrame({
        "event_type": ["view"] * (n // 2) + ["purchase"] * (n // 4) + ["add_to_cart"] * (n // 4 - 10) + ["x"] * 10,
        "price": [None] * (n // 2) + [9.5] * (n // 2 - 1) + [None],
        "event_id": [f"e{i}" for i in range(n)],
        "_source_file": [None] * n,
    })
    profile = profile_frame(frame, "clean.events", DAY, {"categorical": ["event_type"], "nulls_by": ["event_type"]})
    nulls = {c.segment: (c.rows, c.null_count) for c in profile.columns if c.kind == "nulls"}
    assert nulls == {f"{NULL_SEGMENT_PREFIX}event_type=view": (200, 200),
                     f"{NULL_SEGMENT_PREFIX}event_type=purchase": (100, 0),
                     f"{NULL_SEGMENT_PREFIX}event_type=add_to_cart": (90, 0)}  # "x": fewer than 30 rows
    assert {c.column for c in profile.columns if c.kind == "nulls"} == {"price"}  # no lineage, no column without nulls
    with quality_store("sqlite", tmp_path) as store:
        store.record_profile(profile)
        seg = store.segment_null_rates("clean.events")
        assert seg.height == 3 and seg.filter(pl.col("segment").str.ends_with("=view"))["null_rate"].item() == 1.0
        whole = store.null_rates("clean.events")
        assert whole.filter(pl.col("column") == "price")["null_rate"].item() == pytest.approx(201 / 400)
        assert whole.height == frame.width  # the per-group rows stay out of the whole-column rates
