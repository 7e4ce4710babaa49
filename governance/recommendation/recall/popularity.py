"""Popularity: the baseline every other model must beat — overall, or per category, time-decayed.

``score(u, i) = pop(i)`` overall; per category ``pop(i) · (1 + share_u(cat(i)))`` where ``share_u``
is the user's (decayed) share of interaction weight in the item's category, so a user's own
categories come first and every other item still follows by popularity.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import scipy.sparse as sp

from governance.recommendation.data import Index, RecoData
from governance.recommendation.recall.base import History, Recall, item_popularity


class Popularity(Recall):
    name = "popularity"
    arrays = ("pop", "category")

    def __init__(self, half_life_days: float | None = 2.0, per_category: bool = False,
                 level: str = "category_l2"):
        super().__init__(half_life_days=half_life_days, per_category=per_category, level=level)
        self.pop = None
        self.category = None

    def fit(self, data: RecoData, items: Index) -> Popularity:
        t = time.perf_counter()
        self.items = items
        as_of = data.interactions["date"].max()
        pop = item_popularity(data, items, as_of, self.params["half_life_days"])
        self.pop = (pop / pop.max() if pop.max() > 0 else pop).astype(np.float32)
        level = self.params["level"]
        cats = data.products.select("product_id", pl.col(level).fill_null("?").alias("c"))
        codes = pl.DataFrame({"product_id": pl.Series(items.ids, dtype=pl.String)}).join(
            cats, on="product_id", how="left", maintain_order="left")["c"].fill_null("?")
        self.category = codes.cast(pl.Categorical).to_physical().to_numpy().astype(np.int32)
        self.fit_seconds = time.perf_counter() - t
        return self

    def score(self, hist: History) -> np.ndarray:
        base = np.broadcast_to(self.pop, (len(hist.users), len(self.items)))
        if not self.params["per_category"]:
            return base  # a read-only view: every user's row is the same
        n_cat = int(self.category.max()) + 1 if self.category.size else 1
        onehot = sp.csr_matrix((np.ones(self.category.size, np.float32),
                                (np.arange(self.category.size), self.category)), shape=(len(self.items), n_cat))
        by_cat = (hist.matrix(self.params["half_life_days"]) @ onehot).toarray()
        share = by_cat / np.maximum(by_cat.sum(axis=1, keepdims=True), 1e-9)
        return base * (1.0 + share[:, self.category])
