"""The stage in three calls (what the Dagster assets run): train + register + gate, serve, write.

``train_and_gate`` trains every recall model and the hybrid on the temporal split, registers each
under ``<models_root>/reco_<name>`` with a card (data fingerprint, input partitions,
hyper-parameters, held-out metrics and the evaluation set's fingerprint), then promotes each one
through the gate (quality of every input partition, then NDCG@10 against the current version on
the same evaluation). ``serve`` writes the current hybrid's recommendations and similar items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from governance.labelling.registry import ModelCard, ModelRegistry
from governance.recommendation import gate as G
from governance.recommendation.data import RecoData, Split
from governance.recommendation.recall.base import History
from governance.recommendation.serve import HYBRID_TASK, Served, active_users, recommend_users, similar_items, task_name
from governance.recommendation.train import (
    KS,
    Bundle,
    TrainResult,
    evaluate_bundle,
    load_recall,
    shop_metrics,
    train,
)
from governance.storage import Lake

LAYER = "reco"
METRIC = "ndcg@10"


@dataclass
class StageResult:
    trained: TrainResult
    decisions: list[G.GateDecision]
    versions: dict[str, str]  # task → registered candidate version
    quality: G.QualityVerdict
    fingerprint: str = ""
    evaluation: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def hybrid(self) -> G.GateDecision:
        return next(d for d in self.decisions if d.task == HYBRID_TASK)


def _card(task: str, model_name: str, metrics: dict, split: Split, fingerprint: str, params: dict, n_train: int,
          data: RecoData, extra: dict | None = None) -> ModelCard:
    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and v == v}
    return ModelCard(task=task, model_name=model_name, metrics=clean, eval_set=split.fingerprint(),
                     training_data=fingerprint, hyperparameters=params, n_train=n_train,
                     notes={"input_partitions": data.partitions, "cutoff": split.cutoff.isoformat(),
                            "held_out_days": [d.isoformat() for d in split.test_days], **(extra or {})})


def _rescore_recall(split: Split, name: str) -> Callable[[Path], float]:
    def run(path: Path) -> float:
        model = load_recall(path)
        users = split.test["user_key"].unique().sort().to_list()
        hist = History.build(split.train, model.items, users, split.cutoff)
        return shop_metrics(model.recommend(hist, max(KS)), split, len(model.items))[METRIC]
    return run


def _rescore_bundle(split: Split) -> Callable[[Path], float]:
    return lambda path: evaluate_bundle(Bundle.load(path), split)[0][METRIC]


def train_and_gate(data: RecoData, registry: ModelRegistry, checks: pl.DataFrame, *, holdout_days: int = 1,
                   require_results: bool | str = "checked_tables", log: Callable[[str], None] = lambda _: None,
                   **train_kwargs) -> StageResult:
    """Train, register every model with its card, and promote each only through the gate."""
    fingerprint = data.fingerprint()
    verdict = G.quality_verdict(checks, data.partitions, require_results=require_results)
    log(f"quality gate: {verdict.reason}")
    trained = train(data, holdout_days=holdout_days, log=log, **train_kwargs)
    split = trained.split
    n_train = trained.split.train.interactions.height
    rows = {r["model"]: r for r in trained.metrics.to_dicts()}
    decisions, versions = [], {}
    models = {**trained.bundle.recalls, **trained.extra}
    for name, model in models.items():
        task = task_name(name)
        card = _card(task, f"{model.name}", rows[name], split, fingerprint, model.params, n_train, data)
        version = registry.register(task, model.save, card)
        versions[task] = version
        decisions.append(G.promote(registry, task, version, verdict, METRIC,
                                   evaluate_current=_rescore_recall(split, name)))
    bundle = trained.bundle
    card = _card(HYBRID_TASK, "recall→filter→rank (LightGBM LambdaRank)", rows["hybrid"], split, fingerprint,
                 {"recalls": {n: m.params for n, m in bundle.recalls.items()}, "per_model": bundle.per_model,
                  "ranker": bundle.ranker.params, "rounds": bundle.ranker.rounds}, n_train, data,
                 {"feature_importance_gain": dict(list(bundle.ranker.importance.items())[:15])})
    version = registry.register(HYBRID_TASK, bundle.save, card)
    versions[HYBRID_TASK] = version
    decisions.append(G.promote(registry, HYBRID_TASK, version, verdict, METRIC,
                               evaluate_current=_rescore_bundle(split)))
    for d in decisions:
        log(f"{d.task} {d.candidate}: {d.reason}")
    evaluation = trained.metrics.with_columns(
        pl.lit(split.cutoff).alias("cutoff"), pl.lit(split.fingerprint()).alias("eval_set"),
        pl.col("model").map_elements(lambda m: versions.get(task_name(m) if m != "hybrid" else HYBRID_TASK, ""),
                                     return_dtype=pl.String).alias("version"),
        pl.col("model").map_elements(
            lambda m: next((d.promoted for d in decisions
                            if d.task == (task_name(m) if m != "hybrid" else HYBRID_TASK)), False),
            return_dtype=pl.Boolean).alias("promoted"))
    return StageResult(trained, decisions, versions, verdict, fingerprint, evaluation)


def current_bundle(registry: ModelRegistry) -> tuple[Bundle, str] | None:
    version = registry.current(HYBRID_TASK)
    if version is None:
        return None
    return Bundle.load(registry.path(HYBRID_TASK, version)), version


def serve(data: RecoData, registry: ModelRegistry, *, k: int = 10, active_days: int = 30) -> Served | None:
    """The current hybrid's top-k for every active user (None when no model was ever promoted)."""
    current = current_bundle(registry)
    if current is None:
        return None
    bundle, version = current
    return recommend_users(bundle, data, active_users(data, active_days), k, version=version)


def run_training(lake: Lake, registry: ModelRegistry, store=None, *, checks: pl.DataFrame | None = None,
                 require_results: bool | str = "checked_tables", log: Callable[[str], None] = lambda _: None,
                 **train_kwargs) -> StageResult:
    """Load the integrated tables, read their check results, train + register + gate, write reco.evaluation.

    ``store``: the quality store whose results gate promotion (``checks`` instead, for tests).
    """
    from governance.recommendation.data import load
    from governance.recommendation.train import extra_recalls

    train_kwargs.setdefault("extra", extra_recalls())  # implicit ALS/BPR measured beside the hybrid's recalls
    data = load(lake)
    if checks is None:
        checks = G.stored_checks(store, data.partitions) if store is not None else G.checks_frame([])
    result = train_and_gate(data, registry, checks, require_results=require_results, log=log, **train_kwargs)
    write_tables(lake, evaluation=result.evaluation.with_columns(pl.col("cutoff").cast(pl.Date)))
    return result


@dataclass
class ServingResult:
    served: Served | None
    similar: pl.DataFrame
    version: str | None
    reason: str = ""


def run_serving(lake: Lake, registry: ModelRegistry, *, k: int = 10, similar_k: int = 10,
                active_days: int = 30) -> ServingResult:
    """The current hybrid's top-k for every active user and top-k similar items, written to the lake."""
    from governance.recommendation.data import load

    current = current_bundle(registry)
    if current is None:
        return ServingResult(None, pl.DataFrame(), None, "no reco_hybrid model was ever promoted: nothing is served")
    bundle, version = current
    data = load(lake)
    served = recommend_users(bundle, data, active_users(data, active_days), k, version=version)
    similar = similar_items(bundle, similar_k)
    write_tables(lake, recommendations=served.recommendations, similar_items=similar,
                 filter_counts=served.filter_counts)
    return ServingResult(served, similar, version)


def summary_lines(registry: ModelRegistry, indent: str = "   ") -> list[str]:
    """One line per served recommendation model with its held-out figures (for the demo's summary)."""
    lines = []
    for task in sorted(p.name for p in registry.root.glob("reco_*") if p.is_dir()):
        version = registry.current(task)
        if version is None:
            continue
        card = registry.card(task, version)
        m = card.metrics
        figures = ", ".join(f"{name} {m[name]:.3f}" for name in ("ndcg@10", "recall@10", "hr@10", "mrr@10",
                                                                 "coverage@10") if name in m)
        lines.append(f"{indent}model {task}: {version} (held out {card.notes.get('held_out_days', ['?'])[0]}: "
                     f"{figures})")
    return lines


def write_tables(lake: Lake, **tables: pl.DataFrame) -> None:
    with lake.transaction():
        for name, frame in tables.items():
            lake.write(LAYER, name, frame)


__all__ = ["LAYER", "METRIC", "ServingResult", "StageResult", "current_bundle", "run_serving", "run_training",
           "serve", "similar_items", "summary_lines", "train_and_gate", "write_tables"]
