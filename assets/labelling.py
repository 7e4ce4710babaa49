"""Labelling stage: the sentiment model, labelled reviews and queries, and the review audit queue."""

import dagster as dg
import polars as pl
from pydantic import Field

from assets.metadata import contract_descriptions, counts_table, markdown_table, table_schema
from assets.resources import ModelRegistryResource, WarehouseResource
from governance.settings import Settings
from governance.labelling.stage import (
    NothingToTrainOn,
    build_review_audit_table,
    label_queries_day,
    label_reviews_day,
    train_intent_model,
    train_sentiment_model,
)

GROUP = "labelling"
OWNERS = ["team:search-relevance"]

#: the columns labelling adds, described in the UI's Columns table (the source columns come from the contracts)
LABEL_COLUMNS = {
    "sentiment": "negative | neutral | positive; null when the text cannot be labelled",
    "sentiment_probability": "the model's probability of that sentiment",
    "p_negative": "probability of negative",
    "p_neutral": "probability of neutral",
    "p_positive": "probability of positive",
    "model_name": "the model that labelled the row",
    "model_version": "its version in the model registry (data/models/TASK/VERSION)",
    "labelled_at": "when the row was labelled (UTC)",
    "unlabelable_reason": "why no label was given (empty, emoji-only, not English, too long, broken text); else null",
    "intent": "product | category | brand | deal | support",
    "intent_probability": "probability of that intent",
    "intent_source": "what decided the intent: the model, or a high-precision rule",
    "category": "the most likely leaf category of the shop's tree",
    "category_probability": "probability of that leaf",
    "category_source": "the evidence behind the category (names, catalog texts, clicks)",
    "category_confident": "the deepest category at least 50 % likely: the leaf, else an ancestor",
    "category_level": "whether category_confident is the leaf or an ancestor (and its depth)",
    "top_categories": "the k best categories with scores (only with top-k set)",
}


class SentimentTraining(dg.Config):
    """`demo` trains a head on the frozen encoder in about a minute; `full` fine-tunes the encoder; `upper`
    fine-tunes its top two layers (``governance train-sentiment --help`` explains each)."""

    setting: str = Field(
        default="demo",
        description="training recipe: demo (frozen MiniLM + small head stacked with TF-IDF and the VADER "
                    "lexicon, under a minute for the demo shop), budget (whole encoder fine-tuned on at most 4,000 "
                    "of the shop's reviews and stacked the same way, ~7 min on 2 CPU cores; what `governance "
                    "train-sentiment` uses), full (budget on every review, ~18 min for ~24k reviews) or upper "
                    "(top 2 encoder layers fine-tuned over cached lower-layer states)")


def _progress(context, what: str):
    """Progress in the run log: a line at every tenth of the work."""
    state = {"next": 0.1}

    def report(done: int, total: int) -> None:
        if total and done / total >= state["next"]:
            context.log.info(f"{what}: {done:,}/{total:,} ({done / total:.0%})")
            state["next"] = (int(done / total * 10) + 1) / 10

    return report


def _train(fn, *args, **kwargs):
    """Run a training step; an empty input is a clear Dagster failure, not a traceback."""
    try:
        return fn(*args, **kwargs)
    except NothingToTrainOn as exc:
        raise dg.Failure(str(exc)) from None


@dg.asset(
    key=["models", "sentiment"],
    group_name=GROUP,
    deps=[dg.AssetKey(["clean", "reviews"])],
    kinds={"pytorch", "transformers"},
    owners=OWNERS,
    description=(
        "Review sentiment model (negative / neutral / positive) on all-MiniLM-L6-v2, trained with weak labels "
        "from star ratings on every clean review (broken text excluded). Each training run is a versioned "
        "artifact under `data/models/sentiment/<version>/` with its metrics, training-data fingerprint, "
        "hyper-parameters and code version; it is promoted only if it beats the current model on the held-out "
        "20% evaluation split (random_state=0, stratified by rating)."
    ),
    tags={"layer": "models", "stage": "labelling"},
)
def sentiment_model(context: dg.AssetExecutionContext, config: SentimentTraining,
                    warehouse: WarehouseResource, models: ModelRegistryResource) -> dg.MaterializeResult:
    result = _train(train_sentiment_model, warehouse.lake, models.root, config.setting, log_fn=context.log.info,
                    progress=_progress(context, "training"), cache_dir=warehouse.config.model_cache)
    (context.log.info if result.promoted else context.log.warning)(result.reason)
    from governance.labelling.figures import (
        markdown_image,
        metrics_markdown,
        model_card_markdown,
        per_domain_markdown,
    )

    pictures = {f"{name} (held-out split)": dg.MetadataValue.md(markdown_image(path, name))
                for name, path in (result.figures or {}).items()}
    # single figures as numbers too: the asset's Plots tab draws each across training runs
    trend = {f"{k} (held-out)": float(result.metrics[k]) for k in ("macro_f1", "balanced_accuracy", "ece")
             if isinstance(result.metrics.get(k), int | float)}
    return dg.MaterializeResult(metadata={
        "model card": dg.MetadataValue.md(model_card_markdown(result)),
        "version": result.version,
        "promoted": result.promoted,
        "decision": result.reason,
        "setting": result.setting,
        "title_used": result.title_used,
        "metrics (held-out split)": dg.MetadataValue.md(metrics_markdown(result.metrics)),
        **trend,
        **pictures,
        "per_domain": dg.MetadataValue.md(per_domain_markdown(result.per_domain)),
        "train_rows": result.n_train,
        "eval_rows": result.n_test,
        "train_seconds": round(result.train_seconds, 1),
        "path": dg.MetadataValue.path(result.model_path),
    })


@dg.asset(
    key=["models", "intent"],
    group_name=GROUP,
    deps=[dg.AssetKey(["clean", "queries"]), dg.AssetKey(["clean", "events"]), dg.AssetKey(["clean", "products"])],
    kinds={"scikitlearn", "transformers"},
    owners=OWNERS,
    description=(
        "Search-query intent and category model: logistic regression on MiniLM query embeddings trained from weak "
        "labels (patterns, and the categories of items clicked after the query) plus category prototypes, fitted "
        "on every clean query but a fixed fifth (by hash of query_id) held out for evaluation. Each run is a "
        "versioned artifact under `data/models/intent/<version>/` and is promoted only if its intent macro-F1 beats "
        "the current model's on that held-out set."
    ),
    tags={"layer": "models", "stage": "labelling"},
)
def intent_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 models: ModelRegistryResource) -> dg.MaterializeResult:
    result = _train(train_intent_model, warehouse.lake, models.root, warehouse.config.truth_dir,
                    log_fn=context.log.info, progress=_progress(context, "embedding queries"))
    (context.log.info if result.promoted else context.log.warning)(result.reason)
    return dg.MaterializeResult(metadata={
        "version": result.version,
        "promoted": result.promoted,
        "decision": result.reason,
        "metrics (held-out fifth)": counts_table(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in result.metrics.items()}, "metric", "value"),
        "evaluated_against": result.evaluated_against,
        "train_rows": result.n_train,
        "eval_rows": result.n_eval,
        "train_seconds": round(result.train_seconds, 1),
        "path": dg.MetadataValue.path(result.model_path),
    })


def _label_summary(labelled: pl.DataFrame, label: str, probability: str) -> dict:
    counts = labelled.group_by(pl.col(label).fill_null("(unlabelable)")).len().sort("len", descending=True)
    reasons = labelled.filter(pl.col("unlabelable_reason").is_not_null()).group_by("unlabelable_reason").len()
    return {
        "labels": counts_table(dict(zip(counts[label].to_list(), counts["len"].to_list(), strict=True)), label),
        "unlabelable_reasons": counts_table(
            dict(zip(reasons["unlabelable_reason"].to_list(), reasons["len"].to_list(), strict=True)), "reason"),
        "mean_probability": round(float(labelled[probability].mean() or 0.0), 4),
        "low_confidence_rows": int((labelled[probability] < 0.5).sum()),
    }


def daily_labelling_assets(daily: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The labelled tables, one partition per day."""

    @dg.asset(
        key=["labelled", "reviews"],
        group_name=GROUP,
        partitions_def=daily,
        deps=[dg.AssetKey(["clean", "reviews"]), sentiment_model.key],
        kinds={"pytorch", "polars", "parquet"},
        owners=OWNERS,
        description=(
            "Every clean review with its sentiment, the probability of each class, the model name and version and "
            "when it was labelled. Texts that cannot be labelled (empty, emoji-only, not English, absurdly long, broken "
            "UTF-8) get an explicit unlabelable_reason instead of a guess."
        ),
        tags={"layer": "labelled", "stage": "labelling"},
    )
    def labelled_reviews(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                         models: ModelRegistryResource) -> dg.MaterializeResult:
        labelled = label_reviews_day(warehouse.lake, models.root, context.partition_key,
                                     progress=_progress(context, "labelling reviews"))
        warehouse.catalog.register("labelled", "reviews")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": labelled.height,
            "model_version": str(labelled["model_version"].drop_nulls().first() or ""),
            **_label_summary(labelled, "sentiment", "sentiment_probability"),
            "dagster/column_schema": table_schema(labelled, {**contract_descriptions("reviews"), **LABEL_COLUMNS}),
            "preview": markdown_table(labelled, columns=["review_id", "rating", "sentiment", "sentiment_probability",
                                                         "unlabelable_reason", "text"]),
        })

    @dg.asset(
        key=["labelled", "queries"],
        group_name=GROUP,
        partitions_def=daily,
        deps=[dg.AssetKey(["clean", "queries"]), dg.AssetKey(["clean", "events"]), dg.AssetKey(["clean", "products"]),
              intent_model.key],
        kinds={"pytorch", "polars", "parquet"},
        owners=OWNERS,
        description=(
            "Every clean search query with its intent (product, category, brand, deal, support) and a leaf category "
            "of the shop's own tree, each with a probability, from the promoted intent model (models/intent) plus the "
            "high-precision patterns and the day's own clicks; zero-shot similarity to category names for categories "
            "nobody clicked. Without a promoted model the day's queries train one on the fly (model_version says so)."
        ),
        tags={"layer": "labelled", "stage": "labelling"},
    )
    def labelled_queries(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                         models: ModelRegistryResource) -> dg.MaterializeResult:
        labelled, version = label_queries_day(warehouse.lake, models.root, context.partition_key,
                                              progress=_progress(context, "labelling queries"))
        warehouse.catalog.register("labelled", "queries")
        intents = labelled.group_by(pl.col("intent").fill_null("(unlabelable)")).len().sort("len", descending=True)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": labelled.height,
            "model_version": version,
            **_label_summary(labelled, "intent", "intent_probability"),
            "intents": counts_table(dict(zip(intents["intent"].to_list(), intents["len"].to_list(), strict=True)), "intent"),
            "dagster/column_schema": table_schema(labelled, {**contract_descriptions("queries"), **LABEL_COLUMNS}),
            "preview": markdown_table(labelled, columns=["query_text", "intent", "intent_probability", "category",
                                                         "category_probability"]),
        })

    return [labelled_reviews, labelled_queries]


@dg.asset(
    key=["labelled", "review_audit"],
    group_name=GROUP,
    deps=[dg.AssetKey(["labelled", "reviews"])],
    kinds={"polars", "parquet"},
    owners=OWNERS,
    description=(
        "Reviews for a person to check, most suspicious first: text the model confidently reads against the star "
        "rating (a 5★ review with clearly negative text and the reverse), labels with low confidence, and the weak "
        "labels confident learning marks as likely wrong — each with its reason and scores. Also estimates the "
        "label-noise rate of star-derived labels."
    ),
    tags={"layer": "labelled", "stage": "labelling"},
)
def review_audit(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    audit, noise = _train(build_review_audit_table, warehouse.lake)
    warehouse.catalog.register("labelled", "review_audit")
    issues = audit.group_by("issue").len().sort("len", descending=True)
    shown = [c for c in ("rank", "issue", "rating", "sentiment", "audit_score", "reason", "text") if c in audit.columns]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": audit.height,
        "by_issue": counts_table(dict(zip(issues["issue"].to_list(), issues["len"].to_list(), strict=True)), "issue"),
        "estimated_label_noise_rate": round(noise.noise_rate, 4),
        "label_noise": dg.MetadataValue.json(noise.as_dict()),
        "top_cases": markdown_table(audit, rows=10, columns=shown),
    })


def stage_definitions(daily: dg.PartitionsDefinition, settings: Settings) -> dg.Definitions:  # noqa: ARG001
    """The models, the labelled tables and the audit queue."""
    return dg.Definitions(assets=[sentiment_model, intent_model, *daily_labelling_assets(daily), review_audit])
