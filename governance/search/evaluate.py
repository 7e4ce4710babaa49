"""Search evaluation on real judgments (CrowdFlower) and on the shop's own query clicks.

Metrics (per query, then the mean over queries):

NDCG@10
    ``DCG = Σ_{rank ≤ 10} gain / log2(rank + 1)`` divided by the DCG of the ideal order of the
    query's judged products. Gains are *exponential in the grade*, ``2^grade − 1``:
    CrowdFlower's median rating 1–4 is grade 0–3, so gains 0 / 1 / 3 / 7 (the convention of the
    data set's SOURCE.md, whose BM25 anchor 0.800 and random 0.702 used them); the shop's query
    clicks grade a product 1 when it was viewed or clicked after the query, 2 when added to a cart,
    3 when bought (gains 1 / 3 / 7).
MRR
    1 / rank of the first *relevant* product: CrowdFlower rating 4 (the top grade), the shop any
    product engaged with after the query; 0 when none is ranked.
Recall@100 (shop only)
    share of the query's engaged products in the top 100 of the whole catalogue.

CrowdFlower is scored as a re-ranking of each query's judged products (that is what its
judgments allow); the shop is scored by retrieval over the whole catalogue. Ties keep file order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from governance.search.dense import embed_products, encode_queries, encode_queries_cached
from governance.search.hybrid import RRF_K, fuse_scores
from governance.search.lexical import LexicalIndex

METHODS = ("bm25", "dense", "hybrid")
K = 10
RECALL_DEPTH = 100
#: published and measured figures to print beside ours
ANCHORS = {
    "crowdflower": {"BM25 on titles, SOURCE.md (measured when the data was added)": 0.800,
                    "random order, SOURCE.md": 0.702},
    "esci (full US test set, judged products only, E/S/C/I gains 1/0.1/0.01/0; published)": {
        "BM25": 0.784, "zero-shot all-MiniLM-L6-v2": 0.760, "random": 0.713,
        "fine-tuned MiniLM bi-encoder": 0.821},
}


def exp_gain(grade: pl.Expr) -> pl.Expr:
    return (pl.lit(2.0).pow(grade.cast(pl.Float64)) - 1.0)


# ---------------------------------------------------------------------------------------------
# metrics over frames (no loop over rows)


def ndcg(ranked: pl.DataFrame, judged: pl.DataFrame, k: int = K) -> pl.DataFrame:
    """Per query NDCG@k. ``ranked``: query, rank (1 = best), gain (0 for unjudged); ``judged``: query, gain."""
    dcg = (ranked.filter(pl.col("rank") <= k)
           .group_by("query").agg((pl.col("gain") / (pl.col("rank") + 1).cast(pl.Float64).log(2)).sum().alias("dcg")))
    ideal = (judged.sort(["query", "gain"], descending=[False, True])
             .with_columns(pl.int_range(1, pl.len() + 1).over("query").alias("r"))
             .filter(pl.col("r") <= k)
             .group_by("query").agg((pl.col("gain") / (pl.col("r") + 1).cast(pl.Float64).log(2)).sum().alias("idcg")))
    return (ideal.join(dcg, on="query", how="left")
            .with_columns(pl.when(pl.col("idcg") > 0).then(pl.col("dcg").fill_null(0.0) / pl.col("idcg"))
                          .otherwise(None).alias("ndcg"))
            .select("query", "ndcg"))


def mrr(ranked: pl.DataFrame, queries: pl.Series) -> pl.DataFrame:
    """Per query reciprocal rank of the first row with ``relevant``; 0 for a query without one."""
    first = ranked.filter(pl.col("relevant")).group_by("query").agg(pl.col("rank").min().alias("first"))
    return (pl.DataFrame({"query": queries.unique()}).join(first, on="query", how="left")
            .select("query", (1.0 / pl.col("first")).fill_null(0.0).alias("rr")))


def percentiles(seconds: list[float] | np.ndarray) -> dict[str, float]:
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    if ms.size == 0:
        return {"p50_ms": float("nan"), "p95_ms": float("nan")}
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


# ---------------------------------------------------------------------------------------------
# CrowdFlower: re-rank each query's judged products


def load_crowdflower(path: Path) -> pl.DataFrame:
    """id, query, title, description, rating (1–4), product (index of the distinct title+description)."""
    file = Path(path)
    if file.is_dir():
        file = file / "train_from_folds.csv"
    raw = pl.read_csv(file, schema_overrides={"product_description": pl.String, "product_title": pl.String},
                      )
    raw = raw.with_columns(pl.col("product_description").fill_null(""), pl.col("product_title").fill_null(""))
    frame = raw.select(pl.col("id").cast(pl.Int64), pl.col("query").str.strip_chars(),
                       pl.col("product_title").alias("title"), pl.col("product_description").alias("description"),
                       pl.col("median_relevance").cast(pl.Int64).alias("rating")).sort("id")
    products = frame.select("title", "description").unique(maintain_order=True).with_row_index("product")
    return frame.join(products, on=["title", "description"], how="left", nulls_equal=True).sort("id")


@dataclass
class Evaluation:
    """One data set's figures per method, and the per-query table behind them."""

    dataset: str
    summary: pl.DataFrame  # dataset, method, queries, ndcg@10, mrr, recall@100, p50_ms, p95_ms, build_s
    per_query: pl.DataFrame
    notes: dict[str, object] = field(default_factory=dict)


def _scores_table(judged: pl.DataFrame, score_cols: dict[str, str]) -> pl.DataFrame:
    """Long table: one row per (method, query, candidate) with its rank among the query's candidates."""
    out = []
    for method, col in score_cols.items():
        out.append(judged.select("query", "id", "gain", "relevant", pl.col(col).alias("score"))
                   .with_columns(pl.lit(method).alias("method")))
    long = pl.concat(out)
    return long.with_columns(
        pl.struct(pl.col("score").neg(), pl.col("id")).rank("ordinal").over("method", "query").cast(pl.Int64)
        .alias("rank"))


def evaluate_crowdflower(path: Path, *, cache_path: Path | None = None, random_seeds: int = 20,
                         latency_queries: int = 100, log=print) -> Evaluation:
    """NDCG@10 and MRR of BM25, MiniLM and RRF re-ranking each query's judged products, with latency."""
    frame = load_crowdflower(path)
    products = frame.select("product", "title", "description").unique("product").sort("product")
    t0 = time.perf_counter()
    lexical = LexicalIndex.build(products)
    bm25_build = time.perf_counter() - t0
    cache = pl.read_parquet(cache_path) if cache_path and Path(cache_path).exists() else None
    t0 = time.perf_counter()
    matrix, new_cache, embedded, _ = embed_products(products.rename({"product": "product_id"})
                                                    .with_columns(pl.col("product_id").cast(pl.String)), cache)
    embed_s = time.perf_counter() - t0
    if cache_path and embedded:
        Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
        new_cache.write_parquet(cache_path)
    log(f"crowdflower: {frame.height:,} judgments, {products.height:,} products, {frame['query'].n_unique()} queries; "
        f"embedded {embedded:,} product texts in {embed_s:.1f}s (rest from the cache)")
    queries = frame["query"].unique(maintain_order=True)
    qvec = encode_queries(queries.to_list())
    qpos = {q: i for i, q in enumerate(queries.to_list())}
    # BM25: one score vector per query over the whole file's products (IDF over the distinct texts)
    pidx = frame["product"].to_numpy()
    qidx = frame["query"].replace_strict(qpos, return_dtype=pl.Int64).to_numpy()
    dense = (qvec[qidx] * matrix[pidx]).sum(axis=1).astype(np.float64)
    bm25 = np.zeros(frame.height, dtype=np.float64)
    hybrid = np.zeros(frame.height, dtype=np.float64)
    for q, i in qpos.items():  # one sparse row sum and one fusion per query (261), not a loop over pairs
        rows = np.flatnonzero(qidx == i)
        bm25[rows] = lexical.scores(q)[pidx[rows]]
        hybrid[rows] = fuse_scores(bm25[rows], dense[rows], lexical.coverage(q))
    judged = frame.with_columns(pl.Series("bm25", bm25), pl.Series("dense", dense), pl.Series("hybrid", hybrid),
                                exp_gain(pl.col("rating") - 1).alias("gain"), (pl.col("rating") == 4).alias("relevant"))
    judged = judged.with_columns(_rrf_expr())
    rng = np.random.default_rng(0)
    score_cols = {"bm25": "bm25", "dense": "dense", "hybrid": "hybrid", "rrf": "rrf"}
    per_query = _per_query(judged, score_cols)
    # random order: the mean of `random_seeds` shuffles
    rand = []
    for s in range(random_seeds):
        shuffled = judged.with_columns(pl.Series("random", rng.random(judged.height)))
        rand.append(_per_query(shuffled, {"random": "random"}).with_columns(pl.lit(s).alias("seed")))
    rand_q = (pl.concat(rand).group_by("query", "method").agg(pl.col("ndcg").mean(), pl.col("rr").mean()))
    per_query = pl.concat([per_query, rand_q.select(per_query.columns)])
    lat = _latency_crowdflower(lexical, matrix, queries.to_list()[:latency_queries])
    summary = _summary("crowdflower", per_query, lat, {"bm25": bm25_build, "dense": embed_s,
                                                       "hybrid": bm25_build + embed_s})
    return Evaluation("crowdflower", summary, per_query,
                      notes={"judgments": frame.height, "queries": queries.len(), "products": products.height,
                             "gains": "2^(rating-1)-1: 0/1/3/7", "relevant_for_mrr": "rating 4",
                             "embedded_now": embedded})


def _rrf_expr() -> pl.Expr:
    """The previous hybrid, kept as a reference row: RRF over each query's candidates; a candidate with
    BM25 0 (no query word) is not retrieved by BM25."""
    r_b = pl.when(pl.col("bm25") > 0).then(pl.col("bm25").rank("min", descending=True).over(
        pl.col("query"), pl.col("bm25") > 0))
    r_d = pl.col("dense").rank("min", descending=True).over("query")
    return ((1.0 / (RRF_K + r_b)).fill_null(0.0) + 1.0 / (RRF_K + r_d)).alias("rrf")


def _per_query(judged: pl.DataFrame, score_cols: dict[str, str]) -> pl.DataFrame:
    long = _scores_table(judged, score_cols)
    rows = []
    for method in score_cols:
        m = long.filter(pl.col("method") == method)
        nd = ndcg(m.select("query", "rank", "gain"), m.select("query", "gain"))
        rr = mrr(m.select("query", "rank", "relevant"), m["query"])
        rows.append(nd.join(rr, on="query", how="full", coalesce=True).with_columns(pl.lit(method).alias("method")))
    return pl.concat(rows).select("method", "query", "ndcg", "rr")


def _latency_crowdflower(lexical: LexicalIndex, matrix: np.ndarray, queries: list[str]) -> dict[str, dict]:
    """Per-query latency of full-catalogue search (query encoding included for dense and hybrid)."""
    from governance.search.dense import DenseIndex  # noqa: PLC0415
    from governance.search.index import SearchIndex  # noqa: PLC0415

    index = SearchIndex(products=pl.DataFrame({"product_id": [str(i) for i in range(matrix.shape[0])]}),
                        lexical=lexical, dense=DenseIndex.build(matrix))
    return measure_latency(index, queries)


def measure_latency(index, queries: list[str], depth: int | None = None) -> dict[str, dict]:
    """Per-query latency of each method over the whole catalogue, query encoding included.

    Each query is run once per method, each call on its own: BM25; MiniLM encoding + dense search;
    MiniLM encoding + the hybrid (BM25 over the catalogue, dense search, exact cosines of the
    candidates, fusion).
    """
    from governance.search.hybrid import hybrid_search  # noqa: PLC0415
    from governance.search.index import DEPTH  # noqa: PLC0415

    depth = depth or DEPTH
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    index.encode_query("warm up")
    for q in queries:
        t0 = time.perf_counter()
        index.lexical.search(q, depth)
        t1 = time.perf_counter()
        index.dense.search(index.encode_query(q), depth)
        t2 = time.perf_counter()
        hybrid_search(index.lexical, index.dense, q, index.encode_query(q), depth)
        t3 = time.perf_counter()
        times["bm25"].append(t1 - t0)
        times["dense"].append(t2 - t1)
        times["hybrid"].append(t3 - t2)
    return {m: percentiles(v) for m, v in times.items()}


def _summary(dataset: str, per_query: pl.DataFrame, latency: dict, build: dict, extra: pl.DataFrame | None = None):
    s = (per_query.group_by("method").agg(pl.len().alias("queries"), pl.col("ndcg").mean().alias("ndcg@10"),
                                          pl.col("rr").mean().alias("mrr"))
         .with_columns(pl.lit(dataset).alias("dataset")))
    if extra is not None:
        s = s.join(extra, on="method", how="left")
    else:
        s = s.with_columns(pl.lit(None, pl.Float64).alias("recall@100"))
    lat = pl.DataFrame([{"method": m, **v, "build_s": build.get(m)} for m, v in latency.items()],
                       schema={"method": pl.String, "p50_ms": pl.Float64, "p95_ms": pl.Float64, "build_s": pl.Float64})
    order = {m: i for i, m in enumerate((*METHODS, "rrf", "random"))}
    return (s.join(lat, on="method", how="left")
            .select("dataset", "method", "queries", "ndcg@10", "mrr", "recall@100", "p50_ms", "p95_ms", "build_s")
            .sort(pl.col("method").replace_strict(order, default=99)))


# ---------------------------------------------------------------------------------------------
# the shop: retrieval over the whole catalogue, judged by what shoppers did after the query


def normalise_query(text: pl.Expr) -> pl.Expr:
    return text.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def shop_judgments(query_clicks: pl.DataFrame) -> pl.DataFrame:
    """query (normalised text), product_id, grade 1–3 and gain, searches (how often the text was typed)."""
    qc = query_clicks.filter(pl.col("query_text").is_not_null() & pl.col("product_id").is_not_null())
    qc = qc.with_columns(normalise_query(pl.col("query_text")).alias("query")).filter(pl.col("query") != "")
    searches = qc.group_by("query").agg(pl.col("query_id").n_unique().alias("searches"))
    j = (qc.group_by("query", "product_id")
         .agg(pl.col("add_to_carts").sum().alias("carts"), pl.col("purchases").sum().alias("buys"))
         .with_columns((1 + (pl.col("carts") > 0).cast(pl.Int64) + (pl.col("buys") > 0).cast(pl.Int64)).alias("grade"))
         .with_columns(exp_gain(pl.col("grade")).alias("gain")))
    return j.join(searches, on="query").select("query", "product_id", "grade", "gain", "searches")


def evaluate_shop(index, query_clicks: pl.DataFrame, *, max_queries: int | None = 2000,
                  latency_queries: int = 200, query_cache=None, log=print) -> Evaluation:
    """NDCG@10, MRR and Recall@100 over the whole catalogue for each method, from the shop's query clicks."""
    judged = shop_judgments(query_clicks)
    queries = (judged.group_by("query").agg(pl.col("searches").first()).sort(["searches", "query"],
                                                                               descending=[True, False]))
    if max_queries:
        queries = queries.head(max_queries)
    qs = queries["query"].to_list()
    judged = judged.filter(pl.col("query").is_in(qs))
    log(f"shop search evaluation: {len(qs):,} distinct query texts, {judged.height:,} engaged (query, product) pairs")
    t0 = time.perf_counter()
    qvec = encode_queries_cached(qs, query_cache)
    encode_s = time.perf_counter() - t0
    from governance.search.hybrid import fuse_lists, hybrid_search  # noqa: PLC0415

    ids = index.products["product_id"]
    rows_q, rows_m, rows_i, rows_r = [], [], [], []
    for i, q in enumerate(qs):  # one retrieval per distinct query (the unit of evaluation)
        hi, _, (li, _), (di, _) = hybrid_search(index.lexical, index.dense, q, qvec[i], RECALL_DEPTH)
        ri, _ = fuse_lists([li, di], RRF_K)
        for m, items in (("bm25", li), ("dense", di), ("hybrid", hi[:RECALL_DEPTH]), ("rrf", ri[:RECALL_DEPTH])):
            rows_q.append(np.full(items.size, i))
            rows_m.append(np.full(items.size, m))
            rows_i.append(items)
            rows_r.append(np.arange(1, items.size + 1))
    if qs:
        ranked = pl.DataFrame({"qi": np.concatenate(rows_q), "method": np.concatenate(rows_m),
                               "i": np.concatenate(rows_i), "rank": np.concatenate(rows_r)})
    else:
        ranked = pl.DataFrame(schema={"qi": pl.Int64, "method": pl.String, "i": pl.Int64, "rank": pl.Int64})
    ranked = ranked.with_columns(pl.col("qi").replace_strict(dict(enumerate(qs)), return_dtype=pl.String).alias("query"),
                                 ids.gather(ranked["i"]).alias("product_id") if ranked.height else
                                 pl.lit(None, pl.String).alias("product_id"))
    ranked = (ranked.join(judged.select("query", "product_id", "gain"), on=["query", "product_id"], how="left")
              .with_columns(pl.col("gain").fill_null(0.0), pl.col("gain").is_not_null().alias("relevant")))
    per_query = []
    n_judged = judged.group_by("query").agg(pl.len().alias("judged"))
    for m in (*METHODS, "rrf"):
        r = ranked.filter(pl.col("method") == m)
        nd = ndcg(r.select("query", "rank", "gain"), judged.select("query", "gain"))
        rr = mrr(r.select("query", "rank", "relevant"), pl.Series(qs, dtype=pl.String))
        rec = (n_judged.join(r.filter(pl.col("relevant")).group_by("query").agg(pl.len().alias("found")),
                             on="query", how="left")
               .select("query", (pl.col("found").fill_null(0) / pl.col("judged")).alias("recall")))
        per_query.append(nd.join(rr, on="query", how="full", coalesce=True).join(rec, on="query", how="left")
                         .with_columns(pl.lit(m).alias("method")).select("method", "query", "ndcg", "rr", "recall"))
    per_query = pl.concat(per_query) if per_query else pl.DataFrame()
    recall = per_query.group_by("method").agg(pl.col("recall").mean().alias("recall@100"))
    lat = measure_latency(index, qs[:latency_queries])
    build = {"bm25": index.timings.get("bm25_build_s"), "dense": index.timings.get("dense_build_s"),
             "hybrid": (index.timings.get("bm25_build_s") or 0) + (index.timings.get("dense_build_s") or 0)}
    summary = _summary("shop", per_query.select("method", "query", "ndcg", "rr"), lat, build, recall)
    return Evaluation("shop", summary, per_query, notes={
        "queries": len(qs), "engaged_pairs": judged.height, "catalogue": index.size,
        "gains": "grade 1 viewed/clicked, 2 added to cart, 3 bought; gain 2^grade-1 = 1/3/7",
        "relevant_for_mrr": "any product engaged with after the query", "query_encoding_s": encode_s})


def poor_queries(per_query: pl.DataFrame, judged: pl.DataFrame, queries: pl.DataFrame | None = None,
                 method: str = "hybrid", limit: int = 15) -> pl.DataFrame:
    """Queries for merchandisers: typed often, yet the shop showed nothing (``results_count`` 0) or the
    ranker's top 100 misses what shoppers engaged with (recall 0) — most searched first."""
    searches = judged.group_by("query").agg(pl.col("searches").first())
    missed = (per_query.filter((pl.col("method") == method) & (pl.col("recall") == 0))
              .join(searches, on="query", how="left")
              .select("query", pl.col("searches").fill_null(0).cast(pl.Int64),
                      pl.lit("top 100 misses every engaged product").alias("problem")))
    parts = [missed]
    if queries is not None and "results_count" in queries.columns:
        zero = (queries.filter(pl.col("query_text").is_not_null())
                .with_columns(normalise_query(pl.col("query_text")).alias("query"))
                .group_by("query").agg(pl.len().alias("searches"),
                                       (pl.col("results_count") == 0).sum().alias("zero"))
                .filter(pl.col("zero") > 0)
                .select("query", pl.col("searches").cast(pl.Int64),
                        pl.format("the shop returned 0 results {} of {} times", "zero", "searches").alias("problem")))
        parts.append(zero)
    # each kind of problem gets its own `limit` rows, most searched first
    return pl.concat([p.sort(["searches", "query"], descending=[True, False]).head(limit) for p in parts])
