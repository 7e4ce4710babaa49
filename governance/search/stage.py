"""The search stage over a deployment: build the index, evaluate it, write the ``search.*`` tables.

``search.index``            one row per indexed product (the index files are in <data_root>/search/index/)
``search.evaluation``       per data set × method: NDCG@10, MRR, Recall@100, latency p50/p95, build time
``search.evaluation_queries`` the per-query figures behind it
``search.poor_queries``     shop queries for merchandisers: zero results, or a top 100 that misses every
                            product shoppers engaged with
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from governance.search.evaluate import Evaluation, evaluate_crowdflower, evaluate_shop, poor_queries, shop_judgments
from governance.search.index import SearchIndex, ShopIndexBuild, build_shop_index, index_dir

LAYER = "search"
CROWDFLOWER = "crowdflower_search_relevance"
ESCI = "esci_judgments_sample"
#: shop queries evaluated (the most frequent distinct texts) and queries timed
SHOP_QUERIES = 1000
LATENCY_QUERIES = 50


def read_days(lake, layer: str, table: str) -> pl.DataFrame | None:
    days = lake.partitions(layer, table)
    if days:
        return pl.concat([lake.read(layer, table, d) for d in days], how="diagonal_relaxed")
    return lake.read(layer, table) if lake.exists(layer, table) else None


def query_cache(settings) -> Path:
    """Query texts → MiniLM vectors, shared by the evaluation and the experiment."""
    return Path(settings.data_root) / "search" / "query_vectors.parquet"


def crowdflower_cache(settings) -> Path:
    return Path(settings.model_cache) / "search" / "crowdflower_embeddings.parquet"


def build_stage_index(settings, *, log=print) -> ShopIndexBuild:
    lake = settings.lake()
    built = build_shop_index(lake, settings.data_root, log=log)
    lake.write(LAYER, "index", built.table)
    settings.catalog().register(LAYER, "index")
    return built


@dataclass
class StageEvaluation:
    summary: pl.DataFrame
    per_query: pl.DataFrame
    poor: pl.DataFrame
    evaluations: list[Evaluation]
    skipped: dict[str, str]
    seconds: float


def evaluate_stage(settings, *, crowdflower: bool | None = None, log=print) -> StageEvaluation:
    """The shop's evaluation always; CrowdFlower's where ``shared_data`` has it.

    CrowdFlower's 9.9k product texts are embedded once into the model cache (minutes on two CPU
    cores); in the demo (``settings.demo``) a cold cache skips it with a note instead of stalling
    the demo — ``python -m governance.search`` fills the cache.
    """
    t0 = time.perf_counter()
    lake = settings.lake()
    index = SearchIndex.load(index_dir(settings.data_root))
    evaluations, skipped = [], {}
    clicks = read_days(lake, "integrated", "query_clicks")
    if clicks is not None and clicks.height:
        evaluations.append(evaluate_shop(index, clicks, max_queries=SHOP_QUERIES, latency_queries=LATENCY_QUERIES,
                                         query_cache=query_cache(settings), log=log))
    else:
        skipped["shop"] = "no integrated.query_clicks"
    cf_dir = Path(settings.shared_data) / CROWDFLOWER if settings.shared_data else None
    cache = crowdflower_cache(settings)
    if cf_dir is None or not cf_dir.exists():
        skipped["crowdflower"] = f"real judgments not found ({cf_dir or 'shared_data unset'})"
    elif crowdflower is False or (crowdflower is None and settings.demo and not cache.exists()):
        skipped["crowdflower"] = ("embedding cache cold (demo); run `python -m governance.search` once to embed its "
                                  "9.9k product texts")
    else:
        evaluations.append(evaluate_crowdflower(cf_dir, cache_path=cache, latency_queries=LATENCY_QUERIES, log=log))
    esci = Path(settings.shared_data) / ESCI if settings.shared_data else None
    if esci is not None and esci.exists():
        # its 6,678 E/S/C/I judgments name products by ASIN only: without titles there is nothing to rank
        skipped["esci"] = ("judgments without product texts (the sample keeps query, ASIN and label only): "
                           "not evaluated; the published full-set figures stand as anchors")
    summary = pl.concat([e.summary for e in evaluations]) if evaluations else pl.DataFrame()
    per_query = (pl.concat([e.per_query.with_columns(pl.lit(e.dataset).alias("dataset"))
                            for e in evaluations], how="diagonal_relaxed") if evaluations else pl.DataFrame())
    shop = next((e for e in evaluations if e.dataset == "shop"), None)
    queries = read_days(lake, "clean", "queries")
    poor = (poor_queries(shop.per_query, shop_judgments(clicks), queries) if shop is not None
            else pl.DataFrame(schema={"query": pl.String, "searches": pl.Int64, "problem": pl.String}))
    for table, frame in (("evaluation", summary), ("evaluation_queries", per_query), ("poor_queries", poor)):
        if frame.width:
            lake.write(LAYER, table, frame)
            settings.catalog().register(LAYER, table)
    return StageEvaluation(summary, per_query, poor, evaluations, skipped, time.perf_counter() - t0)


def hybrid_beats_parts(summary: pl.DataFrame, metric: str = "ndcg@10") -> dict[str, bool]:
    """Per data set: does the hybrid beat both BM25 and MiniLM on ``metric``?"""
    out = {}
    for ds in summary["dataset"].unique(maintain_order=True).to_list():
        s = summary.filter(pl.col("dataset") == ds)
        v = {m: s.filter(pl.col("method") == m)[metric].item() for m in ("bm25", "dense", "hybrid")}
        out[ds] = bool(np.isfinite(v["hybrid"]) and v["hybrid"] > max(v["bm25"], v["dense"]))
    return out
