"""One quality pass over a materialized partition: validate its suite, profile it, detect anomalies, store all.

``run_quality`` is what the Dagster checks call (and what tests call without Dagster); the
``record_profile`` function is also public so a stage can record a profile itself.
"""

from __future__ import annotations

import importlib.resources
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from governance.quality.anomalies import ANOMALY_DESCRIPTIONS, DriftConfig, Finding, detect
from governance.quality.profile import TableProfile, profile_frame
from governance.quality.store import CheckRecord, QualityStore
from governance.quality.suites import Suite, load_suite
from governance.quality.validation import SuiteResult, validate
from governance.storage import Lake

QUARANTINE_PARTS = ("collection", "cleaning")


def suites_dir() -> Path:
    """The suite files shipped with the project: the ``expectations`` package's JSON, wherever it is installed."""
    root = importlib.resources.files("expectations")
    if not isinstance(root, Path):  # a zipped install: suites are read as files, with their paths in errors
        raise RuntimeError(f"the 'expectations' package must be installed as plain files, found {root!r}")
    return root


def suite_path(table: str, directory: str | Path | None = None) -> Path:
    return Path(directory or suites_dir()) / f"{table}.json"


def profile_config_for(table: str, directory: str | Path | None = None) -> dict[str, Any]:
    path = suite_path(table, directory)
    return load_suite(path).profile_config if path.exists() else {}


def _split(table: str) -> tuple[str, str]:
    layer, _, name = table.partition(".")
    return layer, name


def quarantine_counts(lake: Lake, table: str, partition: str | None) -> dict[str, dict[str, int]]:
    """stage → rule → rows quarantined for a table partition (its source's quarantine table)."""
    _, name = _split(table)
    out: dict[str, dict[str, int]] = {}
    for part in QUARANTINE_PARTS:
        path = lake.part_path("quarantine", name, partition, part)
        if not path.exists():
            continue
        q = pl.read_parquet(path, columns=["rule"])
        for rule, n in q.group_by("rule").len().iter_rows():
            out.setdefault(part, {})[rule] = int(n)
    return out


def load_references(lake: Lake, tables: list[str]) -> dict[str, pl.DataFrame]:
    """Snapshot reference tables ("clean.products") from the lake; missing ones are left out."""
    refs = {}
    for table in dict.fromkeys(tables):
        layer, name = _split(table)
        if lake.exists(layer, name):
            refs[table] = lake.read(layer, name)
    return refs


def reference_tables(suite: Suite) -> list[str]:
    tables = [r.table_name for r in suite.references]
    tables += [s["via"]["table"] for s in suite.profile_config.get("segments") or [] if s.get("via")]
    return list(dict.fromkeys(tables))


def record_profile(
    store: QualityStore,
    table: str,
    partition: str | None,
    frame: pl.DataFrame,
    quarantine_counts: Any = None,
    *,
    run_id: str | None = None,
    references: Mapping[str, pl.DataFrame] | None = None,
    config: Mapping[str, Any] | None = None,
) -> TableProfile:
    """Profile a materialized partition and store it (callable from any stage's asset).

    ``quarantine_counts``: ``{rule: rows}``, ``{stage: {rule: rows}}`` or a quarantine frame.
    ``config`` defaults to the table's suite ``meta.profile`` when a suite file exists.
    """
    if config is None:
        config = profile_config_for(table)
    profile = profile_frame(frame, table, partition, config, references, quarantine_counts)
    profile.run_id = run_id
    store.record_profile(profile, run_id=run_id)
    return profile


def expectation_records(result: SuiteResult, run_id: str | None) -> list[CheckRecord]:
    return [CheckRecord(
        table=result.table, partition=result.partition, check_name=r.check_name, kind="expectation",
        severity=r.severity, passed=r.success, expectation_type=r.expectation_type, column=r.column,
        observed_value=r.observed_value, element_count=r.element_count, unexpected_count=r.unexpected_count,
        unexpected_percent=r.unexpected_percent, examples=r.examples,
        details={**r.details, **({"exception": r.exception} if r.exception else {})},
        description=r.description, notes=r.notes, run_id=run_id, evaluated_at=result.validated_at,
    ) for r in result.results]


def finding_records(findings: Mapping[str, Finding], run_id: str | None, at: datetime) -> list[CheckRecord]:
    return [CheckRecord(
        table=f.table, partition=f.partition, check_name=f.check, kind="anomaly", severity=f.severity,
        passed=f.passed, observed_value=f.statistic, details={**f.details, "threshold": f.threshold},
        description=ANOMALY_DESCRIPTIONS.get(f.check), notes=f.explanation, run_id=run_id, evaluated_at=at,
    ) for f in findings.values()]


@dataclass
class QualityRun:
    suite_result: SuiteResult
    profile: TableProfile
    findings: dict[str, Finding]
    timings: dict[str, float] = field(default_factory=dict)


def run_quality(
    lake: Lake,
    store: QualityStore,
    suite: Suite,
    partition: str | None,
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    frame: pl.DataFrame | None = None,
    drift: DriftConfig | None = None,
) -> QualityRun:
    """Validate, profile, detect anomalies for one partition of ``suite.table`` and store everything."""
    t0 = time.perf_counter()
    if frame is None:
        frame = lake.read(suite.layer, suite.table_name, partition)
    references = load_references(lake, reference_tables(suite))
    t1 = time.perf_counter()
    result = validate(suite, frame, partition, references)
    t2 = time.perf_counter()
    profile = record_profile(store, suite.table, partition, frame, quarantine_counts(lake, suite.table, partition),
                             run_id=run_id, references=references, config=suite.profile_config)
    t3 = time.perf_counter()
    drift = drift or DriftConfig()
    history = store.profile_history(suite.table, before=partition, limit=drift.window) if partition else [
        p for p in store.profile_history(suite.table, limit=drift.window + 1) if p.computed_at < profile.computed_at]
    partitions = lake.partitions(suite.layer, suite.table_name)
    findings = detect(profile, history, now=now, newest_partition=max(partitions) if partitions else None, cfg=drift)
    at = datetime.now(UTC)
    store.record_checks([*expectation_records(result, run_id), *finding_records(findings, run_id, at)])
    t4 = time.perf_counter()
    return QualityRun(result, profile, findings, timings={
        "read_s": t1 - t0, "validate_s": t2 - t1, "profile_s": t3 - t2, "anomalies_and_store_s": t4 - t3,
        "total_s": t4 - t0})
