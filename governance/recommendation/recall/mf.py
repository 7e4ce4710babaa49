"""Matrix factorisation recall: EASE (closed form) and implicit ALS / BPR (the ``implicit`` package).

EASE (Steck, 2019): ``P = (XᵀX + λI)⁻¹``, ``B = I − P · diag(1/diag(P))`` (zero diagonal), scores
``X B``. One dense inverse over the items, so it is capped at ``max_items`` (the most interacted
items; the rest score 0 from this model and are left to the other recalls).

ALS / BPR: ``implicit``'s CPU implementations on the users × items weights (confidence ``1 + α·w``
for ALS). A user's factors are *folded in* from their history at scoring time (the exact ALS
least-squares solution given the item factors), so users seen after training are scored too; BPR
has no closed-form fold-in, so it scores the users it was trained on (others get zeros).
"""

from __future__ import annotations

import os
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from governance.recommendation.data import Index, RecoData, user_item_matrix
from governance.recommendation.recall.base import History, Recall


class EASE(Recall):
    name = "ease"
    arrays = ("B", "cols")

    def __init__(self, l2: float = 200.0, max_items: int = 6000, half_life_days: float | None = None,
                 binary: bool = True):
        super().__init__(l2=l2, max_items=max_items, half_life_days=half_life_days, binary=binary)
        self.B = None
        self.cols = None

    def fit_matrix(self, X: sp.csr_matrix, items: Index) -> EASE:
        t = time.perf_counter()
        self.items = items
        counts = np.asarray((X > 0).sum(axis=0)).ravel()
        cols = np.flatnonzero(counts > 0)
        if cols.size > self.params["max_items"]:
            cols = np.sort(np.argsort(-counts, kind="stable")[: self.params["max_items"]])
        self.cols = cols.astype(np.int64)
        Xc = X[:, self.cols].astype(np.float64)
        G = (Xc.T @ Xc).toarray()
        G[np.diag_indices_from(G)] += self.params["l2"]
        P = np.linalg.inv(G)
        B = -P / np.diag(P)[None, :]
        B[np.diag_indices_from(B)] = 0.0
        self.B = B.astype(np.float32)
        self.fit_seconds = time.perf_counter() - t
        return self

    def fit(self, data: RecoData, items: Index) -> EASE:
        users = Index.of(data.interactions["user_key"].to_list())
        X = user_item_matrix(data.interactions, users, items, half_life_days=self.params["half_life_days"],
                             binary=self.params["binary"])
        return self.fit_matrix(X, items)

    def score_matrix(self, X: sp.csr_matrix) -> np.ndarray:
        out = np.zeros((X.shape[0], len(self.items)), np.float32)
        if self.cols.size:
            out[:, self.cols] = X[:, self.cols] @ self.B
        return out

    def score(self, hist: History) -> np.ndarray:
        return self.score_matrix(hist.matrix(self.params["half_life_days"], binary=self.params["binary"]))


class ImplicitMF(Recall):
    name = "als"
    arrays = ("item_factors", "user_factors", "user_ids")

    def __init__(self, algorithm: str = "als", factors: int = 64, regularization: float = 0.05,
                 iterations: int = 15, alpha: float = 1.0, learning_rate: float = 0.01,
                 half_life_days: float | None = None, binary: bool = False, seed: int = 42):
        super().__init__(algorithm=algorithm, factors=factors, regularization=regularization, iterations=iterations,
                         alpha=alpha, learning_rate=learning_rate, half_life_days=half_life_days, binary=binary,
                         seed=seed)
        self.name = algorithm
        self.item_factors = None
        self.user_factors = None
        self.user_ids = None

    def fit_matrix(self, X: sp.csr_matrix, items: Index, users: Index | None = None) -> ImplicitMF:
        import implicit

        t = time.perf_counter()
        self.items = items
        p = self.params
        threads = max(1, os.cpu_count() or 1)
        X = X.tocsr().astype(np.float32)
        with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads would oversubscribe
            if p["algorithm"] == "als":
                model = implicit.cpu.als.AlternatingLeastSquares(
                    factors=p["factors"], regularization=p["regularization"], iterations=p["iterations"],
                    alpha=p["alpha"], random_state=p["seed"], num_threads=threads, calculate_training_loss=False)
            elif p["algorithm"] == "bpr":
                model = implicit.cpu.bpr.BayesianPersonalizedRanking(
                    factors=p["factors"], learning_rate=p["learning_rate"], regularization=p["regularization"],
                    iterations=p["iterations"], random_state=p["seed"], num_threads=threads)
            else:
                raise ValueError(f"unknown algorithm {p['algorithm']!r}: als or bpr")
            model.fit(X, show_progress=False)
        self.item_factors = np.asarray(model.item_factors, np.float32)
        self.user_factors = np.asarray(model.user_factors, np.float32)
        self.user_ids = users.ids if users is not None else np.array([], dtype=str)
        self.fit_seconds = time.perf_counter() - t
        return self

    def fit(self, data: RecoData, items: Index) -> ImplicitMF:
        users = Index.of(data.interactions["user_key"].to_list())
        X = user_item_matrix(data.interactions, users, items, half_life_days=self.params["half_life_days"],
                             binary=self.params["binary"])
        return self.fit_matrix(X, items, users)

    def fold_in(self, X: sp.csr_matrix, block_nnz: int = 4_000) -> np.ndarray:
        """Exact ALS user factors given the item factors: (YᵀY + Yᵀ(C−I)Y + λI)⁻¹ Yᵀ C p, batched."""
        Y = self.item_factors.astype(np.float64)
        f = Y.shape[1]
        base = Y.T @ Y + self.params["regularization"] * np.eye(f)
        X = X.tocsr()
        out = np.zeros((X.shape[0], f), np.float32)
        conf = X.copy()
        conf.data = self.params["alpha"] * conf.data  # C − I
        start = 0
        while start < X.shape[0]:
            stop = int(np.searchsorted(X.indptr, X.indptr[start] + block_nnz, side="right")) - 1
            stop = min(max(stop, start + 1), X.shape[0])
            sub = conf[start:stop]
            lo, hi = sub.indptr[0], sub.indptr[-1]
            if hi > lo:
                Yi = Y[sub.indices]
                outer = np.einsum("nf,ng->nfg", Yi * sub.data[:, None], Yi)
                nonempty = np.diff(sub.indptr) > 0
                A = np.repeat(base[None], stop - start, axis=0)
                A[nonempty] += np.add.reduceat(outer, sub.indptr[:-1][nonempty], axis=0)
                b = np.zeros((stop - start, f))
                np.add.at(b, np.repeat(np.arange(stop - start), np.diff(sub.indptr)), Yi * (1.0 + sub.data)[:, None])
                out[start:stop] = np.linalg.solve(A, b[..., None])[..., 0]
            start = stop
        return out

    def score_matrix(self, X: sp.csr_matrix, users: Index | None = None) -> np.ndarray:
        """Users seen in training keep their learned factors; ALS folds in the others from X."""
        U = np.zeros((X.shape[0], self.item_factors.shape[1]), np.float32)
        known = np.full(X.shape[0], -1)
        if users is not None and self.user_ids is not None and self.user_ids.size:
            known = Index(self.user_ids).lookup(list(users.ids))
            U[known >= 0] = self.user_factors[known[known >= 0]]
        unknown = np.flatnonzero(known < 0)
        if self.params["algorithm"] == "als" and unknown.size:
            U[unknown] = self.fold_in(X[unknown])
        return U @ self.item_factors.T

    def score(self, hist: History) -> np.ndarray:
        X = hist.matrix(self.params["half_life_days"], binary=self.params["binary"])
        return self.score_matrix(X, hist.users)
