"""Serving: batch recommendations for every active user, similar items, and explanations.

The served model is the registry's *current* ``reco_hybrid`` bundle (recalls + ranker), never a
model that was only trained: a candidate that failed the gate does not reach these tables. Every
list is ranked, then filtered (``filters``), then cut to k, and says where each item came from
(the recall models that listed it), which model versions produced it and which filters acted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from governance.recommendation.data import RecoData
from governance.recommendation.filters import DEFAULT_RULES, FilterContext, FilterRule, apply_filters
from governance.recommendation.recall.base import History
from governance.recommendation.train import Bundle

HYBRID_TASK = "reco_hybrid"


def task_name(model: str) -> str:
    return f"reco_{model}"


@dataclass
class Served:
    recommendations: pl.DataFrame
    filter_counts: pl.DataFrame
    users: int
    seconds: float


def active_users(data: RecoData, days: int = 30) -> list[str]:
    """Users with an interaction in the last ``days`` days of the data."""
    if data.interactions.is_empty():
        return []
    last = data.interactions["date"].max()
    return (data.interactions.filter(pl.col("date") > last - timedelta(days=days))["user_key"]
            .unique().sort().to_list())


def recommend_users(bundle: Bundle, data: RecoData, users: list[str], k: int = 10, *, version: str = "",
                    rules: tuple[FilterRule, ...] = DEFAULT_RULES, batch: int = 4096) -> Served:
    """Top-k per user: candidates → ranker → filters → top k, with sources, versions and filter decisions."""
    import time

    t = time.perf_counter()
    ctx = FilterContext.of(data)
    versions = json.dumps({"hybrid": version, **{n: m.params for n, m in bundle.recalls.items()}}, default=str)
    out, counts = [], []
    for start in range(0, len(users), batch):
        scored, _ = bundle.score_candidates(data, users[start:start + batch])
        if scored.is_empty():
            continue
        filtered = apply_filters(scored, ctx, rules)
        counts.append(filtered.counts)
        top = (filtered.kept.with_columns(pl.col("score").rank("ordinal", descending=True).over("user_key")
                                          .alias("rank"))
               .filter(pl.col("rank") <= k).join(filtered.per_user, on="user_key", how="left"))
        out.append(top.select("user_key", pl.col("rank").cast(pl.Int64), "product_id", "score", "sources",
                              pl.col("filters").fill_null(""),
                              pl.lit(version).alias("model_version")))
    recs = (pl.concat(out).sort("user_key", "rank") if out else
            pl.DataFrame(schema={"user_key": pl.String, "rank": pl.Int64, "product_id": pl.String,
                                 "score": pl.Float64, "sources": pl.String, "filters": pl.String,
                                 "model_version": pl.String}))
    recs = recs.with_columns(pl.lit(versions).alias("recall_models"),
                             pl.lit(datetime.now(UTC)).cast(pl.Datetime("us", "UTC")).alias("generated_at"))
    fc = (pl.concat(counts).group_by("rule", "action", "description", maintain_order=True).agg(pl.col("removed").sum())
          if counts else pl.DataFrame(schema={"rule": pl.String, "action": pl.String, "description": pl.String,
                                              "removed": pl.Int64}))
    return Served(recs, fc, len(users), time.perf_counter() - t)


def similar_items(bundle: Bundle, k: int = 10) -> pl.DataFrame:
    """Top-k similar products per product: item-item co-occurrence, content embeddings where it has none."""
    frames = []
    items = bundle.items.ids
    knn = bundle.recalls.get("itemknn")
    if knn is not None:
        rows, vals = knn.similar(k)
        frames.append(_pairs(items, rows, vals, "itemknn"))
    content = bundle.recalls.get("content")
    if content is not None and content.has.any():
        rows, vals = content.similar(k)
        frames.append(_pairs(items, rows, vals, "content"))
    if not frames:
        return pl.DataFrame(schema={"product_id": pl.String, "rank": pl.Int64, "similar_product_id": pl.String,
                                    "score": pl.Float64, "source": pl.String})
    both = pl.concat(frames).filter(pl.col("score") > 0)
    # co-occurrence first; content fills the products with fewer than k co-occurring neighbours
    return (both.with_columns(pl.when(pl.col("source") == "itemknn").then(0).otherwise(1).alias("__p"))
            .sort("product_id", "__p", pl.col("score"), descending=[False, False, True])
            .unique(["product_id", "similar_product_id"], keep="first", maintain_order=True)
            .with_columns(pl.int_range(1, pl.len() + 1).over("product_id").alias("rank"))
            .filter(pl.col("rank") <= k).drop("__p")
            .select("product_id", pl.col("rank").cast(pl.Int64), "similar_product_id", "score", "source"))


def _pairs(items: np.ndarray, rows: np.ndarray, vals: np.ndarray, source: str) -> pl.DataFrame:
    n, k = rows.shape
    return pl.DataFrame({"product_id": np.repeat(items, k), "similar_product_id": items[rows.ravel()],
                         "score": vals.ravel().astype(np.float64), "source": [source] * (n * k)}).filter(
        pl.col("score").is_finite())


def explain(bundle: Bundle, data: RecoData, user: str, *, session: str | None = None, k: int = 10,
            rules: tuple[FilterRule, ...] = DEFAULT_RULES, top_features: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One user's list with, per item, the recall sources, the features that mattered most (SHAP
    contributions of the ranker) and the filters applied; and the filter counts for the user.

    ``session``: rank for that session as the user's current one (its events, in order).
    """
    if session is not None:
        ev = data.events.filter(pl.col("session_id") == session)
        if ev.is_empty():
            raise KeyError(f"no events of session {session!r}")
        # the named session becomes the user's latest one
        data = _with_current_session(data, user, ev)
    hist = History.build(data, bundle.items, [user])
    from governance.recommendation.rank import candidates, features, sources

    cands = candidates(bundle.recalls, hist, bundle.per_model)
    if cands.is_empty():
        return pl.DataFrame(), pl.DataFrame()
    feats = features(cands, data, hist, hist.as_of)
    scored = feats.with_columns(pl.Series("score", bundle.ranker.predict(feats)),
                                sources(feats, list(bundle.recalls), bundle.per_model))
    contrib = bundle.ranker.contributions(feats)[:, :-1]
    names = np.array(bundle.ranker.columns)
    order = np.argsort(-np.abs(contrib), axis=1)[:, :top_features]
    why = [", ".join(f"{names[j]} {contrib[i, j]:+.3f}" for j in row) for i, row in enumerate(order)]
    scored = scored.with_columns(pl.Series("features", why, dtype=pl.String))
    filtered = apply_filters(scored, FilterContext.of(data), rules)
    top = (filtered.kept.sort("score", descending=True).head(k).with_row_index("rank", offset=1)
           .select("rank", "product_id", "score", "sources", "features"))
    meta = data.products.select("product_id", "title", "category_path", "price")
    return top.join(meta, on="product_id", how="left", maintain_order="left"), filtered.counts


def _with_current_session(data: RecoData, user: str, ev: pl.DataFrame) -> RecoData:
    from dataclasses import replace

    later = data.events["event_time"].max() if data.events.height else datetime.now(UTC)
    shifted = ev.with_columns(pl.lit(user).alias("user_key"),
                              (pl.lit(later) + (pl.col("event_time") - pl.col("event_time").min())
                               + pl.duration(seconds=1)).alias("event_time"))
    return replace(data, events=pl.concat([data.events, shifted.select(data.events.columns)]))
