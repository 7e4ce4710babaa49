"""The labelling stage over the lake: what each labelling asset does, one function each.

Each function reads its inputs from the lake, runs the model code and writes its output, so the
Dagster assets (``assets/labelling.py``) and scripts share one implementation.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from governance.integration.pipeline import read_all_daily
from governance.storage import Lake

#: the columns that carry a review's sentiment; cleared when the label cannot be trusted
SENTIMENT_COLUMNS = ("sentiment", "sentiment_probability", "p_negative", "p_neutral", "p_positive")


class NothingToTrainOn(ValueError):
    """The stage's input has no materialized partitions."""


def train_sentiment_model(lake: Lake, models_root: Path, setting: str = "demo", *, log_fn=None, progress=None,
                          cache_dir: Path | None = None, other_shops=None):
    """Train on every clean review with readable text (broken UTF-8 excluded); register, promote if better.

    `cache_dir` (``Settings.model_cache``): frozen-encoder vectors cached by content hash, so a re-run on
    mostly the same reviews skips the encoder; `other_shops`: other shops' reviews to add to training
    (``review_sets.load_review_sets``), each scored on its own held-out part."""
    from governance.labelling.workflows import train_sentiment_on_frame

    reviews = read_all_daily(lake, "clean", "reviews")
    if reviews is None or reviews.is_empty():
        raise NothingToTrainOn("clean.reviews has no materialized partitions: nothing to train the sentiment model on")
    usable = reviews.filter(~pl.col("text_damaged") & pl.col("text").is_not_null()).select(
        "review_id", "title", "text", "rating")
    if log_fn:
        log_fn(f"training sentiment ({setting}) on {usable.height:,} clean reviews")
    return train_sentiment_on_frame(usable, "text", "rating", models_root, setting, "title",
                                    source=f"clean.reviews ({usable.height:,} rows)", log_fn=log_fn,
                                    progress=progress, cache_dir=cache_dir, other_shops=other_shops)


def train_intent_model(lake: Lake, models_root: Path, truth_dir: Path | None = None, *, log_fn=None, progress=None):
    """Train the query intent/category model on every clean query (weak labels from clicks and patterns)."""
    from governance.labelling.intent_training import train_intent

    queries = read_all_daily(lake, "clean", "queries")
    if queries is None or queries.is_empty():
        raise NothingToTrainOn("clean.queries has no materialized partitions: nothing to train the intent model on")
    events = lake.scan("clean", "events").select("session_id", "item_id", "event_type", "event_time").collect()
    products = lake.read("clean", "products").filter(pl.col("is_current"))
    truth_file = truth_dir / "queries.parquet" if truth_dir else None  # the generated shop's, when there is one
    truth = pl.read_parquet(truth_file) if truth_file and truth_file.is_file() else None
    return train_intent(queries, products=products, events=events, truth=truth, models_root=models_root,
                        log_fn=log_fn, progress=progress)


def label_reviews_day(lake: Lake, models_root: Path, day: str, *, progress=None) -> pl.DataFrame:
    """``labelled.reviews`` of one day: the promoted model's labels; broken-UTF-8 texts get a reason, not a label."""
    from governance.labelling import label_reviews, load_current_sentiment

    reviews = lake.read("clean", "reviews", day)
    labelled = label_reviews(reviews, load_current_sentiment(models_root), progress=progress)
    damaged = pl.col("text_damaged") & pl.col("sentiment").is_not_null()
    labelled = labelled.with_columns(
        unlabelable_reason=pl.when(damaged).then(pl.lit("broken UTF-8 in the text")).otherwise("unlabelable_reason"),
        **{c: pl.when(damaged).then(None).otherwise(pl.col(c)) for c in SENTIMENT_COLUMNS},
    )
    lake.write("labelled", "reviews", labelled, day)
    return labelled


def label_queries_day(lake: Lake, models_root: Path, day: str, *, progress=None) -> tuple[pl.DataFrame, str]:
    """``labelled.queries`` of one day with the promoted intent model (or one fitted on the day's queries)."""
    from governance.labelling import label_queries
    from governance.labelling.intent import MODEL_VERSION
    from governance.labelling.intent_training import load_current_intent

    queries = lake.read("clean", "queries", day)
    products = lake.read("clean", "products").filter(pl.col("is_current"))
    events = lake.read("clean", "events", day).select("session_id", "item_id", "event_type", "event_time")
    current = load_current_intent(models_root)
    model, version = current if current else (None, "fitted on this day's queries")
    labelled = label_queries(queries, products=products, events=events, model=model,
                             model_version=version if model else MODEL_VERSION, progress=progress)
    lake.write("labelled", "queries", labelled, day)
    return labelled, version


def build_review_audit_table(lake: Lake):
    """``labelled.review_audit`` over every labelled day, and the estimated weak-label noise."""
    from governance.labelling import build_review_audit, estimate_weak_label_noise

    labelled = read_all_daily(lake, "labelled", "reviews")
    if labelled is None or labelled.is_empty():
        raise NothingToTrainOn("labelled.reviews has no materialized partitions")
    audit = build_review_audit(labelled)
    lake.write("labelled", "review_audit", audit)
    return audit, estimate_weak_label_noise(labelled)
