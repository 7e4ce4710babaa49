"""Anomalies and drift, computed from the profile history (never from the raw data again).

Five tests, each a ``warn`` check with a plain-language explanation:

- ``volume_anomaly`` — the row count against the trailing window of partitions, as a robust z-score
  (median and MAD, so one bad day in the window does not hide the next);
- ``freshness`` — the newest partition (or the snapshot's last profile) is older than allowed;
- ``null_rate_jump`` — a column's share of nulls rose well above its usual level;
- ``schema_change`` — columns added, removed or retyped since the previous partition;
- ``distribution_drift`` — against the pooled reference window: PSI over the top values of
  categorical columns, and for numeric columns (and segments, e.g. price per category) PSI over the
  reference's deciles plus the Kolmogorov–Smirnov distance, both on the stored fixed-grid histograms.
  Numeric drift needs both a material PSI and a KS distance above the sampling noise of its row
  counts, so a small segment's noise does not page anyone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from governance.quality.profile import QUANTILES, ColumnProfile, TableProfile, quantile_label

ANOMALY_CHECKS = ("volume_anomaly", "freshness", "null_rate_jump", "schema_change", "distribution_drift")
ANOMALY_DESCRIPTIONS = {
    "volume_anomaly": "Row count against the trailing window of partitions (robust z-score on median/MAD).",
    "freshness": "The newest partition (or snapshot) is recent enough.",
    "null_rate_jump": "No column's null rate jumped above its usual level.",
    "schema_change": "Columns and types are the same as in the previous partition.",
    "distribution_drift": "Categorical (PSI) and numeric (PSI + KS) distributions match the reference window.",
}


@dataclass(frozen=True)
class DriftConfig:
    window: int = 14  # partitions in the trailing/reference window
    min_history: int = 5  # fewer partitions than this: not enough history to judge
    volume_z: float = 3.5  # robust z-score beyond which volume is anomalous
    volume_min_change: float = 0.2  # … and the relative change must exceed this
    max_age_days: float = 2.0  # newest daily partition may be this old (days before today)
    snapshot_max_age_days: float = 7.0
    null_jump_abs: float = 0.05  # null rate must rise by at least 5 points…
    null_jump_ratio: float = 2.0  # … and to at least twice the usual rate
    psi_threshold: float = 0.2  # "significant shift" in the usual PSI reading
    ks_threshold: float = 0.1
    ks_alpha_c: float = 1.95  # KS critical coefficient (α ≈ 0.001)
    min_rows: int = 50  # columns/segments with fewer non-null rows are not tested for drift


@dataclass
class Finding:
    check: str
    table: str
    partition: str | None
    passed: bool
    explanation: str
    statistic: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    severity: str = "warn"


def day_count(n: int) -> str:
    """"1 day", "3 days": an age as people write it."""
    return f"{n} day" if abs(n) == 1 else f"{n} days"


def _median_mad(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    med = float(np.median(arr))
    return med, float(np.median(np.abs(arr - med)))


def volume(current: TableProfile, history: list[TableProfile], cfg: DriftConfig) -> Finding:
    window = [p.row_count for p in history[-cfg.window:]]
    base = dict(check="volume_anomaly", table=current.table, partition=current.partition)
    if len(window) < cfg.min_history:
        return Finding(**base, passed=True, explanation=f"{current.row_count:,} rows; not enough history to judge "
                       f"({len(window)} earlier partitions, {cfg.min_history} needed).",
                       details={"row_count": current.row_count, "history": len(window)})
    med, mad = _median_mad(window)
    x = current.row_count
    change = (x - med) / med if med else (math.inf if x else 0.0)
    scale = 1.4826 * mad if mad > 0 else max(med * 0.01, 1.0)  # MAD 0 (a steady table): 1% of the median
    z = (x - med) / scale
    anomalous = abs(z) > cfg.volume_z and abs(change) > cfg.volume_min_change
    direction = "fewer" if x < med else "more"
    explanation = (f"{x:,} rows is {abs(change):.0%} {direction} than the usual {med:,.0f} "
                   f"(median of the last {len(window)} partitions; robust z = {z:+.1f}, limit ±{cfg.volume_z}).")
    if not anomalous:
        explanation = f"{x:,} rows is within the usual range (median {med:,.0f} over {len(window)} partitions, " \
                      f"robust z = {z:+.1f})."
    return Finding(**base, passed=not anomalous, explanation=explanation, statistic=round(z, 3),
                   threshold=cfg.volume_z, details={"row_count": x, "median": med, "mad": mad,
                                                    "relative_change": round(change, 4), "window": len(window)})


def freshness(table: str, partition: str | None, newest_partition: str | None, newest_profile_at: datetime | None,
              now: datetime, cfg: DriftConfig) -> Finding:
    base = dict(check="freshness", table=table, partition=partition)
    if partition is not None and (now.astimezone(UTC).date() - date.fromisoformat(partition)).days > cfg.max_age_days \
            and (newest_partition is None or newest_partition <= partition):
        age = (now.astimezone(UTC).date() - date.fromisoformat(partition)).days
        return Finding(**base, passed=True, statistic=float(age), threshold=cfg.max_age_days,
                       explanation=f"Partition {partition} is {age} days old: a backfill, not a sign of staleness "
                                   "(freshness is judged on recent partitions and in the quality report).",
                       details={"backfill": True, "age_days": age})
    if newest_partition is not None:
        newest = date.fromisoformat(newest_partition)
        age = (now.astimezone(UTC).date() - newest).days
        stale = age > cfg.max_age_days
        explanation = (f"The newest partition is {newest_partition}, {day_count(age)} before today "
                       f"({now.date().isoformat()}); at most {cfg.max_age_days:g} allowed.")
        if stale:
            explanation = f"Stale: t{explanation[1:]}"
        return Finding(**base, passed=not stale, explanation=explanation, statistic=float(age),
                       threshold=cfg.max_age_days, details={"newest_partition": newest_partition, "age_days": age})
    if newest_profile_at is None:
        return Finding(**base, passed=True, explanation="No materialization recorded yet.")
    age_days = (now - newest_profile_at).total_seconds() / 86400
    stale = age_days > cfg.snapshot_max_age_days
    return Finding(**base, passed=not stale,
                   explanation=f"{'Stale: the' if stale else 'The'} snapshot was last profiled {age_days:.1f} days ago "
                               f"(at most {cfg.snapshot_max_age_days:g} allowed).",
                   statistic=round(age_days, 3), threshold=cfg.snapshot_max_age_days,
                   details={"last_profiled": newest_profile_at.isoformat()})


def null_rates(current: TableProfile, history: list[TableProfile], cfg: DriftConfig) -> Finding:
    base = dict(check="null_rate_jump", table=current.table, partition=current.partition)
    window = history[-cfg.window:]
    if len(window) < cfg.min_history:
        return Finding(**base, passed=True, explanation=f"Not enough history to judge null rates "
                       f"({len(window)} earlier partitions, {cfg.min_history} needed).")
    jumps = []
    for col in current.columns:
        if col.segment:
            continue
        past = [c.null_rate for p in window if (c := p.column(col.column)) is not None]
        if len(past) < cfg.min_history:
            continue
        usual = float(np.median(past))
        now_rate = col.null_rate
        if now_rate - usual >= cfg.null_jump_abs and now_rate >= cfg.null_jump_ratio * usual:
            jumps.append({"column": col.column, "null_rate": round(now_rate, 4), "usual": round(usual, 4)})
    if not jumps:
        return Finding(**base, passed=True, explanation="Null rates are at their usual levels.", statistic=0.0,
                       threshold=cfg.null_jump_abs)
    parts = [f"{j['column']}: {j['null_rate']:.1%} null (usually {j['usual']:.1%})" for j in jumps]
    return Finding(**base, passed=False, explanation="Null rate jumped — " + "; ".join(parts) + ".",
                   statistic=max(j["null_rate"] - j["usual"] for j in jumps), threshold=cfg.null_jump_abs,
                   details={"columns": jumps})


def schema(current: TableProfile, previous: TableProfile | None) -> Finding:
    base = dict(check="schema_change", table=current.table, partition=current.partition)
    if previous is None:
        return Finding(**base, passed=True, explanation="First profile of this table: nothing to compare with.")
    before, after = previous.schema, current.schema
    added = [c for c in after if c not in before]
    removed = [c for c in before if c not in after]
    retyped = [{"column": c, "was": before[c], "now": after[c]} for c in after if c in before and before[c] != after[c]]
    if not (added or removed or retyped):
        return Finding(**base, passed=True, explanation=f"Same {len(after)} columns and types as "
                       f"{previous.partition or 'the previous snapshot'}.")
    parts = []
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    if retyped:
        parts.append("retyped " + ", ".join(f"{r['column']} ({r['was']} → {r['now']})" for r in retyped))
    return Finding(**base, passed=False, explanation=f"Schema changed since {previous.partition or 'the previous snapshot'}: "
                   + "; ".join(parts) + ".", statistic=float(len(added) + len(removed) + len(retyped)),
                   details={"added": added, "removed": removed, "retyped": retyped})


# ----------------------------------------------------------------------------------------- drift

def psi(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), eps, None)
    a = np.clip(np.asarray(actual, dtype=float), eps, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def _pooled_quantiles(profiles: list[ColumnProfile]) -> dict[str, float]:
    """Reference percentiles of a window: the row-weighted average of each percentile (for display)."""
    weights = np.array([max(p.rows - p.null_count, 1) for p in profiles], dtype=float)
    return {quantile_label(q): float(np.average([p.quantiles[quantile_label(q)] for p in profiles], weights=weights))
            for q in QUANTILES}


def _median_from_histogram(hist: dict[int, float]) -> float | None:
    """A representative value of the bin holding the median (bins are ~12% wide)."""
    from governance.quality.profile import BINS_PER_DECADE

    total = sum(hist.values())
    if not total:
        return None
    acc = 0.0
    for b in sorted(hist):
        acc += hist[b]
        if acc >= total / 2:
            mid = abs(b) + 0.5
            return float(np.sign(b) * (10 ** (mid / BINS_PER_DECADE) - 1)) if b else 0.0
    return None


def numeric_drift(current: ColumnProfile, reference: list[ColumnProfile], cfg: DriftConfig) -> dict[str, Any] | None:
    """PSI over ≤10 groups of the pooled reference histogram (equal reference mass) and KS over the bins."""
    ref = [p for p in reference if p.histogram]
    if not current.histogram or not ref:
        return None
    cur = {int(b): float(c) for b, c in current.histogram.items()}
    pooled: dict[int, float] = {}
    for p in ref:
        for b, c in p.histogram.items():
            pooled[int(b)] = pooled.get(int(b), 0.0) + float(c)
    n, m = sum(cur.values()), sum(pooled.values())
    if n < cfg.min_rows or m < cfg.min_rows:
        return None
    bins = sorted(set(cur) | set(pooled))
    ref_share = np.array([pooled.get(b, 0.0) for b in bins]) / m
    cur_share = np.array([cur.get(b, 0.0) for b in bins]) / n
    # group adjacent bins into ~deciles of the reference, so sampling noise stays small
    group = np.minimum((np.cumsum(ref_share) - ref_share / 2) * 10, 9.999).astype(int)
    score = psi(np.bincount(group, ref_share, 10), np.bincount(group, cur_share, 10))
    ks = float(np.max(np.abs(np.cumsum(ref_share) - np.cumsum(cur_share))))
    ks_limit = max(cfg.ks_threshold, cfg.ks_alpha_c * math.sqrt((n + m) / (n * m)))
    drifted = score > cfg.psi_threshold and ks > ks_limit
    ref_q = _pooled_quantiles([p for p in ref if p.quantiles]) if all(p.quantiles for p in ref) else None
    ref_median = ref_q["p50"] if ref_q else _median_from_histogram(pooled)
    cur_median = (current.quantiles or {}).get("p50", _median_from_histogram(cur))
    change = (cur_median - ref_median) / ref_median if ref_median and cur_median is not None else None
    return {"column": current.column, "segment": current.segment, "kind": "numeric", "psi": round(score, 4),
            "ks": round(ks, 4), "ks_limit": round(ks_limit, 4), "rows": int(n), "drifted": drifted,
            "reference_median": ref_median, "median": cur_median,
            "median_change": None if change is None else round(change, 4)}


def categorical_drift(current: ColumnProfile, reference: list[ColumnProfile], cfg: DriftConfig) -> dict[str, Any] | None:
    ref = [p for p in reference if p.top_values]
    if not current.top_values and not ref:
        return None
    n = sum(c for _, c in current.top_values or [])
    if n < cfg.min_rows:
        return None
    ref_counts: dict[Any, float] = {}
    for p in ref:
        total = sum(c for _, c in p.top_values)
        for v, c in p.top_values:
            ref_counts[v] = ref_counts.get(v, 0.0) + c / total / len(ref)
    cur_total = n
    cur_counts = {v: c / cur_total for v, c in current.top_values or []}
    values = list(dict.fromkeys([*ref_counts, *cur_counts]))
    e = np.array([ref_counts.get(v, 0.0) for v in values])
    a = np.array([cur_counts.get(v, 0.0) for v in values])
    score = psi(e, a)
    # order the values by their share of the PSI, so a vanished or new value comes first
    contribution = (np.clip(a, 1e-4, None) - np.clip(e, 1e-4, None)) * np.log(np.clip(a, 1e-4, None)
                                                                               / np.clip(e, 1e-4, None))
    shifts = [{"value": v, "reference_share": round(float(x), 4), "share": round(float(y), 4)}
              for _, v, x, y in sorted(zip(contribution, values, e, a, strict=True), key=lambda t: -t[0])]
    return {"column": current.column, "segment": current.segment, "kind": "categorical", "psi": round(score, 4),
            "rows": n, "drifted": score > cfg.psi_threshold, "largest_shifts": shifts[:3]}


def _describe_drift(d: dict[str, Any]) -> str:
    where = d["column"] + (f" [{d['segment']}]" if d["segment"] else "")
    if d["kind"] == "categorical":
        s = d["largest_shifts"][0]
        if s["share"] == 0:
            what = f"'{s['value']}' vanished (was {s['reference_share']:.1%})"
        elif s["reference_share"] == 0:
            what = f"new value '{s['value']}' ({s['share']:.1%})"
        else:
            what = f"'{s['value']}' {s['reference_share']:.1%} → {s['share']:.1%}"
        return f"{where}: {what} (PSI {d['psi']:.2f})"
    change = d.get("median_change")
    shift = f"median {d['reference_median']:,.2f} → {d['median']:,.2f}" + (
        f" ({change:+.0%})" if change is not None else "")
    return f"{where}: {shift} (PSI {d['psi']:.2f}, KS {d['ks']:.2f})"


def drift(current: TableProfile, history: list[TableProfile], cfg: DriftConfig) -> Finding:
    base = dict(check="distribution_drift", table=current.table, partition=current.partition)
    window = history[-cfg.window:]
    if len(window) < cfg.min_history:
        return Finding(**base, passed=True, explanation=f"Not enough history for a reference window "
                       f"({len(window)} earlier partitions, {cfg.min_history} needed).")
    tested = []
    for col in current.columns:
        if col.kind not in ("numeric", "categorical", "boolean") or col.column.startswith("_"):
            continue
        ref = [c for p in window if (c := p.column(col.column, col.segment)) is not None]
        if col.kind == "numeric":
            result = numeric_drift(col, ref, cfg)
        else:
            result = categorical_drift(col, ref, cfg)
        if result is not None:
            tested.append(result)
    # a segment that vanished entirely (e.g. a category with no priced events today)
    drifted = [d for d in tested if d["drifted"]]
    worst = max((d["psi"] for d in tested), default=0.0)
    if not drifted:
        return Finding(**base, passed=True, statistic=worst, threshold=cfg.psi_threshold,
                       explanation=f"No drift in {len(tested)} distributions against the last {len(window)} partitions "
                                   f"(largest PSI {worst:.2f}).", details={"tested": len(tested), "drifted": []})
    drifted.sort(key=lambda d: -d["psi"])
    return Finding(**base, passed=False, statistic=drifted[0]["psi"], threshold=cfg.psi_threshold,
                   explanation="Distribution drift against the last "
                               f"{len(window)} partitions — " + "; ".join(_describe_drift(d) for d in drifted[:5])
                               + (f"; and {len(drifted) - 5} more" if len(drifted) > 5 else "") + ".",
                   details={"tested": len(tested), "drifted": drifted})


def detect(current: TableProfile, history: list[TableProfile], now: datetime | None = None,
           newest_partition: str | None = None, cfg: DriftConfig | None = None) -> dict[str, Finding]:
    """All anomaly checks for one partition's profile; ``history`` holds earlier partitions, oldest first."""
    cfg = cfg or DriftConfig()
    now = now or datetime.now(UTC)
    history = [p for p in history if (p.partition or "") < (current.partition or "") or
               (current.partition is None and p.computed_at < current.computed_at)]
    previous = history[-1] if history else None
    newest_at = max([p.computed_at for p in [*history, current]]) if current.partition is None else None
    return {
        "volume_anomaly": volume(current, history, cfg),
        "freshness": freshness(current.table, current.partition,
                               newest_partition or current.partition if current.partition else None,
                               newest_at, now, cfg),
        "null_rate_jump": null_rates(current, history, cfg),
        "schema_change": schema(current, previous),
        "distribution_drift": drift(current, history, cfg),
    }
