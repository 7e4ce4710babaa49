"""Session-based nearest neighbours for the current session: V-SKNN (Ludewig & Jannach, 2018).

The current session's items are weighted by position (linear decay: the last item weighs 1); the
past sessions sharing an item with it are the candidates, the ``sample_size`` most recent of them
are kept, and the ``k`` most similar (cosine between the weighted current session and the binary
past session) vote for their items with their similarity. Everything is sparse-matrix algebra
over a batch of sessions at once.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import scipy.sparse as sp

from governance.recommendation.data import Index, RecoData
from governance.recommendation.recall.base import History, Recall, position_weights


def session_matrix(events: pl.DataFrame, items: Index) -> tuple[sp.csr_matrix, np.ndarray]:
    """sessions × items binary, and each session's last event time (µs) for recency sampling."""
    ev = events.select("session_id", "product_id", "event_time")
    per = ev.group_by("session_id").agg(pl.col("event_time").max().dt.epoch("us").alias("t")).sort("session_id")
    sessions = Index(per["session_id"].to_numpy().astype(str))
    s = sessions.lookup(ev["session_id"])
    i = items.lookup(ev["product_id"])
    ok = (s >= 0) & (i >= 0)
    m = sp.csr_matrix((np.ones(ok.sum(), np.float32), (s[ok], i[ok])), shape=(len(sessions), len(items)))
    m.data[:] = 1.0
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, per["t"].to_numpy()


class SKNN(Recall):
    name = "sknn"
    arrays = ("S", "recency")

    def __init__(self, k: int = 100, sample_size: int = 500, similarity: str = "cosine"):
        super().__init__(k=k, sample_size=sample_size, similarity=similarity)
        self.S = None
        self.recency = None

    def fit(self, data: RecoData, items: Index) -> SKNN:
        t = time.perf_counter()
        self.items = items
        self.S, times = session_matrix(data.events, items)
        # recency rank of each past session (0 = most recent)
        self.recency = np.argsort(np.argsort(-times, kind="stable"), kind="stable").astype(np.int64)
        self.fit_seconds = time.perf_counter() - t
        return self

    def score_sequences(self, seq: sp.csr_matrix) -> np.ndarray:
        """seq: rows × items with each item's 1-based position in the current session (0 = absent)."""
        q = position_weights(seq)
        if q.nnz == 0 or self.S.shape[0] == 0:
            return np.zeros((seq.shape[0], len(self.items)), np.float32)
        sims = (q @ self.S.T).tocsr()  # rows × sessions: weighted overlap
        if self.params["similarity"] == "cosine":
            qlen = np.sqrt(np.diff(seq.tocsr().indptr)).astype(np.float32)
            slen = np.sqrt(np.asarray(self.S.sum(axis=1)).ravel()).astype(np.float32)
            rows = np.repeat(np.arange(sims.shape[0]), np.diff(sims.indptr))
            sims.data = sims.data / np.maximum(qlen[rows] * slen[sims.indices], 1e-9)
        sims = self._neighbours(sims)
        return (sims @ self.S).toarray()

    def _neighbours(self, sims: sp.csr_matrix) -> sp.csr_matrix:
        """Keep, per row, the k most similar among the sample_size most recent candidate sessions."""
        k, sample = self.params["k"], self.params["sample_size"]
        sims = sims.tocsr()
        rows = np.repeat(np.arange(sims.shape[0]), np.diff(sims.indptr))
        frame = pl.DataFrame({"r": rows, "c": sims.indices, "v": sims.data, "rec": self.recency[sims.indices]})
        kept = (frame.filter(pl.col("rec").rank("ordinal").over("r") <= sample)
                .filter(pl.col("v").rank("ordinal", descending=True).over("r") <= k))
        return sp.csr_matrix((kept["v"].to_numpy(), (kept["r"].to_numpy(), kept["c"].to_numpy())), shape=sims.shape)

    def score(self, hist: History) -> np.ndarray:
        return self.score_sequences(hist.session)
