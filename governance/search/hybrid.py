"""The hybrid ranker: reciprocal-rank fusion (RRF) of BM25 and MiniLM.

``fused(p) = Σ_c 1 / (K + rank_c(p))`` over the components c that retrieved product p (rank 1 =
best; equal scores share the better rank), with Cormack, Clarke & Büttcher's (SIGIR 2009) K = 60.

Why RRF and not a learned blend with the query's intent and category (``labelled.queries``):
the ranking must hold on another shop's judgments that this project never sees, and RRF has no
weight to learn — it reads only ranks, so BM25's unbounded scores and cosine similarities need no
calibration, and a component that retrieves nothing for a query (no word in the vocabulary) simply
adds nothing. A blend learned here could only be fitted on CrowdFlower's 261 queries or on the
generated shop's clicks: the first would be tuning to the one judgment set, the second to a
simulator. K was not tuned either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: RRF's constant, as published (not tuned here)
RRF_K = 60


def ranks(scores: np.ndarray, *, retrieved: np.ndarray | None = None) -> np.ndarray:
    """Competition ranks (1 = best, ties share the better rank); 0 for items not retrieved."""
    scores = np.asarray(scores, dtype=np.float64)
    keep = np.ones(scores.shape[0], dtype=bool) if retrieved is None else np.asarray(retrieved, dtype=bool)
    out = np.zeros(scores.shape[0], dtype=np.int64)
    if not keep.any():
        return out
    s = scores[keep]
    order = np.sort(-s)
    out[keep] = np.searchsorted(order, -s, side="left") + 1
    return out


def rrf(rank_arrays: Sequence[np.ndarray], k: int = RRF_K) -> np.ndarray:
    """Fused score per item from aligned rank arrays (0 = not retrieved by that component)."""
    stacked = np.vstack([np.asarray(r, dtype=np.float64) for r in rank_arrays])
    return np.where(stacked > 0, 1.0 / (k + np.maximum(stacked, 1)), 0.0).sum(axis=0)


def fuse_lists(lists: Sequence[np.ndarray], k: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """Fuse ranked lists of item indices (best first): (items best first, fused scores).

    Items appearing in any list are candidates; ties in the fused score keep the order of first
    appearance across the lists (so the first list breaks ties).
    """
    lists = [np.asarray(x, dtype=np.int64) for x in lists]
    items = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    if items.size == 0:
        return items, np.zeros(0)
    contrib = np.concatenate([1.0 / (k + np.arange(1, x.size + 1)) for x in lists])
    uniq, first, inverse = np.unique(items, return_index=True, return_inverse=True)
    fused = np.zeros(uniq.size)
    np.add.at(fused, inverse, contrib)
    order = np.lexsort((first, -fused))
    return uniq[order], fused[order]


def rerank(component_scores: Sequence[np.ndarray], retrieved: Sequence[np.ndarray | None] | None = None,
           k: int = RRF_K) -> np.ndarray:
    """Fused scores for a fixed candidate set (the judged products of one query)."""
    retrieved = retrieved or [None] * len(component_scores)
    return rrf([ranks(s, retrieved=r) for s, r in zip(component_scores, retrieved, strict=True)], k)
