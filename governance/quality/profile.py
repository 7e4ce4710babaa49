"""Profiles of materialized partitions: what a table looked like, column by column, in one Polars pass.

A profile holds the row count; per column the null rate and distinct count; for numeric columns
min/max/mean/std, the 0th…100th percentiles in 5-point steps and a histogram on a fixed log grid
(what the PSI/KS drift tests compare later, without keeping the data); for categorical columns the top values
with counts; and the partition's quarantine counts by stage and rule.

Which columns are categorical/numeric/PII comes from the suite's ``meta.profile`` (falling back to
dtypes). PII columns (``meta.profile.pii`` plus the usual names) get null rate and distinct count
only — never values. ``segments`` profile a numeric column per group (e.g. ``price`` per top
category), optionally looking the group up in another table (events → products' category).
``nulls_by`` counts the nulls of every column that has any per value of a categorical column (e.g.
per ``event_type``: price is null on views by design, not on purchases); those profiles have kind
``nulls`` and segment ``nulls:<column>=<value>``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from governance.contracts import LINEAGE_COLUMNS
from governance.quality.validation import PII_COLUMNS

QUANTILES = tuple(round(q * 0.05, 2) for q in range(21))  # 0.00, 0.05, … 1.00
#: numeric histograms use one fixed, universal grid (symmetric log: bin = sign·⌊20·log10(1+|v|)⌋, about 12%
#: wide), so histograms of different partitions add up and compare bin by bin without knowing the range
BINS_PER_DECADE = 20
TOP_VALUES = 20
EXACT_DISTINCT_MAX_ROWS = 2_000_000
MIN_SEGMENT_ROWS = 30
#: ``nulls_by``: at most this many values of the grouping column (the most frequent) get null counts
NULL_SEGMENTS_MAX = 12
NULL_SEGMENT_PREFIX = "nulls:"


def quantile_label(q: float) -> str:
    return f"p{round(q * 100):02d}"


@dataclass
class ColumnProfile:
    column: str
    dtype: str
    kind: str  # numeric | categorical | boolean | temporal | identifier | text
    rows: int
    null_count: int
    segment: str = ""  # "" for the whole column, "category_l1=Books" for a segment
    distinct_count: int | None = None
    distinct_approx: bool = False
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None
    histogram: dict[str, int] | None = None  # bin (see BINS_PER_DECADE) → rows
    top_values: list[tuple[Any, int]] | None = None

    @property
    def null_rate(self) -> float:
        return self.null_count / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["null_rate"] = self.null_rate
        return d


@dataclass
class TableProfile:
    table: str
    partition: str | None
    row_count: int
    columns: list[ColumnProfile]
    schema: dict[str, str]
    quarantine: dict[str, dict[str, int]] = field(default_factory=dict)  # stage → rule → rows
    computed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    run_id: str | None = None

    def column(self, name: str, segment: str = "") -> ColumnProfile | None:
        for c in self.columns:
            if c.column == name and c.segment == segment:
                return c
        return None

    def quarantine_by_rule(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rules in self.quarantine.values():
            for rule, n in rules.items():
                out[rule] = out.get(rule, 0) + n
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def normalise_quarantine_counts(counts: Any) -> dict[str, dict[str, int]]:
    """Accept ``{rule: n}``, ``{(stage, rule): n}``, ``{stage: {rule: n}}`` or a quarantine frame."""
    if counts is None:
        return {}
    if isinstance(counts, pl.DataFrame):
        if counts.is_empty():
            return {}
        stage = pl.col("stage") if "stage" in counts.columns else pl.lit("")
        grouped = counts.group_by(stage.alias("stage"), "rule").len()
        out: dict[str, dict[str, int]] = {}
        for s, r, n in grouped.iter_rows():
            out.setdefault(s or "", {})[r] = int(n)
        return out
    out = {}
    for k, v in dict(counts).items():
        if isinstance(v, Mapping):
            for rule, n in v.items():
                out.setdefault(str(k), {})[str(rule)] = int(n)
        elif isinstance(k, tuple):
            out.setdefault(str(k[0]), {})[str(k[1])] = int(v)
        else:
            out.setdefault("", {})[str(k)] = int(v)
    return out


def _kind(name: str, dtype: pl.DataType, config: Mapping[str, Any], pii: set[str]) -> str:
    if name in pii:
        return "text"
    if name in (config.get("categorical") or []):
        return "boolean" if dtype == pl.Boolean else "categorical"
    if name in (config.get("numeric") or []):
        return "numeric"
    if name in LINEAGE_COLUMNS:
        return "temporal" if isinstance(dtype, pl.Datetime) else "identifier"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return "temporal"
    return "identifier"


def _quantiles(sorted_values: np.ndarray) -> dict[str, float] | None:
    if len(sorted_values) == 0:
        return None
    positions = np.array(QUANTILES) * (len(sorted_values) - 1)
    lo = np.floor(positions).astype(np.int64)
    hi = np.ceil(positions).astype(np.int64)
    vals = sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (positions - lo)
    return {quantile_label(q): float(v) for q, v in zip(QUANTILES, vals, strict=True)}


def histogram_bins(values: np.ndarray) -> np.ndarray:
    """The fixed-grid bin of each value (see BINS_PER_DECADE)."""
    return (np.sign(values) * np.floor(BINS_PER_DECADE * np.log10(1.0 + np.abs(values)))).astype(np.int64)


def _numeric(values: pl.Series) -> dict[str, Any]:
    values = values.cast(pl.Float64).fill_nan(None).drop_nulls()
    if values.is_empty():
        return {}
    arr = np.sort(values.to_numpy())
    bins, counts = np.unique(histogram_bins(arr), return_counts=True)
    return {"min": float(arr[0]), "max": float(arr[-1]), "mean": float(arr.mean()),
            "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "quantiles": _quantiles(arr),
            "histogram": {str(int(b)): int(c) for b, c in zip(bins, counts, strict=True)}}


def _scalar(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, float | int | bool | str) or v is None:
        return v
    return str(v)


def profile_frame(
    frame: pl.DataFrame,
    table: str,
    partition: str | None = None,
    config: Mapping[str, Any] | None = None,
    references: Mapping[str, pl.DataFrame] | None = None,
    quarantine_counts: Any = None,
) -> TableProfile:
    """Profile one partition (see module doc). ``config`` is the suite's ``meta.profile``."""
    started = time.perf_counter()
    config = dict(config or {})
    pii = set(PII_COLUMNS) | set(config.get("pii") or [])
    n = frame.height
    kinds = {name: _kind(name, dtype, config, pii) for name, dtype in frame.schema.items()}
    approx = n > EXACT_DISTINCT_MAX_ROWS

    # one parallel pass: nulls of every column; distinct counts (HyperLogLog above 2M rows); top values
    # of categorical columns (their distinct count is exact); true counts of booleans; time ranges
    exprs = []
    for name, kind in kinds.items():
        exprs.append(pl.col(name).null_count().alias(f"n\0{name}"))
        if kind == "categorical":
            exprs.append(pl.col(name).drop_nulls().value_counts(sort=True, name="count").implode().alias(f"top\0{name}"))
        elif kind == "boolean":
            exprs.append(pl.col(name).sum().alias(f"true\0{name}"))
        else:
            exprs.append((pl.col(name).approx_n_unique() if approx else pl.col(name).drop_nulls().n_unique())
                         .alias(f"d\0{name}"))
        if kind == "temporal":
            exprs += [pl.col(name).min().alias(f"lo\0{name}"), pl.col(name).max().alias(f"hi\0{name}")]
    stats = frame.select(exprs).row(0, named=True) if n else {}

    columns: list[ColumnProfile] = []
    for name, dtype in frame.schema.items():
        kind = kinds[name]
        nulls = int(stats.get(f"n\0{name}", 0) or 0)
        col = ColumnProfile(column=name, dtype=str(dtype), kind=kind, rows=n, null_count=nulls,
                            distinct_count=None if stats.get(f"d\0{name}") is None else int(stats[f"d\0{name}"]),
                            distinct_approx=approx and kind not in ("categorical", "boolean"))
        if not n:
            pass
        elif kind == "numeric":
            for k, v in _numeric(frame.get_column(name)).items():
                setattr(col, k, v)
        elif kind == "temporal":
            col.min, col.max = _scalar(stats.get(f"lo\0{name}")), _scalar(stats.get(f"hi\0{name}"))
        elif kind == "categorical":
            pairs = [(_scalar(d[name]), int(d["count"])) for d in (stats.get(f"top\0{name}") or [])]
            col.distinct_count = len(pairs)
            col.top_values = pairs[:TOP_VALUES]
        elif kind == "boolean":
            trues = int(stats.get(f"true\0{name}") or 0)
            pairs = sorted([(True, trues), (False, n - nulls - trues)], key=lambda kv: -kv[1])
            col.top_values = [(v, c) for v, c in pairs if c]
            col.distinct_count = len(col.top_values)
        columns.append(col)

    for seg in config.get("segments") or []:
        columns.extend(_segment_profiles(frame, seg, references or {}))
    with_nulls = [c.column for c in columns if not c.segment and c.null_count and c.column not in LINEAGE_COLUMNS
                  and not c.column.startswith("_")]
    for by in config.get("nulls_by") or []:
        columns.extend(_null_segments(frame, by, [c for c in with_nulls if c != by]))

    return TableProfile(
        table=table, partition=partition, row_count=n, columns=columns,
        schema={k: str(v) for k, v in frame.schema.items()},
        quarantine=normalise_quarantine_counts(quarantine_counts),
        duration_s=time.perf_counter() - started,
    )


def _segment_profiles(frame: pl.DataFrame, seg: Mapping[str, Any], references: Mapping[str, pl.DataFrame]
                      ) -> list[ColumnProfile]:
    column, by = seg["column"], seg["by"]
    if column not in frame.columns:
        return []
    data = frame.select(pl.col(column).cast(pl.Float64).fill_nan(None), *(
        [pl.col(seg["via"]["left_on"])] if seg.get("via") else [pl.col(by)])).drop_nulls(column)
    via = seg.get("via")
    if via:
        ref = references.get(via["table"])
        if ref is None or by not in ref.columns:
            return []
        if "is_current" in ref.columns:  # versioned snapshots: the current version of each key
            ref = ref.filter(pl.col("is_current"))
        lookup = ref.select(pl.col(via["right_on"]).alias(via["left_on"]), pl.col(by)).unique(via["left_on"])
        data = data.join(lookup, on=via["left_on"], how="left")
    out = []
    for (group,), part in data.group_by(by, maintain_order=False):
        if group is None or part.height < MIN_SEGMENT_ROWS:
            continue
        col = ColumnProfile(column=column, dtype="Float64", kind="numeric", rows=part.height, null_count=0,
                            segment=f"{by}={group}")
        for k, v in _numeric(part.get_column(column)).items():
            setattr(col, k, v)
        out.append(col)
    return sorted(out, key=lambda c: c.segment)


def _null_segments(frame: pl.DataFrame, by: str, columns: list[str]) -> list[ColumnProfile]:
    """Null counts of ``columns`` per value of ``by`` (one group-by pass; the most frequent values)."""
    if by not in frame.columns or not columns or frame.is_empty():
        return []
    nulls = [pl.col(c).null_count().alias(f"n\0{c}") for c in columns]
    counts = (frame.group_by(by).agg(pl.len().alias("\0rows"), *nulls)
              .filter(pl.col(by).is_not_null() & (pl.col("\0rows") >= MIN_SEGMENT_ROWS))
              .sort("\0rows", by, descending=[True, False]).head(NULL_SEGMENTS_MAX))
    out = []
    for row in counts.iter_rows(named=True):  # one row per group value (at most NULL_SEGMENTS_MAX)
        for c in columns:
            out.append(ColumnProfile(column=c, dtype=str(frame.schema[c]), kind="nulls", rows=int(row["\0rows"]),
                                     null_count=int(row[f"n\0{c}"]),
                                     segment=f"{NULL_SEGMENT_PREFIX}{by}={_scalar(row[by])}"))
    return out
