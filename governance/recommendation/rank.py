"""The learned ranker over the union of every recall's candidates (LightGBM LambdaRank).

Candidates: each recall model's top ``per_model`` items per user; the union keeps, for every
candidate, *every* model's score and rank (rank ``per_model + 1`` when outside a model's list).
Features add the product (price and price band, category, popularity now and its trend, review
sentiment, freshness, conversion) and the user (history size, recency, price sensitivity, share
of the candidate's category and brand in their history, earlier interest in the item itself).

Training is on a window *before* the held-out days: the recalls are fitted up to day ``T−1``, the
candidates of the users active on day ``T`` are labelled with what they did that day (graded: 3
purchase, 2 cart, 1 view/click, 0 nothing), and LambdaRank learns to order them. The evaluation
then refits the recalls up to ``T`` and ranks the candidates for the held-out day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from governance.recommendation.data import RecoData, decayed
from governance.recommendation.recall.base import History, Recall

ITEM_FEATURES = ["price", "price_band", "category", "pop_1d", "pop_3d", "pop_all", "trend", "positive_share",
                 "negative_share", "mean_rating", "review_count", "age_days", "conversion_rate"]
USER_FEATURES = ["u_items", "u_days", "u_recency", "u_price_ratio", "u_cat_share", "u_brand_share"]
PAIR_FEATURES = ["ui_weight", "ui_days_since", "ui_purchased", "in_session"]


def candidates(models: dict[str, Recall], hist: History, per_model: int = 50, batch: int = 1024) -> pl.DataFrame:
    """user_key, product_id and, per model m, ``s_m`` (score) and ``r_m`` (rank, per_model+1 if not listed)."""
    frames = []
    names = list(models)
    for start in range(0, len(hist.users), batch):
        h = hist.rows(start, min(start + batch, len(hist.users)))
        scores, ranks = {}, {}
        mask = np.zeros((len(h.users), len(hist.items)), bool)
        for name in names:
            s = np.asarray(models[name].score(h), np.float32)
            k = min(per_model, s.shape[1])
            top = np.argpartition(-s, k - 1, axis=1)[:, :k]
            topv = np.take_along_axis(s, top, axis=1)
            order = np.argsort(-topv, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            r = np.full(s.shape, per_model + 1, np.int16)
            np.put_along_axis(r, top, np.arange(1, k + 1, dtype=np.int16)[None, :].repeat(len(h.users), 0), axis=1)
            ok = np.take_along_axis(s, top, axis=1) > -np.inf
            mask[np.repeat(np.arange(len(h.users)), k)[ok.ravel()], top.ravel()[ok.ravel()]] = True
            scores[name], ranks[name] = s, r
        ui, ii = np.nonzero(mask)
        cols = {"user_key": h.users.ids[ui], "product_id": hist.items.ids[ii]}
        for name in names:
            cols[f"s_{name}"] = np.nan_to_num(scores[name][ui, ii], neginf=-1.0).astype(np.float32)
            cols[f"r_{name}"] = ranks[name][ui, ii].astype(np.int16)
        frames.append(pl.DataFrame(cols))
    return pl.concat(frames) if frames else pl.DataFrame()


def item_features(data: RecoData, as_of: date) -> pl.DataFrame:
    """Product features as known at the end of ``as_of`` (interactions up to it only)."""
    inter = data.interactions.filter(pl.col("date") <= as_of)
    pop = inter.group_by("product_id").agg(
        pl.col("weight").filter(pl.col("date") == as_of).sum().alias("pop_1d"),
        pl.col("weight").filter(pl.col("date") > as_of - timedelta(days=3)).sum().alias("pop_3d"),
        pl.col("weight").sum().alias("pop_all"),
        pl.col("date").min().alias("first_day"))
    total = max(float(inter["weight"].sum()), 1.0)
    p = data.products
    cols = [c for c in ("positive_share", "negative_share", "mean_rating", "review_count", "conversion_rate")
            if c in p.columns]
    out = p.select("product_id", pl.col("price").cast(pl.Float64),
                   pl.col("category_l1").fill_null("?").alias("category_name"), *cols)
    out = out.join(pop, on="product_id", how="full", coalesce=True).with_columns(
        pl.col("pop_1d", "pop_3d", "pop_all").fill_null(0.0) / total,
        (pl.lit(as_of) - pl.col("first_day")).dt.total_days().fill_null(-1).alias("age_days"),
        pl.col("price").qcut(10, labels=[str(i) for i in range(10)], allow_duplicates=True)
        .cast(pl.String).cast(pl.Int32, strict=False).alias("price_band"))
    out = out.with_columns(((pl.col("pop_1d") + 1e-6) / (pl.col("pop_3d") / 3 + 1e-6)).alias("trend"))
    for c in ("positive_share", "negative_share", "mean_rating", "review_count", "conversion_rate"):
        if c not in out.columns:
            out = out.with_columns(pl.lit(None, pl.Float64).alias(c))
    return out.drop("first_day")


def user_features(data: RecoData, users: list[str], as_of: date) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(per user, per user × category_l2 share, per user × brand share) as known at the end of ``as_of``."""
    ulist = pl.Series(users, dtype=pl.String).implode()
    inter = data.interactions.filter((pl.col("date") <= as_of) & pl.col("user_key").is_in(ulist))
    p = data.products.select("product_id", "category_l2", "brand", "price")
    x = inter.join(p, on="product_id", how="left").with_columns(decayed(inter, as_of, 3.0).alias("w"))
    per_user = x.group_by("user_key").agg(
        pl.col("product_id").n_unique().alias("u_items"), pl.col("date").n_unique().alias("u_days"),
        (pl.lit(as_of) - pl.col("date").max()).dt.total_days().alias("u_recency"),
        ((pl.col("price") * pl.col("w")).sum() / pl.col("w").filter(pl.col("price").is_not_null()).sum())
        .alias("u_mean_price"))
    tot = x.group_by("user_key").agg(pl.col("w").sum().alias("tot"))
    cat = (x.group_by("user_key", "category_l2").agg(pl.col("w").sum()).join(tot, on="user_key")
           .select("user_key", "category_l2", (pl.col("w") / pl.col("tot")).alias("u_cat_share")))
    brand = (x.group_by("user_key", "brand").agg(pl.col("w").sum()).join(tot, on="user_key")
             .select("user_key", "brand", (pl.col("w") / pl.col("tot")).alias("u_brand_share")))
    return per_user, cat, brand


def features(cands: pl.DataFrame, data: RecoData, hist: History, as_of: date) -> pl.DataFrame:
    """The candidates with every item, user and user × item feature."""
    users = cands["user_key"].unique().to_list()
    items = item_features(data, as_of)
    per_user, cat, brand = user_features(data, users, as_of)
    ulist = pl.Series(users, dtype=pl.String).implode()
    pair = (data.interactions.filter((pl.col("date") <= as_of) & pl.col("user_key").is_in(ulist))
            .with_columns(decayed(data.interactions, as_of, 3.0).alias("w"))
            .group_by("user_key", "product_id").agg(
                pl.col("w").sum().alias("ui_weight"),
                (pl.lit(as_of) - pl.col("date").max()).dt.total_days().alias("ui_days_since"),
                (pl.col("purchases").sum() > 0).cast(pl.Int8).alias("ui_purchased")))
    sess = hist.session.tocoo()
    in_session = pl.DataFrame({"user_key": hist.users.ids[sess.row], "product_id": hist.items.ids[sess.col],
                               "in_session": np.ones(sess.nnz, np.int8)})
    meta = data.products.select("product_id", "category_l2", "brand")
    out = (cands.join(items, on="product_id", how="left")
           .join(meta, on="product_id", how="left")
           .join(per_user, on="user_key", how="left")
           .join(cat, on=["user_key", "category_l2"], how="left")
           .join(brand, on=["user_key", "brand"], how="left")
           .join(pair, on=["user_key", "product_id"], how="left")
           .join(in_session, on=["user_key", "product_id"], how="left")
           .with_columns((pl.col("price") / pl.col("u_mean_price")).alias("u_price_ratio"),
                         pl.col("u_cat_share", "u_brand_share", "ui_weight").fill_null(0.0),
                         pl.col("ui_purchased", "in_session").fill_null(0),
                         pl.col("ui_days_since").fill_null(-1),
                         pl.col("category_name").fill_null("?").cast(pl.Categorical).to_physical()
                         .cast(pl.Int32).alias("category")))
    return out


def feature_names(model_names: list[str]) -> list[str]:
    return [*(f"s_{m}" for m in model_names), *(f"r_{m}" for m in model_names), *ITEM_FEATURES, *USER_FEATURES,
            *PAIR_FEATURES]


@dataclass
class Ranker:
    """LightGBM LambdaRank over the candidate features."""

    model_names: list[str]
    params: dict = field(default_factory=lambda: {
        # small trees, every feature in every tree: on measurement (shop, held-out day) deeper trees and
        # feature/bagging fractions overfit the ranking window and lose to the popularity recall
        "objective": "lambdarank", "learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 200,
        "lambdarank_truncation_level": 20, "eval_at": [10], "verbosity": -1, "seed": 42, "num_threads": 0,
        "deterministic": True, "force_row_wise": True})
    rounds: int = 50
    booster_text: str = ""
    fit_seconds: float = 0.0
    importance: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return feature_names(self.model_names)

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        return frame.select([pl.col(c).cast(pl.Float32) for c in self.columns]).to_numpy()

    def fit(self, frame: pl.DataFrame, label: str = "label") -> Ranker:
        import lightgbm as lgb

        t = time.perf_counter()
        # a query is one user's candidates on one label day; only those with a positive teach an order
        qid = ["user_key", "label_day"] if "label_day" in frame.columns else ["user_key"]
        pos = frame.group_by(qid).agg((pl.col(label) > 0).any().alias("any")).filter("any")
        f = frame.join(pos.select(qid), on=qid, how="semi").sort(qid)
        groups = f.group_by(qid, maintain_order=True).len()["len"].to_numpy()
        ds = lgb.Dataset(self.matrix(f), label=f[label].to_numpy(), group=groups, feature_name=self.columns,
                         categorical_feature=["category"], free_raw_data=True)
        booster = lgb.train(self.params, ds, num_boost_round=self.rounds)
        self.booster_text = booster.model_to_string()
        gain = booster.feature_importance("gain")
        self.importance = {n: float(g) for n, g in sorted(zip(self.columns, gain, strict=True),
                                                          key=lambda x: -x[1]) if g > 0}
        self.fit_seconds = time.perf_counter() - t
        self._booster = booster
        return self

    def booster(self):
        import lightgbm as lgb

        if getattr(self, "_booster", None) is None:
            self._booster = lgb.Booster(model_str=self.booster_text)
        return self._booster

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        if frame.is_empty():
            return np.zeros(0)
        return self.booster().predict(self.matrix(frame), num_threads=0)

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        """Per-candidate SHAP contributions (rows × features, last column the bias)."""
        return self.booster().predict(self.matrix(frame), pred_contrib=True)


def rank_frame(frame: pl.DataFrame, scores: np.ndarray, k: int) -> pl.DataFrame:
    """Top-k per user by the ranker's score: user_key, product_id, score, rank and the candidate's columns."""
    return (frame.with_columns(pl.Series("score", scores, dtype=pl.Float64))
            .with_columns(pl.col("score").rank("ordinal", descending=True).over("user_key").alias("rank"))
            .filter(pl.col("rank") <= k).sort("user_key", "rank"))


def sources(frame: pl.DataFrame, model_names: list[str], per_model: int) -> pl.Expr:
    """The recall models that listed each candidate, comma-separated."""
    return pl.concat_str([pl.when(pl.col(f"r_{m}") <= per_model).then(pl.lit(m)) for m in model_names],
                         separator=",", ignore_nulls=True).alias("sources")


def labels(frame: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    return frame.join(truth.select("user_key", "product_id", pl.col("grade").alias("label")),
                      on=["user_key", "product_id"], how="left").with_columns(pl.col("label").fill_null(0))
