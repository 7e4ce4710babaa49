"""Session-based nearest neighbours for the current session: V-SKNN (Ludewig & Jannach, 2018).

The current session's items are weighted by position (linear decay: the last item weighs 1); the
past sessions sharing an item with it are the candidates, the ``sample_size`` most recent of them
are kept (past sessions are stored most recent first, so these are each row's first candidates),
and the ``k`` most similar (cosine between the weighted current session and the binary
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
        S, times = session_matrix(data.events, items)
        self.set_sessions(S, times)
        self.fit_seconds = time.perf_counter() - t
        return self

    def set_sessions(self, S: sp.csr_matrix, times: np.ndarray) -> SKNN:
        """Past sessions (rows) ordered most recent first, so a row's first candidates are the most recent."""
        order = np.argsort(-np.asarray(times), kind="stable")
        self.S = S.tocsr()[order]
        self.recency = np.arange(self.S.shape[0], dtype=np.int64)
        self._loaded()
        return self

    def _loaded(self) -> None:
        # each item's posting list truncated to its `sample_size` most recent sessions: the most recent
        # `sample_size` sessions sharing any item with the current one are always among these (exact)
        postings = self.S.T.tocsr()
        postings.sort_indices()
        counts = np.diff(postings.indptr)
        within = np.arange(postings.nnz) - np.repeat(postings.indptr[:-1], counts)
        keep = within < self.params["sample_size"]
        rows = np.repeat(np.arange(postings.shape[0]), counts)[keep]
        self._postings = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows, postings.indices[keep])),
                                       shape=postings.shape)
        self._slen = np.sqrt(np.asarray(self.S.sum(axis=1)).ravel()).astype(np.float32)

    def score_sequences(self, seq: sp.csr_matrix, batch: int = 1024) -> np.ndarray:
        """seq: rows × items with each item's 1-based position in the current session (0 = absent)."""
        seq = seq.tocsr()
        out = np.zeros((seq.shape[0], len(self.items)), np.float32)
        if seq.nnz == 0 or self.S.shape[0] == 0:
            return out
        for start in range(0, seq.shape[0], batch):
            part = seq[start:start + batch]
            out[start:start + part.shape[0]] = (self._neighbours(part) @ self.S).toarray()
        return out

    def _neighbours(self, part: sp.csr_matrix) -> sp.csr_matrix:
        """rows × past sessions: of the `sample_size` most recent sessions sharing an item with the row's
        session, the `k` most similar, valued by their similarity."""
        k, sample = self.params["k"], self.params["sample_size"]
        present = part.copy()
        present.data[:] = 1.0
        cand = (present @ self._postings).tocsr()  # candidate sessions; columns in recency order
        cand.sort_indices()
        counts = np.diff(cand.indptr)
        within = np.arange(cand.nnz) - np.repeat(cand.indptr[:-1], counts)
        recent = within < sample
        r = np.repeat(np.arange(cand.shape[0]), counts)[recent]
        c = cand.indices[recent]
        if r.size == 0:
            return sp.csr_matrix(cand.shape, dtype=np.float32)
        q = position_weights(part)
        v = np.asarray(q[r].multiply(self.S[c]).sum(axis=1)).ravel().astype(np.float32)  # weighted overlap
        if self.params["similarity"] == "cosine":
            qlen = np.sqrt(np.diff(part.indptr)).astype(np.float32)
            v = v / np.maximum(qlen[r] * self._slen[c], 1e-9)
        order = np.lexsort((-v, r))
        r, c, v = r[order], c[order], v[order]
        first = np.searchsorted(r, np.arange(cand.shape[0]))
        top = (np.arange(r.size) - first[r]) < k
        return sp.csr_matrix((v[top], (r[top], c[top])), shape=cand.shape)

    def score(self, hist: History) -> np.ndarray:
        return self.score_sequences(hist.session)
