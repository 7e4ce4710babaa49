"""Search at catalogue scale: index build time, queries/s and latency percentiles, dense exact vs ANN.

    python bench/search.py                          # 10k, 100k and 1M products
    python bench/search.py --sizes 10000 100000     # smaller

Catalogues are generated: titles of 3–8 words drawn (Zipf) from a 20k-word vocabulary, and
384-d unit vectors around 2,000 topic centres (MiniLM cannot embed a million texts on this CPU in
a benchmark's time, so the vectors are synthetic; the index sees the same shapes and dtypes). A
query is two or three words of one product's title and a noisy copy of that product's vector.

Reported per size: BM25 (bm25s) build and per-query latency; dense exact (one matrix–vector
product) and HNSW (usearch; connectivity 32, expansion 128/256) build time, latency and the HNSW's
recall@10 / @100 against exact — the index's graph (int8, its 100 candidates re-scored with exact
dot products) and, with ``--baseline-graph``, the previous one (float32, its own top k) as the anchor
in the same run; the hybrid (``hybrid.hybrid_search``: both top 100s, exact cosines, coverage-weighted
z-score fusion), without and with MiniLM encoding of the query text (one thread), which is what a
shopper waits for. Single-threaded queries; run with `nice` and read the machine load printed at
the top and the end.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import polars as pl

from governance.search.dense import DenseIndex, encode_query
from governance.search.hybrid import hybrid_search
from governance.search.lexical import LexicalIndex

VOCAB = 20_000
TOPICS = 2_000
DIM = 384


def catalogue(n: int, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(VOCAB)])
    lengths = rng.integers(3, 9, n)
    ids = np.minimum(rng.zipf(1.3, lengths.sum()) - 1, VOCAB - 1)
    flat = pl.Series(words[ids])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    titles = pl.DataFrame({"w": flat, "p": np.repeat(np.arange(n), lengths)}).group_by("p", maintain_order=True).agg(
        pl.col("w").str.join(" ").alias("title"))["title"]
    del offsets
    topic = rng.integers(0, TOPICS, n)
    centres = rng.normal(size=(TOPICS, DIM)).astype(np.float32)
    vectors = centres[topic] + 0.6 * rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return pl.DataFrame({"product_id": np.arange(n).astype(str), "title": titles}), vectors


def queries(products: pl.DataFrame, vectors: np.ndarray, m: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, products.height, m)
    texts = [" ".join(t.split()[:k]) for t, k in zip(products["title"].gather(pick).to_list(),
                                                     rng.integers(2, 4, m), strict=True)]
    q = vectors[pick] + 0.4 * rng.normal(size=(m, DIM)).astype(np.float32) / np.sqrt(DIM) * 8
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return texts, q


def timed(fn, items) -> tuple[np.ndarray, list]:
    out, times = [], []
    for x in items:
        t = time.perf_counter()
        out.append(fn(x))
        times.append(time.perf_counter() - t)
    return np.array(times) * 1000, out


def row(size: int, what: str, build_s: float | None, ms: np.ndarray | None, **extra) -> dict:
    r = {"products": size, "what": what, "build_s": None if build_s is None else round(build_s, 2)}
    if ms is not None:
        r |= {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
              "queries_per_s": round(1000 / float(np.mean(ms)), 1)}
    return r | extra


def bench(size: int, n_queries: int, encode: bool, ann_max: int | None = None, baseline: bool = False) -> list[dict]:
    t = time.perf_counter()
    products, vectors = catalogue(size)
    print(f"  {size:,} products generated in {time.perf_counter() - t:.1f}s", flush=True)
    texts, qv = queries(products, vectors, n_queries)
    rows = []
    lexical = LexicalIndex.build(products)
    ms, lex_hits = timed(lambda q: lexical.search(q, 100)[0], texts)
    rows.append(row(size, "bm25 (bm25s)", lexical.build_seconds, ms))
    exact = DenseIndex.build(vectors, ann_threshold=10**12)
    ms, exact_hits = timed(lambda q: exact.search(q, 100)[0], qv)
    rows.append(row(size, "dense exact", exact.build_seconds, ms))
    ann = None
    if ann_max is None or size <= ann_max:
        graphs = [("f32", 0)] if baseline else []
        for dtype, candidates in [*graphs, ("i8", 100)]:
            ann = DenseIndex.build(vectors, ann_threshold=0, threads=os.cpu_count() or 1, dtype=dtype,
                                   candidates=candidates)
            ms, ann_hits = timed(lambda q, a=ann: a.search(q, 100)[0], qv)
            r10 = np.mean([len(set(a[:10]) & set(e[:10])) / 10 for a, e in zip(ann_hits, exact_hits, strict=True)])
            r100 = np.mean([len(set(a) & set(e)) / max(len(e), 1) for a, e in zip(ann_hits, exact_hits, strict=True)])
            rows.append(row(size, f"dense {ann.method}", ann.build_seconds, ms, recall_at_10=round(r10, 4),
                            recall_at_100=round(r100, 4)))
            print(f"  {rows[-1]}", flush=True)
    dense = ann if size >= 50_000 and ann is not None else exact
    pairs = list(zip(texts, qv, strict=True))
    ms, _ = timed(lambda p: hybrid_search(lexical, dense, p[0], p[1], 100), pairs)
    rows.append(row(size, f"hybrid, vector given ({dense.method})", None, ms))
    if encode:
        ms, _ = timed(lambda p: hybrid_search(lexical, dense, p[0], encode_query(p[0]), 100), pairs)
        rows.append(row(size, f"hybrid + MiniLM query encoding ({dense.method})", None, ms))
    del lex_hits
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--no-encode", action="store_true", help="skip the runs that encode queries with MiniLM")
    ap.add_argument("--ann-max", type=int, default=None,
                    help="build the HNSW graph only up to this many products (its build dominates at 1M)")
    ap.add_argument("--baseline-graph", action="store_true",
                    help="also build the previous float32 graph (no re-scoring) as the anchor")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    if not args.no_encode:
        encode_query("warm up")
    rows = []
    for size in args.sizes:
        rows += bench(size, args.queries, not args.no_encode, args.ann_max, args.baseline_graph)
        with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200, fmt_str_lengths=60):
            print(pl.DataFrame(rows), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
