"""Every check result of every stage in the quality store, and the one way failures are counted.

GX suites reach the store through ``runner.run_quality``; every other check (cleaning's
``rows_conserved``, integration's ``reconciles_with_clean``, ``aggregates_possible``,
``references_exist``, ``history_is_consistent``, the warning findings, …) reaches it through
:func:`record_check_result`, called by its Dagster check with the same table, partition and name
the check has in Dagster. Records of these checks have ``kind = "check"``.

**How failures are counted** (:func:`failure_counts`; the report, ``summary_text`` and the demo use
it): the *latest* stored result of each ``(table, partition, check)`` — every partition, every kind
(GX expectation, anomaly test, Python check) — counts once; it failed when that latest result did.
A check re-run on a partition replaces its earlier result there; a check that did not run (skipped
because a blocking check upstream failed) has no result and is not counted. ``error`` are the
blocking failures, ``warn`` every non-blocking one (anomaly and drift findings included; ``anomalies``
says how many of those they are), so ``error + warn`` is every failed check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from governance.quality.store import SNAPSHOT_KEY, CheckRecord, QualityStore
from governance.quality.validation import PII_COLUMNS, scrub

KIND_CHECK = "check"
KINDS = ("expectation", "anomaly", KIND_CHECK)
SEVERITIES = {"error": "error", "warn": "warn", "warning": "warn"}
EXAMPLES = 5


def _severity(severity: str) -> str:
    """'error' | 'warn' from what a caller has (Dagster's ``AssetCheckSeverity.ERROR.value`` is 'ERROR')."""
    value = getattr(severity, "value", severity)
    try:
        return SEVERITIES[str(value).lower()]
    except KeyError:
        raise ValueError(f"severity must be 'error' or 'warn', not {severity!r}") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | int | bool | str) or value is None:
        return value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def example_rows(examples: pl.DataFrame | Sequence[Mapping[str, Any]] | None, limit: int = EXAMPLES
                 ) -> list[dict[str, Any]] | None:
    """A few offending rows as plain JSON values, without personal-data columns or e-mail/phone shapes."""
    if examples is None:
        return None
    if isinstance(examples, pl.DataFrame):
        frame = examples.head(limit)
        rows = frame.drop([c for c in frame.columns if c in PII_COLUMNS]).to_dicts()
    else:
        rows = [{k: v for k, v in dict(r).items() if k not in PII_COLUMNS} for r in list(examples)[:limit]]
    rows = [scrub(_jsonable(r)) for r in rows if r]
    return rows or None


def record_check_result(
    store: QualityStore,
    table: str,
    partition: str | None,
    check_name: str,
    passed: bool,
    severity: str = "error",
    *,
    description: str | None = None,
    figures: Mapping[str, Any] | None = None,
    examples: pl.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    unexpected_count: int | None = None,
    element_count: int | None = None,
    notes: str | None = None,
    stage: str | None = None,
    run_id: str | None = None,
    evaluated_at: datetime | None = None,
) -> CheckRecord:
    """Store one evaluation of a (non-GX) check, so the report counts it like a GX result.

    ``table``: the checked asset as ``layer.table`` ("integrated.interactions": its Dagster asset key
    joined with "."); ``partition``: the daily key, None for a snapshot; ``check_name``: the Dagster
    check name (stable: the report keeps the latest result per table, partition and name);
    ``severity``: "error" (blocking) or "warn" (Dagster's ``AssetCheckSeverity`` is accepted too);
    ``figures``: the numbers behind the verdict (shown as the observed value); ``examples``: a few
    offending rows (a frame or dicts; PII columns dropped, at most 5 kept); ``unexpected_count`` /
    ``element_count``: "n of N rows" when the check counts rows; ``notes``: one sentence on what
    failed, in words (defaults to the description); ``stage``: the lifecycle stage that ran it.
    Returns the stored record.
    """
    if "." not in table:
        raise ValueError(f"table must be 'layer.table' (the asset key joined with '.'), not {table!r}")
    if not check_name:
        raise ValueError("check_name is required (the Dagster check's name)")
    if partition == SNAPSHOT_KEY:
        partition = None
    percent = None
    if unexpected_count is not None and element_count:
        percent = 100.0 * unexpected_count / element_count
    details = {"stage": stage} if stage else None
    record = CheckRecord(
        table=table, partition=partition, check_name=check_name, kind=KIND_CHECK, severity=_severity(severity),
        passed=bool(passed), observed_value=_jsonable(dict(figures)) if figures else None,
        element_count=None if element_count is None else int(element_count),
        unexpected_count=None if unexpected_count is None else int(unexpected_count), unexpected_percent=percent,
        examples=example_rows(examples), details=details, description=description,
        notes=notes if notes is not None else (None if passed else description), run_id=run_id,
        evaluated_at=evaluated_at,
    )
    store.record_checks([record])
    return record


# ------------------------------------------------------------------------------------ counting

@dataclass
class FailureCounts:
    """Failed checks by the rule in the module doc (latest result per table, partition and check)."""

    error: int = 0
    warn: int = 0
    anomalies: int = 0
    evaluated: int = 0
    by_table: dict[str, dict[str, int]] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.error + self.warn

    @property
    def passed(self) -> int:
        return self.evaluated - self.failed

    def line(self) -> str:
        return (f"{self.failed} failed checks ({self.error} blocking, {self.warn} warnings, of which "
                f"{self.anomalies} anomaly/drift) of {self.evaluated} evaluated")


def count_failures(records: Iterable[CheckRecord]) -> FailureCounts:
    """Count already-deduplicated records (``store.check_results()``'s latest per table, partition, check)."""
    out = FailureCounts()
    for r in records:
        out.evaluated += 1
        t = out.by_table.setdefault(r.table, {"error": 0, "warn": 0, "anomalies": 0, "evaluated": 0})
        t["evaluated"] += 1
        if r.passed:
            continue
        out.by_kind[r.kind] = out.by_kind.get(r.kind, 0) + 1
        if r.severity == "error":
            out.error += 1
            t["error"] += 1
        else:
            out.warn += 1
            t["warn"] += 1
            if r.kind == "anomaly":
                out.anomalies += 1
                t["anomalies"] += 1
    return out


def failure_counts(store: QualityStore) -> FailureCounts:
    """Failed checks in the store, counted as the module doc says (what the report shows)."""
    return count_failures(store.check_results())


__all__ = ["EXAMPLES", "KIND_CHECK", "FailureCounts", "count_failures", "example_rows", "failure_counts",
           "record_check_result"]
