"""The labelling stage's domain library: review sentiment, query intent and category, model registry, audit.

No Dagster here. Heavy dependencies (torch, transformers) load only when a model is used, so
importing this package is cheap. The public API:

* reviews:   ``label_reviews(df, model)``, ``load_current_sentiment(models_root)``,
             ``train_sentiment(texts, ratings, setting)``, ``SentimentClassifier``
* queries:   ``label_queries(queries, products=..., events=...)``,
             ``label_query_categories(queries, category_names)``, ``weak_intent``, ``evaluate_queries``
* registry:  ``ModelRegistry`` (``register``, ``promote_if_better`` → ``PromotionDecision``), ``ModelCard``
* audit:     ``build_review_audit(labelled)``, ``estimate_weak_label_noise(labelled)``
* text gate: ``unlabelable_reason(text)``
* CLI:       ``label_reviews_csv``, ``label_queries_csv``, ``train_sentiment_from_csv`` → ``TrainResult``
* evaluation: ``python -m governance.labelling.evaluate --setting full``; benchmark: ``bench/label.py``
"""

from __future__ import annotations

import importlib

from governance.labelling.registry import ModelCard, ModelRegistry, PromotionDecision
from governance.labelling.text import compose_review_text, unlabelable_reason

_LAZY = {
    "label_reviews": "governance.labelling.reviews",
    "SENTIMENT_COLUMNS": "governance.labelling.reviews",
    "SentimentClassifier": "governance.labelling.sentiment",
    "SentimentConfig": "governance.labelling.sentiment",
    "train_sentiment": "governance.labelling.sentiment",
    "config_for": "governance.labelling.sentiment",
    "label_queries": "governance.labelling.intent",
    "label_query_categories": "governance.labelling.intent",
    "weak_intent": "governance.labelling.intent",
    "evaluate_queries": "governance.labelling.intent",
    "INTENTS": "governance.labelling.intent",
    "build_review_audit": "governance.labelling.audit",
    "estimate_weak_label_noise": "governance.labelling.audit",
    "NoiseEstimate": "governance.labelling.audit",
    "load_current_sentiment": "governance.labelling.workflows",
    "label_reviews_csv": "governance.labelling.workflows",
    "label_queries_csv": "governance.labelling.workflows",
    "train_sentiment_from_csv": "governance.labelling.workflows",
    "TrainResult": "governance.labelling.workflows",
    "LabelRunSummary": "governance.labelling.workflows",
    "ModelPackageMissing": "governance.labelling.encoder",
}

__all__ = ["ModelCard", "ModelRegistry", "PromotionDecision", "compose_review_text", "unlabelable_reason", *_LAZY]


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'governance.labelling' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
