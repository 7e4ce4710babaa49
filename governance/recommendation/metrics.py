"""Ranking metrics over top-k lists, computed with Polars joins (no loop over users).

Conventions (those of Microsoft Recommenders' ``python_evaluation`` and of session-rec):
binary relevance; every user of the truth counts (a user without recommendations scores 0);
NDCG@k = DCG@k / IDCG@k with IDCG over min(|relevant|, k) hits; Recall@k = hits / |relevant|;
Precision@k = hits / k; MAP@k = Σ precision at each hit / |relevant|; HR@k = at least one hit;
MRR@k = 1 / rank of the first hit.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def ranking_metrics(recs: pl.DataFrame, truth: pl.DataFrame, ks: tuple[int, ...] = (10, 20),
                    key: str = "user_key", item: str = "product_id") -> dict[str, float]:
    """recs: key, item, rank (1-based); truth: key, item (relevant pairs)."""
    truth = truth.select(key, item).unique()
    n_rel = truth.group_by(key).agg(pl.len().alias("n_rel"))
    n_users = n_rel.height
    out: dict[str, float] = {"users": float(n_users)}
    if n_users == 0:
        return out
    hits = recs.select(key, item, "rank").join(truth, on=[key, item], how="inner")
    for k in ks:
        h = hits.filter(pl.col("rank") <= k).sort(key, "rank")
        per = (h.with_columns(pl.int_range(1, pl.len() + 1).over(key).alias("hit_no"))
               .group_by(key).agg(
                   pl.len().alias("hits"),
                   (1.0 / (pl.col("rank") + 1).log(2)).sum().alias("dcg"),
                   (1.0 / pl.col("rank").min()).alias("rr"),
                   (pl.col("hit_no") / pl.col("rank")).sum().alias("ap_sum")))
        per = n_rel.join(per, on=key, how="left").fill_null(0)
        ideal_n = np.minimum(per["n_rel"].to_numpy(), k)
        idcg_table = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
        idcg = idcg_table[ideal_n]
        dcg = per["dcg"].to_numpy()
        hits_ = per["hits"].to_numpy().astype(np.float64)
        nrel = per["n_rel"].to_numpy().astype(np.float64)
        out[f"ndcg@{k}"] = float(np.mean(np.where(idcg > 0, dcg / np.maximum(idcg, 1e-12), 0.0)))
        out[f"recall@{k}"] = float(np.mean(hits_ / nrel))
        out[f"precision@{k}"] = float(np.mean(hits_ / k))
        out[f"map@{k}"] = float(np.mean(per["ap_sum"].to_numpy() / nrel))
        out[f"hr@{k}"] = float(np.mean(hits_ > 0))
        out[f"mrr@{k}"] = float(np.mean(per["rr"].to_numpy()))
    return out


def coverage(recs: pl.DataFrame, catalogue_size: int, k: int, item: str = "product_id") -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    if catalogue_size == 0:
        return 0.0
    return recs.filter(pl.col("rank") <= k)[item].n_unique() / catalogue_size


def popularity_bias(recs: pl.DataFrame, popularity: pl.DataFrame, k: int, item: str = "product_id") -> float:
    """Mean popularity percentile (0–1, 1 = most popular) of the recommended items.

    popularity: item, pop (training interactions); items never interacted with are at percentile 0.
    """
    pct = popularity.select(item, (pl.col("pop").rank("average") / pl.len()).alias("pct"))
    r = recs.filter(pl.col("rank") <= k).join(pct, on=item, how="left")
    return float(r["pct"].fill_null(0.0).mean()) if r.height else float("nan")


def cold_item_recall(recs: pl.DataFrame, truth: pl.DataFrame, warm_items: pl.Series, k: int,
                     key: str = "user_key", item: str = "product_id") -> tuple[float, int]:
    """Recall@k over held-out pairs whose item had no training interaction; (recall, pairs)."""
    cold = truth.filter(~pl.col(item).is_in(warm_items.implode())).select(key, item).unique()
    if cold.is_empty():
        return float("nan"), 0
    got = cold.join(recs.filter(pl.col("rank") <= k).select(key, item), on=[key, item], how="inner")
    return got.height / cold.height, cold.height
