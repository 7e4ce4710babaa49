"""What every recall model shares: the item space, a batch of user histories, top-k, save and load.

A recall model learns only item-side parameters (popularity, item-item similarities, item factors,
session vectors, item embeddings) and scores a batch of users from their *history* (a users × items
matrix of interaction weights, plus each user's latest session). So one trained artifact scores
any user — also users seen after training — and a model can be re-scored on a newer split.

Artifacts are NumPy/SciPy files plus JSON (no pickle): ``params.json``, ``arrays.npz``,
``<name>.sparse.npz`` for each sparse matrix, and text for the ranker's booster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from governance.recommendation.data import Index, RecoData, decayed


@dataclass
class History:
    """A batch of users' past behaviour in one item space."""

    users: Index
    items: Index
    inter: pl.DataFrame  # user_key, product_id, date, weight, purchases, ... (these users only)
    as_of: date
    session: sp.csr_matrix  # users × items, the latest session's items with their 1-based position (else 0)
    _cache: dict = field(default_factory=dict, repr=False)
    _parent: tuple | None = field(default=None, repr=False)

    @classmethod
    def build(cls, data: RecoData, items: Index, users: list[str] | np.ndarray | None = None,
              as_of: date | None = None) -> History:
        inter = data.interactions
        if users is None:
            users = inter["user_key"].unique().sort().to_list()
        uidx = Index(np.asarray(users, dtype=str))
        ulist = pl.Series(uidx.ids, dtype=pl.String).implode()
        inter = inter.filter(pl.col("user_key").is_in(ulist))
        as_of = as_of or (data.interactions["date"].max() if data.interactions.height else date.today())
        session = latest_sessions(data.events, uidx, items)
        return cls(uidx, items, inter, as_of, session)

    def matrix(self, half_life_days: float | None = None, binary: bool = False) -> sp.csr_matrix:
        key = (half_life_days, binary)
        if key not in self._cache:
            if self._parent is not None:  # a slice: built once for the whole batch, then sliced
                parent, start, stop = self._parent
                self._cache[key] = parent.matrix(half_life_days, binary)[start:stop]
            else:
                from governance.recommendation.data import user_item_matrix

                self._cache[key] = user_item_matrix(self.inter, self.users, self.items, as_of=self.as_of,
                                                    half_life_days=half_life_days, binary=binary)
        return self._cache[key]

    def rows(self, start: int, stop: int) -> History:
        """A slice of the batch (users start..stop), sharing the item space and the parent's matrices."""
        h = History(Index(self.users.ids[start:stop]), self.items, self.inter, self.as_of, self.session[start:stop])
        h._parent = (self, start, stop)
        return h


def latest_sessions(events: pl.DataFrame, users: Index, items: Index) -> sp.csr_matrix:
    """users × items: each user's latest session's items, valued by position (1 = first)."""
    if events.is_empty() or "user_key" not in events.columns:
        return sp.csr_matrix((len(users), len(items)), dtype=np.float32)
    ev = events.filter(pl.col("user_key").is_not_null())
    last = ev.group_by("user_key").agg(pl.col("session_id").sort_by("event_time").last())
    seq = (ev.join(last, on=["user_key", "session_id"], how="semi")
           .sort("user_key", "event_time")
           .with_columns(pl.int_range(1, pl.len() + 1).over("user_key").alias("pos"))
           .group_by("user_key", "product_id").agg(pl.col("pos").max()))
    u = users.lookup(seq["user_key"])
    i = items.lookup(seq["product_id"])
    ok = (u >= 0) & (i >= 0)
    return sp.csr_matrix((seq["pos"].to_numpy()[ok].astype(np.float32), (u[ok], i[ok])),
                         shape=(len(users), len(items)))


def position_weights(seq: sp.csr_matrix) -> sp.csr_matrix:
    """V-SKNN's linear decay: the last item of a sequence weighs 1, the one before 1 - 1/n, ..."""
    seq = seq.tocsr().astype(np.float32)
    out = seq.copy()
    if out.nnz == 0:
        return out
    lengths = np.maximum(np.maximum.reduceat(seq.data, seq.indptr[:-1][np.diff(seq.indptr) > 0]), 1)
    lengths_per_nnz = np.repeat(lengths, np.diff(seq.indptr)[np.diff(seq.indptr) > 0])
    out.data = (seq.data / lengths_per_nnz).astype(np.float32)
    return out


def topk(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item rows and scores per user row (descending; -inf for items excluded or never scored)."""
    s = np.asarray(scores, dtype=np.float32)
    k = min(k, s.shape[1])
    if s.ndim == 2 and s.shape[0] > 1 and s.strides[0] == 0 and (exclude is None or exclude.nnz == 0):
        # the same scores for every user (a broadcast row): rank once
        rows, vals = topk(s[:1], k)
        return np.repeat(rows, s.shape[0], axis=0), np.repeat(vals, s.shape[0], axis=0)
    if exclude is not None and exclude.nnz:
        s = s.copy()
        r, c = exclude.nonzero()
        s[r, c] = -np.inf
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-ps, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(ps, order, axis=1)


def sparse_topk(scores: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, score) of the k largest stored scores of each row of a sparse matrix, best first."""
    m = scores.tocsr()
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((-m.data, rows))
    within = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)
    keep = order[within < k]  # rows stay in order; the first k positions of each row are its best
    return rows[keep], m.indices[keep], m.data[keep]


class Recall:
    """Base class: ``fit`` learns item-side parameters; ``score`` maps a History to users × items."""

    name: ClassVar[str] = "recall"
    #: sparse matrices and arrays saved with the artifact (attribute names)
    arrays: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params):
        self.params = params
        self.items: Index | None = None
        self.fit_seconds = 0.0

    def fit(self, data: RecoData, items: Index) -> Recall:
        raise NotImplementedError

    def score(self, hist: History) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, hist: History, k: int = 10, exclude: sp.csr_matrix | None = None,
                  batch: int = 2048) -> pl.DataFrame:
        """user_key, product_id, score, rank (1-based) of the top k per user."""
        frames = []
        sparse = getattr(self, "score_sparse", None)
        for start in range(0, len(hist.users), batch):
            h = hist.rows(start, min(start + batch, len(hist.users)))
            if sparse is not None and exclude is None:  # only the items that scored at all are ranked
                r, c, v = sparse_topk(sparse(h), k)
                frames.append(pl.DataFrame({"user_key": h.users.ids[r], "product_id": self.items.ids[c],
                                            "score": v.astype(np.float64)}).with_columns(
                    pl.int_range(1, pl.len() + 1).over("user_key").alias("rank")))
                continue
            rows, vals = topk(self.score(h), k, exclude[start:start + batch] if exclude is not None else None)
            n = rows.shape[0]
            frames.append(pl.DataFrame({
                "user_key": np.repeat(h.users.ids, rows.shape[1]),
                "product_id": self.items.ids[rows.ravel()],
                "score": vals.ravel().astype(np.float64),
                "rank": np.tile(np.arange(1, rows.shape[1] + 1), n),
            }))
        out = pl.concat(frames) if frames else pl.DataFrame(schema={"user_key": pl.String, "product_id": pl.String,
                                                                   "score": pl.Float64, "rank": pl.Int64})
        return out.filter(pl.col("score").is_finite())

    # ---- artifacts -------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        dense = {}
        for name in self.arrays:
            value = getattr(self, name)
            if sp.issparse(value):
                sp.save_npz(directory / f"{name}.sparse.npz", value.tocsr())
            elif value is not None:
                dense[name] = np.asarray(value)
        dense["items"] = self.items.ids
        np.savez(directory / "arrays.npz", **dense)
        (directory / "params.json").write_text(json.dumps({"name": self.name, "params": self.params},
                                                          indent=2, default=str))

    @classmethod
    def load(cls, directory: Path) -> Recall:
        meta = json.loads((directory / "params.json").read_text())
        model = cls(**meta["params"])
        with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
            model.items = Index(npz["items"].astype(str))
            for name in cls.arrays:
                if (directory / f"{name}.sparse.npz").exists():
                    setattr(model, name, sp.load_npz(directory / f"{name}.sparse.npz").tocsr())
                elif name in npz.files:
                    setattr(model, name, npz[name])
        model._loaded()
        return model

    def _loaded(self) -> None:
        """Rebuild anything derived from the saved arrays."""


def item_popularity(data: RecoData, items: Index, as_of: date, half_life_days: float | None) -> np.ndarray:
    """Decayed interaction weight per item row."""
    inter = data.interactions
    if inter.is_empty():
        return np.zeros(len(items), np.float64)
    agg = inter.group_by("product_id").agg(decayed(inter, as_of, half_life_days).sum().alias("w"))
    rows = items.lookup(agg["product_id"])
    pop = np.zeros(len(items), np.float64)
    ok = rows >= 0
    pop[rows[ok]] = agg["w"].to_numpy()[ok]
    return pop
