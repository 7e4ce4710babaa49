"""Anomalies and drift from the profile history: each injected fault is found, an ordinary day raises nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from synthetic_data import quality_frames as S
from governance.quality.anomalies import ANOMALY_CHECKS, DriftConfig, detect, psi
from governance.quality.profile import profile_frame
from governance.quality.runner import quarantine_counts, record_profile, run_quality
from governance.quality.suites import load_suite
from test_quality_support import SUITES, lake_with_snapshots, quality_store, write_days

HISTORY = S.days("2026-10-01", 14)
NOW = datetime(2026, 10, 16, 6, tzinfo=UTC)  # the morning after the last checked day
DRIFTS = {
    "price_shift": S.Drift(price_factor={"Electronics": 1.5}),
    "vanished_event_type": S.Drift(drop_event_types=("add_to_cart",)),
    "halved_volume": S.Drift(volume_factor=0.5),
    "null_jump": S.Drift(null_device_rate=0.25),
    "none": None,
}
DAY = "2026-10-15"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """14 ordinary days (±7% volume) profiled into a store, as the checks record them."""
    tmp = tmp_path_factory.mktemp("drift")
    lake, products, users = lake_with_snapshots(tmp)
    write_days(lake, products, users, HISTORY, rows=6000)
    suite = load_suite(SUITES / "clean.events.json")
    with quality_store("sqlite", tmp) as store:
        for day in HISTORY:
            record_profile(store, "clean.events", day, lake.read("clean", "events", day),
                           quarantine_counts(lake, "clean.events", day), run_id=f"hist-{day}",
                           references={"clean.products": products}, config=suite.profile_config)
        yield store, suite, products, users


def _findings(history, drift):
    store, suite, products, users = history
    frame = S.events_frame(DAY, 6000, products, users, drift=drift)
    current = profile_frame(frame, "clean.events", DAY, suite.profile_config, {"clean.products": products})
    return detect(current, store.profile_history("clean.events", before=DAY), now=NOW, newest_partition=DAY)


@pytest.mark.parametrize(("case", "check", "words"), [
    ("price_shift", "distribution_drift", ["price [category_l1=Electronics]", "median"]),
    ("vanished_event_type", "distribution_drift", ["event_type", "'add_to_cart' vanished"]),
    ("halved_volume", "volume_anomaly", ["fewer than the usual", "robust z"]),
    ("null_jump", "null_rate_jump", ["device", "null (usually 0.0%)"]),
])
def test_each_injected_drift_is_detected_with_an_explanation(history, case, check, words):
    findings = _findings(history, DRIFTS[case])
    assert not findings[check].passed, findings[check].explanation
    for w in words:
        assert w in findings[check].explanation
    assert findings[check].severity == "warn"
    # and it is the only thing that fires (no collateral alarms)
    others = {k for k, f in findings.items() if not f.passed} - {check}
    if case == "vanished_event_type":
        others -= {"volume_anomaly"}  # never happens here, but a vanished type may legitimately shrink volume
    assert others == set(), {k: findings[k].explanation for k in others}


def test_an_ordinary_day_raises_nothing(history):
    findings = _findings(history, None)
    assert set(findings) == set(ANOMALY_CHECKS)
    assert {k: f.explanation for k, f in findings.items() if not f.passed} == {}
    assert "No drift in" in findings["distribution_drift"].explanation


def test_schema_change_and_freshness(history):
    store, suite, products, users = history
    frame = S.events_frame(DAY, 6000, products, users).drop("device").with_columns(pl.lit(1).alias("coupon"))
    current = profile_frame(frame, "clean.events", DAY, suite.profile_config)
    history_profiles = store.profile_history("clean.events", before=DAY)
    f = detect(current, history_profiles, now=NOW, newest_partition=DAY)
    assert not f["schema_change"].passed
    assert "added coupon" in f["schema_change"].explanation and "removed device" in f["schema_change"].explanation
    # checking an older partition ten days later, when the newest partition is still the 15th: stale
    older = profile_frame(S.events_frame("2026-10-12", 6000, products, users), "clean.events", "2026-10-12",
                          suite.profile_config)
    late = detect(older, store.profile_history("clean.events", before="2026-10-12"),
                  now=datetime(2026, 10, 25, tzinfo=UTC), newest_partition=DAY)
    assert not late["freshness"].passed and "10 days before today" in late["freshness"].explanation
    # re-checking the newest partition late (a backfill in order) is not called stale by the check itself
    backfill = detect(current, history_profiles, now=datetime(2026, 10, 25, tzinfo=UTC), newest_partition=DAY)
    assert backfill["freshness"].passed and "backfill" in backfill["freshness"].explanation


def test_not_enough_history_is_not_an_alarm(history):
    store, suite, products, users = history
    current = profile_frame(S.events_frame(DAY, 3000, products, users, drift=DRIFTS["halved_volume"]),
                            "clean.events", DAY, suite.profile_config)
    f = detect(current, store.profile_history("clean.events", before="2026-10-04"), now=NOW, newest_partition=DAY,
               cfg=DriftConfig(min_history=5))
    assert all(x.passed for x in f.values())
    assert "not enough history" in f["volume_anomaly"].explanation


def test_psi_basics():
    assert psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    assert psi([0.7, 0.2, 0.1], [0.1, 0.2, 0.7]) > 1.0


@pytest.mark.slow
def test_drift_end_to_end_through_run_quality(tmp_path):
    """The whole pass (validate + profile + detect + store) over generated days with the faults injected."""
    lake, products, users = lake_with_snapshots(tmp_path)
    days = S.days("2026-10-01", 18)
    injected = {days[14]: DRIFTS["price_shift"], days[15]: DRIFTS["vanished_event_type"],
                days[16]: DRIFTS["halved_volume"]}
    write_days(lake, products, users, days, rows=5000, drifts=injected)
    suite = load_suite(SUITES / "clean.events.json")
    with quality_store("sqlite", tmp_path) as store:
        fired = {}
        for day in days:
            run = run_quality(lake, store, suite, day, run_id=day, now=datetime(2026, 10, 19, 6, tzinfo=UTC))
            fired[day] = {k for k, f in run.findings.items() if not f.passed}
        assert fired[days[14]] == {"distribution_drift"}
        assert fired[days[15]] == {"distribution_drift"}
        assert fired[days[16]] == {"volume_anomaly"}
        assert fired[days[17]] == set()  # the undrifted day after
        assert all(fired[d] <= {"freshness"} for d in days[:14])
        stored = store.check_results(table="clean.events", partition=days[16], kind="anomaly")
        assert {r.check_name for r in stored if not r.passed} == {"volume_anomaly"}
