"""Small vectorised helpers shared by the generator modules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

US = 1_000_000  # microseconds per second
DAY_US = 86_400 * US
TS = pl.Datetime("us", "UTC")


def epoch_us(t: dt.datetime) -> int:
    return int(t.timestamp()) * US


def to_ts(us: np.ndarray | pl.Series, name: str = "ts") -> pl.Series:
    """int64 microseconds since the epoch (nulls allowed) → Datetime(us, UTC)."""
    s = us if isinstance(us, pl.Series) else pl.Series(name, us, dtype=pl.Int64)
    return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(name)


def pick(strings: Sequence[str], idx: np.ndarray, name: str = "s") -> pl.Series:
    """`strings[idx]` as a polars String Series (gather, no Python loop)."""
    return pl.Series(name, list(strings), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))


def render(templates: Sequence[str] | pl.Series, idx: np.ndarray | None = None, **values: pl.Series) -> pl.Series:
    """Fill "{name}" placeholders of per-row templates with per-row values."""
    t = templates if isinstance(templates, pl.Series) else pick(templates, idx)
    frame = pl.DataFrame({"_t": t, **{k: v.alias(k) for k, v in values.items()}})
    expr = pl.col("_t")
    for k in values:
        expr = expr.str.replace_all("{" + k + "}", pl.col(k), literal=True)
    return frame.select(expr).to_series().alias("text")


def uniform_below(rng: np.random.Generator, n: np.ndarray) -> np.ndarray:
    """Per row, a uniform integer in [0, n[row])."""
    n = np.asarray(n, dtype=np.int64)
    return np.minimum((rng.random(n.shape[0]) * n).astype(np.int64), np.maximum(n - 1, 0))


class GroupSampler:
    """Weighted sampling of members inside groups, vectorised over many draws.

    Members are sorted by group; a draw for group g is a uniform point in g's slice of the cumulative
    weight, located with one `searchsorted` for all draws at once.
    """

    def __init__(self, group_of: np.ndarray, weights: np.ndarray, n_groups: int | None = None) -> None:
        order = np.argsort(group_of, kind="stable")
        self.members = order
        self.cum = np.cumsum(weights[order], dtype=np.float64)
        n_groups = int(group_of.max()) + 1 if n_groups is None else n_groups
        counts = np.bincount(group_of, minlength=n_groups)
        self.end = np.cumsum(counts)
        self.start = self.end - counts
        lo = np.where(self.start > 0, self.cum[np.maximum(self.start - 1, 0)], 0.0)
        self.lo = np.where(self.start > 0, lo, 0.0)
        self.hi = np.where(counts > 0, self.cum[np.maximum(self.end - 1, 0)], 0.0)
        self.counts = counts

    def sample(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        g = np.asarray(groups, dtype=np.int64)
        u = self.lo[g] + rng.random(g.shape[0]) * (self.hi[g] - self.lo[g])
        pos = np.searchsorted(self.cum, u, side="right")
        pos = np.clip(pos, self.start[g], np.maximum(self.end[g] - 1, self.start[g]))
        return self.members[pos]


def concat(*parts: pl.Series | pl.Expr | str) -> pl.Series:
    """Eager `concat_str` of Series / literal strings (null if any part is null)."""
    exprs = [pl.lit(p) if isinstance(p, str) else p for p in parts]
    return pl.select(pl.concat_str(exprs)).to_series()


def occurrence(s: pl.Series) -> pl.Series:
    """0 for the first row of each distinct value, 1 for its second, ..."""
    return pl.DataFrame({"v": s}).select(pl.int_range(pl.len()).over("v")).to_series()


def weighted_choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    cum = np.cumsum(weights, dtype=np.float64)
    return np.minimum(np.searchsorted(cum, rng.random(size) * cum[-1], side="right"), len(weights) - 1)


def exact_count(rate: float, eligible: int) -> int:
    """How many rows get a fault: round(rate × eligible), at least one where rate > 0."""
    if rate <= 0 or eligible <= 0:
        return 0
    return int(min(eligible, max(1, round(rate * eligible))))
