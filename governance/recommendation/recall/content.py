"""Content-based recall from MiniLM embeddings of product titles and descriptions.

The vectors are the integration stage's (``integrated.embedding_cache``, all-MiniLM-L6-v2); nothing
is embedded again here. A user's profile is the decayed-weight mean of the embeddings of the
items they interacted with; items score by cosine to it. Every current product with an embedding
can be recommended — also new products nobody has interacted with yet (cold start).
"""

from __future__ import annotations

import time

import numpy as np


from governance.recommendation.data import Index, RecoData
from governance.recommendation.recall.base import History, Recall


class Content(Recall):
    name = "content"
    arrays = ("E", "has")

    def __init__(self, half_life_days: float | None = 3.0):
        super().__init__(half_life_days=half_life_days)
        self.E = None
        self.has = None

    def fit(self, data: RecoData, items: Index) -> Content:
        t = time.perf_counter()
        self.items = items
        dim = 384
        self.E = np.zeros((len(items), dim), np.float32)
        self.has = np.zeros(len(items), bool)
        if data.embeddings is not None and data.embeddings.height:
            rows = items.lookup(data.embeddings["product_id"])
            ok = rows >= 0
            vecs = np.asarray(data.embeddings["embedding"].to_numpy(), np.float32)
            if vecs.ndim == 2 and vecs.shape[1]:
                self.E = np.zeros((len(items), vecs.shape[1]), np.float32)
                self.E[rows[ok]] = vecs[ok]
                self.has[rows[ok]] = True
        self.fit_seconds = time.perf_counter() - t
        return self

    def score(self, hist: History) -> np.ndarray:
        a = hist.matrix(self.params["half_life_days"])
        profile = np.asarray(a @ self.E)
        norm = np.linalg.norm(profile, axis=1, keepdims=True)
        profile = profile / np.where(norm == 0, 1, norm)
        s = profile @ self.E.T
        s[:, ~self.has] = -1.0  # below every real cosine: items without an embedding come last
        return s

    def similar(self, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        from governance.recommendation.recall.base import topk

        out_r, out_v = [], []
        for start in range(0, len(self.items), 2048):
            s = self.E[start:start + 2048] @ self.E.T
            s[np.arange(s.shape[0]), np.arange(start, start + s.shape[0])] = -np.inf
            s[:, ~self.has] = -np.inf
            r, v = topk(s, k)
            out_r.append(r)
            out_v.append(v)
        return np.concatenate(out_r), np.concatenate(out_v)


