"""Training, evaluating and registering the query intent model (task ``intent`` in the registry).

The evaluation set is fixed by the data, not by chance: the queries whose ``query_id`` hashes into
the last fifth (a stable split, so a query never moves between training and evaluation as days are
added). They are scored against the shop's true intents and categories when a truth table covers
them (the generated shop has one), and otherwise against the high-precision patterns alone
(support / deal / brand) — then the figure is agreement with those patterns, and the card says so.
A new model is promoted only if its intent macro-F1 beats the current model's on the same set (the
current model is re-scored on the candidate's set when the data grew).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from governance.labelling.data import fingerprint
from governance.labelling.intent import (
    MODEL_NAME as INTENT_MODEL_NAME,
    IntentModel,
    evaluate_queries,
    fit_intent_model,
    label_queries,
    weak_intent,
    Catalog,
)
from governance.labelling.registry import ModelCard, ModelRegistry

TASK = "intent"
PROMOTION_METRIC = "intent_macro_f1"
EVAL_SHARE = 5  # one query in EVAL_SHARE is held out


def split_queries(queries: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(training, evaluation) by a stable hash of query_id."""
    held_out = pl.col("query_id").cast(pl.String).hash(seed=0) % EVAL_SHARE == 0
    return queries.filter(~held_out), queries.filter(held_out)


def _pattern_truth(queries: pl.DataFrame, products: pl.DataFrame | None) -> pl.DataFrame:
    """The high-precision pattern labels as a stand-in truth where no real one exists."""
    catalog = Catalog(products)
    labels = [weak_intent(t, catalog)[0] if isinstance(t, str) else None for t in queries["query_text"].to_list()]
    return (queries.select(pl.col("query_id").cast(pl.String), pl.Series("true_intent", labels, dtype=pl.String))
            .filter(pl.col("true_intent").is_in(["support", "deal", "brand"])))


@dataclass
class IntentTrainResult:
    version: str
    promoted: bool
    reason: str
    metrics: dict
    evaluated_against: str
    n_train: int
    n_eval: int
    train_seconds: float
    model_path: str

    def as_dict(self) -> dict:
        return asdict(self)


def train_intent(queries: pl.DataFrame, *, products: pl.DataFrame | None = None, events: pl.DataFrame | None = None,
                 truth: pl.DataFrame | None = None, models_root: Path | str = "data/models",
                 log_fn=print, progress=None) -> IntentTrainResult:
    """Fit on the training part, score on the held-out part, register, promote if better."""
    train, held_out = split_queries(queries)
    if train.is_empty() or held_out.is_empty():
        raise ValueError(f"{queries.height} queries are too few to train and evaluate an intent model")
    t0 = time.perf_counter()
    model = fit_intent_model(train, products=products, events=events, progress=progress)
    train_seconds = time.perf_counter() - t0
    log_fn(f"intent model fitted on {train.height:,} queries ({model.n_weak_labels:,} weak labels, "
           f"{int(model.category_seen.sum())}/{len(model.categories)} categories with catalog or click evidence) in {train_seconds:.0f}s")

    covered = truth is not None and held_out.join(truth.select(pl.col("query_id").cast(pl.String)),
                                                  on="query_id", how="semi").height == held_out.height
    reference = (truth if covered else _pattern_truth(held_out, products)).with_columns(
        pl.col("query_id").cast(pl.String)).join(held_out.select(pl.col("query_id").cast(pl.String)),
                                                 on="query_id", how="semi")
    against = "the shop's true intents and categories" if covered else \
        "the high-precision patterns (support / deal / brand) only: agreement, not accuracy"

    def score(m: IntentModel) -> dict:
        labelled = label_queries(held_out, products=products, events=events, model=m)
        return evaluate_queries(labelled, reference)

    metrics = {k: v for k, v in score(model).items() if v is not None}
    log_fn(f"held-out ({held_out.height:,} queries, against {against}): "
           + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
    eval_ids = reference["query_id"].cast(pl.String).to_list()
    card = ModelCard(task=TASK, model_name=INTENT_MODEL_NAME, metrics=metrics,
                     eval_set=fingerprint(eval_ids, reference["true_intent"].to_list()),
                     training_data=fingerprint(train["query_id"].cast(pl.String).to_list(),
                                               train["query_text"].to_list()),
                     hyperparameters={"tau": model.tau, "classifier": "logistic regression, C=2.0",
                                      "eval_share": f"1/{EVAL_SHARE} by hash of query_id"},
                     base_model="all-MiniLM-L6-v2", n_train=train.height,
                     notes={"evaluated_against": against, "n_eval": held_out.height,
                            "weak_labels": model.n_weak_labels, "categories": len(model.categories),
                            "categories_with_clicks": int(model.category_seen.sum()),
                            "category_evidence": (model.category_model.evidence if model.category_model is not None
                                                  else "names")})
    reg = ModelRegistry(models_root)
    version = reg.register(TASK, model.save, card)
    decision = reg.promote_if_better(TASK, version, PROMOTION_METRIC,
                                     evaluate_current=lambda path: score(IntentModel.load(path))[PROMOTION_METRIC])
    log_fn(decision.reason)
    return IntentTrainResult(version=version, promoted=decision.promoted, reason=decision.reason, metrics=metrics,
                             evaluated_against=against, n_train=train.height, n_eval=held_out.height,
                             train_seconds=train_seconds, model_path=str(reg.path(TASK, version)))


def load_current_intent(models_root: Path | str = "data/models") -> tuple[IntentModel, str] | None:
    """The promoted intent model and its version, or None when none was trained yet."""
    reg = ModelRegistry(models_root)
    version = reg.current(TASK)
    return None if version is None else (IntentModel.load(reg.path(TASK, version)), version)
