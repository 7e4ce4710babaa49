"""Promotion gated by data quality, then by the metric.

A newly trained model is promoted only if

1. **every input partition passed its blocking checks**: the latest stored result of each
   ``(table, partition, check)`` of severity ``error`` on the partitions it was trained on passed
   (the quality store keeps every stage's check results; see ``governance.quality.results``), and
2. **it beats the current model on the same fixed evaluation** (the registry's
   ``promote_if_better``: same evaluation-set fingerprint, or the current model re-scored on it).

Otherwise the current model keeps serving and the decision says why: which check failed on which
partition, or which metric did not improve. The check results come in as a plain frame (columns
``table, partition, check_name, severity, passed`` and optionally ``evaluated_at``/``id``), so the
gate is testable without Dagster or a database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

CHECK_COLUMNS = {"table": pl.String, "partition": pl.String, "check_name": pl.String, "severity": pl.String,
                 "passed": pl.Boolean}


def checks_frame(records: Iterable) -> pl.DataFrame:
    """The quality store's ``CheckRecord``s (or dicts with the same fields) as the gate's frame."""
    rows = []
    for i, r in enumerate(records):
        get = r.get if isinstance(r, Mapping) else lambda k, r=r: getattr(r, k, None)
        rows.append({"table": get("table"), "partition": get("partition") or "all", "check_name": get("check_name"),
                     "severity": str(get("severity") or "").lower(), "passed": bool(get("passed")),
                     "evaluated_at": get("evaluated_at"), "id": i})
    if not rows:
        return pl.DataFrame(schema={**CHECK_COLUMNS, "evaluated_at": pl.Datetime("us", "UTC"), "id": pl.Int64})
    return pl.DataFrame(rows, schema_overrides={"evaluated_at": pl.Datetime("us", "UTC"), "id": pl.Int64})


@dataclass
class QualityVerdict:
    passed: bool
    failures: pl.DataFrame  # table, partition, check_name: the blocking checks that failed
    unchecked: list[str] = field(default_factory=list)  # "table/partition" without any stored result
    checked: int = 0

    @property
    def reason(self) -> str:
        if not self.failures.is_empty():
            shown = [f"{r['table']}[{r['partition']}]:{r['check_name']}" for r in self.failures.head(5).to_dicts()]
            more = f" and {self.failures.height - 5} more" if self.failures.height > 5 else ""
            return f"blocking check(s) failed on input partitions: {', '.join(shown)}{more}"
        if self.unchecked:
            more = f" and {len(self.unchecked) - 5} more" if len(self.unchecked) > 5 else ""
            return f"no check results for input partitions {', '.join(self.unchecked[:5])}{more}"
        return f"every input partition passed its blocking checks ({self.checked} results)"


def quality_verdict(checks: pl.DataFrame, inputs: Mapping[str, Iterable[str]], *,
                    require_results: bool | str = False) -> QualityVerdict:
    """Did every input partition pass its blocking checks?

    checks: one row per stored evaluation (latest wins per table, partition and check: by
    ``evaluated_at`` then ``id`` when present, else by row order); inputs: table → partitions
    ("all" for a snapshot). ``require_results``: True — a partition without any result fails the
    gate; ``"checked_tables"`` — only partitions of tables that have results elsewhere (a checked
    table's partition that was never checked was never vouched for); False — absence is no failure.
    """
    wanted = pl.DataFrame([{"table": t, "partition": p} for t, parts in inputs.items() for p in parts],
                          schema={"table": pl.String, "partition": pl.String})
    c = checks.with_columns(pl.col("partition").fill_null("all"), pl.col("severity").str.to_lowercase())
    if "id" not in c.columns:
        c = c.with_row_index("id")
    order = [col for col in ("evaluated_at", "id") if col in c.columns]
    latest = (c.join(wanted, on=["table", "partition"], how="semi").sort(order)
              .group_by("table", "partition", "check_name", maintain_order=True).last())
    failures = latest.filter((pl.col("severity") == "error") & ~pl.col("passed")).select(
        "table", "partition", "check_name").sort("table", "partition", "check_name")
    seen = latest.select("table", "partition").unique()
    missing = wanted.join(seen, on=["table", "partition"], how="anti").sort("table", "partition")
    if require_results == "checked_tables":
        missing = missing.filter(pl.col("table").is_in(seen["table"].unique().implode()))
    unchecked = [f"{t}/{p}" for t, p in missing.iter_rows()]
    ok = failures.is_empty() and not (require_results and unchecked)
    return QualityVerdict(ok, failures, unchecked, latest.height)


@dataclass
class GateDecision:
    promoted: bool
    task: str
    candidate: str
    current: str | None
    reason: str
    quality: QualityVerdict
    metric: str = ""
    candidate_score: float | None = None
    current_score: float | None = None

    def as_dict(self) -> dict:
        return {"task": self.task, "candidate": self.candidate, "current_before": self.current,
                "promoted": self.promoted, "reason": self.reason, "metric": self.metric,
                "candidate_score": self.candidate_score, "current_score": self.current_score,
                "quality_passed": self.quality.passed,
                "failed_checks": [f"{r['table']}[{r['partition']}]:{r['check_name']}"
                                  for r in self.quality.failures.to_dicts()]}


def promote(registry, task: str, candidate: str, verdict: QualityVerdict, metric: str = "ndcg@10", *,
            evaluate_current: Callable[[Path], float] | None = None, min_delta: float = 0.0) -> GateDecision:
    """Quality first (a model of failed data is never served), then the registry's metric comparison."""
    current = registry.current(task)
    if not verdict.passed:
        return GateDecision(False, task, candidate, current,
                            f"not promoted: {verdict.reason}; {current or 'no model'} keeps serving", verdict, metric)
    d = registry.promote_if_better(task, candidate, metric, evaluate_current=evaluate_current, min_delta=min_delta)
    return GateDecision(d.promoted, task, candidate, d.current, d.reason, verdict, metric, d.candidate_score,
                        d.current_score)


def stored_checks(store, tables: Iterable[str]) -> pl.DataFrame:
    """The latest stored result of every check of ``tables`` (``layer.table``) in the quality store."""
    records = [r for table in tables for r in store.check_results(table=table)]
    return checks_frame(records)
