"""Training and the shop's held-out evaluation: every recall model, then the hybrid (recall → rank).

``train(data)`` splits by time (the last day held out), fits each recall model on the days before,
trains the ranker on the window before that (labels from the last training day), and measures every
single model and the hybrid on the held-out day with the same metrics. The result carries the
fitted bundle (recalls + ranker) that is registered, gated and — once promoted — served.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from governance.recommendation import metrics as M
from governance.recommendation.data import Index, RecoData, Split, temporal_split
from governance.recommendation.rank import Ranker, candidates, features, labels, rank_frame, sources
from governance.recommendation.recall import EASE, KINDS, SKNN, Content, ImplicitMF, ItemKNN, Popularity, Recall
from governance.recommendation.recall.base import History

KS = (10, 20)


def default_recalls() -> dict[str, Recall]:
    """The recall models of the hybrid, by registry name (fresh, unfitted)."""
    return {
        "popularity": Popularity(half_life_days=2.0),
        "popularity_category": Popularity(half_life_days=2.0, per_category=True),
        "itemknn": ItemKNN(similarity="jaccard", half_life_days=7.0, basis="session"),
        "ease": EASE(l2=200.0),
        "sknn": SKNN(k=100, sample_size=500),
        "content": Content(half_life_days=3.0),
    }


def extra_recalls() -> dict[str, Recall]:
    """Measured beside the hybrid's recalls but not part of it (slower or weaker on measurement)."""
    return {"als": ImplicitMF("als", factors=64, iterations=15), "bpr": ImplicitMF("bpr", factors=64, iterations=50)}


def item_space(data: RecoData) -> Index:
    """Every current product and every product with a training interaction."""
    return Index.of(data.products["product_id"].to_list() + data.interactions["product_id"].unique().to_list())


@dataclass
class Bundle:
    """Fitted recalls + ranker in one item space: the artifact that is registered and served."""

    recalls: dict[str, Recall]
    ranker: Ranker
    items: Index
    per_model: int = 30

    def score_candidates(self, data: RecoData, users: list[str], as_of=None) -> tuple[pl.DataFrame, History]:
        hist = History.build(data, self.items, users, as_of)
        cands = candidates(self.recalls, hist, self.per_model)
        if cands.is_empty():
            return cands, hist
        feats = features(cands, data, hist, hist.as_of)
        return feats.with_columns(pl.Series("score", self.ranker.predict(feats), dtype=pl.Float64),
                                  sources(feats, list(self.recalls), self.per_model)), hist

    def recommend(self, data: RecoData, users: list[str], k: int = 10, as_of=None) -> pl.DataFrame:
        scored, _ = self.score_candidates(data, users, as_of)
        if scored.is_empty():
            return scored
        return rank_frame(scored.drop("score"), scored["score"].to_numpy(), k)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, model in self.recalls.items():
            model.save(directory / "recall" / name)
        (directory / "ranker.txt").write_text(self.ranker.booster_text)
        (directory / "bundle.json").write_text(json.dumps({
            "recalls": list(self.recalls), "per_model": self.per_model, "ranker_params": self.ranker.params,
            "ranker_rounds": self.ranker.rounds, "importance": self.ranker.importance}, indent=2, default=str))

    @classmethod
    def load(cls, directory: Path) -> Bundle:
        meta = json.loads((directory / "bundle.json").read_text())
        recalls = {name: load_recall(directory / "recall" / name) for name in meta["recalls"]}
        ranker = Ranker(list(recalls), params=meta["ranker_params"], rounds=meta["ranker_rounds"],
                        booster_text=(directory / "ranker.txt").read_text(), importance=meta.get("importance", {}))
        items = next(iter(recalls.values())).items
        return cls(recalls, ranker, items, meta["per_model"])


def load_recall(directory: Path) -> Recall:
    name = json.loads((directory / "params.json").read_text())["name"]
    return KINDS[name].load(directory)


@dataclass
class TrainResult:
    bundle: Bundle
    split: Split
    metrics: pl.DataFrame  # one row per model (+ hybrid): metrics of the held-out day
    recommendations: dict[str, pl.DataFrame] = field(repr=False, default_factory=dict)  # held-out top-20 lists
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Recall] = field(default_factory=dict)

    def metric(self, model: str, name: str = "ndcg@10") -> float:
        row = self.metrics.filter(pl.col("model") == model)
        return float(row[name][0]) if row.height else float("nan")


def shop_metrics(recs: pl.DataFrame, split: Split, n_items: int) -> dict[str, float]:
    """The shop protocol's figures for one model's top-20 lists on the held-out day."""
    out = M.ranking_metrics(recs, split.test, KS)
    pop = split.train.interactions.group_by("product_id").agg(pl.col("weight").sum().alias("pop"))
    for k in KS:
        out[f"coverage@{k}"] = M.coverage(recs, n_items, k)
        out[f"popularity_percentile@{k}"] = M.popularity_bias(recs, pop, k)
    cold, pairs = M.cold_item_recall(recs, split.test, split.train.interactions["product_id"].unique(), 20)
    out["cold_item_recall@20"] = cold
    out["cold_pairs"] = float(pairs)
    return out


def evaluate_bundle(bundle: Bundle, split: Split, k: int = 20) -> tuple[dict[str, float], pl.DataFrame]:
    """Re-score a (possibly older) bundle on a split: what a promotion compares on the same evaluation."""
    users = split.test["user_key"].unique().sort().to_list()
    recs = bundle.recommend(split.train, users, k, as_of=split.cutoff)
    return shop_metrics(recs, split, len(bundle.items)), recs


def train(data: RecoData, *, holdout_days: int = 1, recalls: dict[str, Recall] | None = None,
          extra: dict[str, Recall] | None = None, per_model: int = 30, ranker_rounds: int = 50, rank_days: int = 1,
          log: Callable[[str], None] = lambda _: None) -> TrainResult:
    timings: dict[str, float] = {}
    split = temporal_split(data, holdout_days)
    items = item_space(data)
    recalls = recalls if recalls is not None else default_recalls()
    extra = extra if extra is not None else {}

    # 1. the ranker's window: for each of the last `rank_days` training days, the recalls fitted on the
    #    days before it and that day's candidates labelled with what the users did on it
    t = time.perf_counter()
    frames, rank_users = [], 0
    for back in range(rank_days):
        days = split.train.days
        if len(days) - back < 2:
            break
        window = temporal_split(split.train, 1, end=days[len(days) - 1 - back])
        early = {name: _fresh(model).fit(window.train, items) for name, model in recalls.items()}
        users = window.test["user_key"].unique().sort().to_list()
        hist = History.build(window.train, items, users, window.cutoff)
        cands = candidates(early, hist, per_model)
        frames.append(labels(features(cands, window.train, hist, window.cutoff), window.test)
                      .with_columns(pl.lit(window.test_days[0]).alias("label_day")))
        rank_users += len(users)
    frame = pl.concat(frames)
    ranker = Ranker(list(recalls), rounds=ranker_rounds).fit(frame)
    timings["ranker_window"] = time.perf_counter() - t
    log(f"ranker trained on {frame.height:,} candidates of {rank_users:,} user-days (labels of "
        f"{', '.join(str(f['label_day'][0]) for f in frames)}) in {timings['ranker_window']:.1f}s")

    # 2. every recall on all training days, each evaluated alone on the held-out day
    rows, recs = [], {}
    test_users = split.test["user_key"].unique().sort().to_list()
    hist = History.build(split.train, items, test_users, split.cutoff)
    fitted = {}
    for name, model in {**recalls, **extra}.items():
        t = time.perf_counter()
        model.fit(split.train, items)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        r = model.recommend(hist, max(KS))
        rec_s = time.perf_counter() - t
        recs[name] = r
        rows.append({"model": name, **shop_metrics(r, split, len(items)), "fit_s": fit_s,
                     "users_per_s": len(test_users) / max(rec_s, 1e-9)})
        fitted[name] = model
        log(f"{name}: ndcg@10 {rows[-1]['ndcg@10']:.4f} (fit {fit_s:.1f}s)")

    # 3. the hybrid: union of the recalls' candidates, ranked
    t = time.perf_counter()
    bundle = Bundle({n: fitted[n] for n in recalls}, ranker, items, per_model)
    r = bundle.recommend(split.train, test_users, max(KS), as_of=split.cutoff)
    rec_s = time.perf_counter() - t
    recs["hybrid"] = r
    rows.append({"model": "hybrid", **shop_metrics(r, split, len(items)), "fit_s": timings["ranker_window"]
                 + sum(fitted[n].fit_seconds for n in recalls), "users_per_s": len(test_users) / max(rec_s, 1e-9)})
    log(f"hybrid: ndcg@10 {rows[-1]['ndcg@10']:.4f}")
    return TrainResult(bundle, split, pl.DataFrame(rows), recs, timings,
                       {n: fitted[n] for n in extra})


def _fresh(model: Recall) -> Recall:
    """An unfitted copy with the same hyper-parameters."""
    return type(model)(**model.params)


def best_single(metrics: pl.DataFrame, metric: str = "ndcg@10") -> tuple[str, float]:
    singles = metrics.filter(pl.col("model") != "hybrid").sort(metric, descending=True)
    return singles["model"][0], float(singles[metric][0])
