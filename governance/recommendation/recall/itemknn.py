"""Item-item collaborative filtering, SAR-style: co-occurrence → similarity, time-decayed affinity.

``C = Bᵀ B`` counts the users (or sessions) that interacted with both items (``B`` binary); the
similarity is Jaccard ``c_ij / (c_ii + c_jj − c_ij)``, lift ``c_ij / (c_ii c_jj)`` or cosine
``c_ij / √(c_ii c_jj)``. Each item keeps its ``neighbours`` most similar items (memory stays
bounded at catalogue scale; computed in column blocks). A user's scores are ``A S`` with ``A`` the
user's interaction weights halved every ``half_life_days`` (SAR's time decay).
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import scipy.sparse as sp

from governance.recommendation.data import Index, RecoData, user_item_matrix
from governance.recommendation.recall.base import History, Recall


def baskets(data: RecoData, items: Index, basis: str) -> sp.csr_matrix:
    """Binary baskets × items: one row per user (``user``) or per session (``session``)."""
    if basis == "session" and data.events.height:
        ev = data.events.select("session_id", "product_id").unique()
        sessions = Index.of(ev["session_id"].to_list())
        return user_item_matrix(ev.with_columns(pl.col("session_id").alias("user_key"),
                                                pl.lit(None, pl.Date).alias("date"), pl.lit(1.0).alias("weight")),
                                sessions, items, binary=True)
    users = Index.of(data.interactions["user_key"].to_list())
    return user_item_matrix(data.interactions, users, items, binary=True)


def similarity_topn(B: sp.csr_matrix, kind: str = "jaccard", neighbours: int = 100, block: int = 2048,
                    min_count: int = 1) -> sp.csr_matrix:
    """items × items similarity (diagonal removed), the ``neighbours`` largest per row."""
    B = B.tocsc().astype(np.float32)
    n = B.shape[1]
    diag = np.asarray(B.sum(axis=0)).ravel()
    Bt = B.T.tocsr()
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        c = (Bt[start:stop] @ B).toarray()  # (block, n) co-occurrence counts
        own = diag[start:stop][:, None]
        if kind == "jaccard":
            s = c / np.maximum(own + diag[None, :] - c, 1e-9)
        elif kind == "lift":
            s = c / np.maximum(own * diag[None, :], 1e-9)
        elif kind == "cosine":
            s = c / np.maximum(np.sqrt(own * diag[None, :]), 1e-9)
        elif kind == "count":
            s = c
        else:
            raise ValueError(f"unknown similarity {kind!r}: jaccard, lift, cosine or count")
        s[c < min_count] = 0
        s[np.arange(stop - start), np.arange(start, stop)] = 0
        k = min(neighbours, n - 1) if n > 1 else 0
        if k <= 0:
            continue
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        v = np.take_along_axis(s, top, axis=1)
        keep = v > 0
        rows.append(np.repeat(np.arange(start, stop), k)[keep.ravel()])
        cols.append(top.ravel()[keep.ravel()])
        vals.append(v.ravel()[keep.ravel()])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n))


class ItemKNN(Recall):
    name = "itemknn"
    arrays = ("sim",)

    def __init__(self, similarity: str = "jaccard", half_life_days: float | None = 7.0, neighbours: int = 100,
                 basis: str = "user"):
        super().__init__(similarity=similarity, half_life_days=half_life_days, neighbours=neighbours, basis=basis)
        self.sim = None

    def fit(self, data: RecoData, items: Index) -> ItemKNN:
        t = time.perf_counter()
        self.items = items
        self.sim = similarity_topn(baskets(data, items, self.params["basis"]), self.params["similarity"],
                                   self.params["neighbours"])
        self.fit_seconds = time.perf_counter() - t
        return self

    def score_sparse(self, hist: History) -> sp.csr_matrix:
        """A S: only the neighbours of the user's items score (sparse)."""
        return (hist.matrix(self.params["half_life_days"]) @ self.sim).tocsr()

    def score(self, hist: History) -> np.ndarray:
        return self.score_sparse(hist).toarray()

    def similar(self, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k neighbours (rows, similarities) per item."""
        from governance.recommendation.recall.base import topk

        dense_rows = []
        for start in range(0, self.sim.shape[0], 2048):
            dense_rows.append(topk(self.sim[start:start + 2048].toarray(), k))
        return (np.concatenate([r for r, _ in dense_rows]), np.concatenate([v for _, v in dense_rows]))
