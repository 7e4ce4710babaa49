"""Recommendation stage: recall → filter → rank models trained on the integrated tables, gated by their
quality, served as ``reco.recommendations`` / ``reco.similar_items``, and judged on public protocols.

Every asset body is one call into ``governance.recommendation``; the assets are snapshots (they
read every materialized day).
"""

import dagster as dg
import polars as pl

from assets.metadata import counts_table, markdown_table, reasons_list, table_schema
from assets.resources import ModelRegistryResource, QualityStoreResource, WarehouseResource
from governance.settings import Settings
from governance.recommendation.evaluate import run_public
from governance.recommendation.pipeline import run_serving, run_training

GROUP = "recommendation"
OWNERS = ["team:recommendations"]
KINDS = {"polars", "lightgbm", "scipy"}
TAGS = {"layer": "reco", "stage": "recommendation"}
SHOWN = ["model", "ndcg@10", "recall@10", "mrr@10", "hr@10", "ndcg@20", "recall@20", "coverage@10",
         "popularity_percentile@10", "cold_item_recall@20", "fit_s", "users_per_s", "version", "promoted"]

INPUTS = [dg.AssetKey(["integrated", t]) for t in ("interactions", "sessions", "products", "users",
                                                   "embedding_cache", "catalog_findings", "product_keys")]


def key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["reco", name])


@dg.asset(
    key=key("models"), group_name=GROUP, deps=INPUTS, kinds=KINDS, owners=OWNERS, tags=TAGS,
    description=(
        "Trains every recall model (time-decayed popularity overall and per category, SAR-style item-item, EASE, "
        "V-SKNN, MiniLM content from the integration stage's embedding cache; implicit ALS/BPR measured beside "
        "them) and the hybrid (union of their candidates ranked by LightGBM LambdaRank) on a temporal split (last "
        "day held out), registers each under `models/reco_<name>` with a card, and promotes each only if every "
        "input partition passed its blocking checks (quality store) and it beats the current version's NDCG@10 "
        "on the same evaluation. Writes reco.evaluation."),
)
def reco_models(context: dg.AssetExecutionContext, warehouse: WarehouseResource, models: ModelRegistryResource,
                quality_store: QualityStoreResource) -> dg.MaterializeResult:
    result = run_training(warehouse.lake, models.registry, quality_store.store, log=context.log.info)
    hybrid = result.hybrid
    (context.log.info if hybrid.promoted else context.log.warning)(f"reco_hybrid: {hybrid.reason}")
    table = result.evaluation.select([c for c in SHOWN if c in result.evaluation.columns]).with_columns(
        pl.col(pl.Float64).round(4))
    # the reasons are long sentences: a table of their own (task | reason) rather than a squeezed fifth column
    decisions = pl.DataFrame([d.as_dict() for d in result.decisions]).select(
        "task", "candidate", "current_before", "promoted")
    not_promoted = {d.task: d.reason for d in result.decisions if not d.promoted}
    promoted = {d.task: d.reason for d in result.decisions if d.promoted}
    return dg.MaterializeResult(metadata={
        "metrics (held-out day)": markdown_table(table, rows=20),
        "promotion decisions": markdown_table(decisions, rows=20),
        "why not promoted": reasons_list(not_promoted),
        "why promoted": reasons_list(promoted),
        "quality gate": result.quality.reason,
        "failed blocking checks": dg.MetadataValue.md("\n".join(
            f"- `{r['table']}` [{r['partition']}]: {r['check_name']}" for r in result.quality.failures.to_dicts())
            or "_none_"),
        "hybrid_version": result.versions.get("reco_hybrid", ""),
        "hybrid_promoted": hybrid.promoted,
        "hybrid_ndcg@10": round(float(result.trained.metric("hybrid")), 4),
        "best_single": "{} (ndcg@10 {})".format(*_best(result.evaluation)),
        "held_out_day": ", ".join(d.isoformat() for d in result.trained.split.test_days),
        "training_data_fingerprint": result.fingerprint,
        "ranker_importance (gain)": counts_table(
            {k: round(v, 1) for k, v in list(result.trained.bundle.ranker.importance.items())[:12]}, "feature", "gain"),
        "timings_s": counts_table({k: round(v, 1) for k, v in result.trained.timings.items()}, "step", "seconds"),
    })


def _best(evaluation: pl.DataFrame) -> tuple[str, float]:
    singles = evaluation.filter(pl.col("model") != "hybrid").sort("ndcg@10", descending=True)
    return singles["model"][0], round(float(singles["ndcg@10"][0]), 4)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key("recommendations"), group_name=GROUP, deps=[key("models"), *INPUTS], kinds={"polars"},
                     owners=OWNERS, tags=TAGS,
                     description="Top-10 per active user from the promoted reco_hybrid: rank, score, the recall "
                                 "models that proposed each item, the model versions and the filters that acted."),
        dg.AssetSpec(key("similar_items"), group_name=GROUP, deps=[key("models")], kinds={"polars"}, owners=OWNERS,
                     tags=TAGS, description="Top-10 similar products per product: item-item co-occurrence, MiniLM "
                                            "content similarity for products without co-occurrences."),
    ],
    can_subset=False,
)
def reco_serving(context: dg.AssetExecutionContext, warehouse: WarehouseResource, models: ModelRegistryResource):
    result = run_serving(warehouse.lake, models.registry)
    if result.served is None:
        context.log.warning(result.reason)
        yield dg.MaterializeResult(asset_key=key("recommendations"), metadata={"served": False,
                                                                                "reason": result.reason})
        yield dg.MaterializeResult(asset_key=key("similar_items"), metadata={"served": False,
                                                                              "reason": result.reason})
        return
    recs = result.served.recommendations
    catalogue = recs["product_id"].n_unique()
    example_user = recs["user_key"][0] if recs.height else None
    example = recs.filter(pl.col("user_key") == example_user).select("rank", "product_id", pl.col("score").round(3),
                                                                      "sources", "filters")
    yield dg.MaterializeResult(asset_key=key("recommendations"), metadata={
        "dagster/row_count": recs.height,
        "users": result.served.users,
        "model_version": result.version,
        "distinct_products_recommended": catalogue,
        "filters (removed candidates)": markdown_table(result.served.filter_counts.select("rule", "action",
                                                                                         "removed")),
        "example (one user)": markdown_table(example),
        "seconds": round(result.served.seconds, 1),
        "dagster/column_schema": table_schema(recs),
    })
    sim = result.similar
    yield dg.MaterializeResult(asset_key=key("similar_items"), metadata={
        "dagster/row_count": sim.height,
        "products": sim["product_id"].n_unique() if sim.height else 0,
        "by_source": dg.MetadataValue.json(dict(sim.group_by("source").len().iter_rows()) if sim.height else {}),
        "preview": markdown_table(sim.head(10)),
    })


@dg.asset(
    key=key("public_evaluation"), group_name=GROUP, kinds={"polars", "scipy"}, owners=OWNERS, tags=TAGS,
    description=(
        "The same model families on public data with published protocols: MovieLens-100k (Microsoft Recommenders: "
        "75/25 stratified by item, seed 42, k=10; published NDCG@10 SAR 0.382–0.394, BPR 0.442–0.445, BiVAE "
        "0.469–0.475) and session next-item HR@20/MRR@20 on the YOOCHOOSE and DIGINETICA samples. Skipped when the "
        "shared data is absent."),
)
def public_evaluation(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    table = run_public(warehouse.config.shared_data, warehouse.lake, log=context.log.info)
    if table.is_empty():
        return dg.MaterializeResult(metadata={"skipped": "no shared data (settings.shared_data)"})
    return dg.MaterializeResult(metadata={
        "results": markdown_table(table.drop("anchor", "params").with_columns(pl.col(pl.Float64).round(4)), rows=20),
        "anchors": dg.MetadataValue.json(sorted(set(table["anchor"].to_list()))),
    })


def stage_definitions(daily: dg.PartitionsDefinition, settings: Settings) -> dg.Definitions:  # noqa: ARG001
    """Models (trained, evaluated, gated), served tables and the public evaluation."""
    return dg.Definitions(assets=[reco_models, reco_serving, public_evaluation])
