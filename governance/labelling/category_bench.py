"""Category benchmarks: the plain zero-shot baseline and ``CategoryModel`` in the same run.

    python bench/label.py --categories            # Instacart (../shared/data/instacart_sample)
    python -m governance.labelling.category_bench [--shop-events 20000]

Instacart: each product name is a "query"; its aisle (134 leaves under 21 departments, path
``department > aisle``) and its department are the truth. The department is scored twice: through
the whole tree (a department's probability is the sum of its aisles') and with the departments as
a flat list (only their 21 names). Products are split by a stable hash of
``product_id`` (one in five evaluated); only the other four fifths may give prototypes.

* ``zero-shot``  — the baseline: cosine of the raw name's embedding with the category name's;
* ``names only`` — ``CategoryModel`` without any catalog text: path templates, text normalisation,
  the hierarchy (what a shop with only a category list gets);
* ``names only, no batch refinement`` — the same without the transductive step;
* ``+ catalog``  — prototypes and nearest exemplars from the other products' names.

A generated shop (``--shop-events``): its queries → their true leaf; names only, + catalog (titles
and descriptions), + catalog + clicks (the training queries' sessions; the hashed evaluation fifth
of the queries is scored without its own clicks).

Every method uses the same encoder (MiniLM, mean pooled); vectors are cached by content hash under
``settings.model_cache``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from governance.labelling.categories import CategoryModel, normalize_text, split_path, topk_accuracy

EVAL_SHARE = 5


def stable_holdout(ids: list, share: int = EVAL_SHARE) -> np.ndarray:
    """True for the ids whose sha256 falls in the last 1/share (the same split on every machine)."""
    return np.array([int(hashlib.sha256(str(i).encode()).hexdigest()[:8], 16) % share == 0 for i in ids])


def load_instacart(shared: Path) -> pl.DataFrame:
    d = Path(shared) / "instacart_sample"
    products = pl.read_csv(d / "products.csv")
    aisles = pl.read_csv(d / "aisles.csv")
    deps = pl.read_csv(d / "departments.csv")
    return (products.join(aisles, on="aisle_id").join(deps, on="department_id")
            .with_columns(path=pl.col("department") + " > " + pl.col("aisle")))


def _evaluate(name: str, encode, texts_raw: list[str], truth_paths: list[str], categories: list[str],
              train_texts: list[str] | None, train_paths: list[str] | None) -> dict:
    col = {c: j for j, c in enumerate(categories)}
    y = np.array([col[p] for p in truth_paths])
    raw = encode(texts_raw)
    norm = encode([normalize_text(t) for t in texts_raw])
    out: dict = {"benchmark": name, "n_eval": len(y), "categories": len(categories)}
    base = raw @ encode([split_path(c)[-1] for c in categories]).T
    out["zero-shot"] = topk_accuracy(base, y)
    m = CategoryModel.build(categories, encode)
    out["names only"] = topk_accuracy(m.proba(norm), y)
    m.params.transductive_beta = 0.0
    out["names only, no batch refinement"] = topk_accuracy(m.proba(norm), y)
    if train_texts is not None:
        m2 = CategoryModel.build(categories, encode, product_texts=train_texts, product_categories=train_paths)
        p2 = m2.proba(norm)
        out["+ catalog"] = topk_accuracy(p2, y)
        pred = m2.predict(norm, proba=p2)
        conf = pred["category_confident"].to_list()
        level = pred["category_level"].to_list()
        leaf_sure = np.array([lv == "leaf" for lv in level])
        anc = np.array([lv is not None and lv != "leaf" for lv in level])
        truth_anc = [p for p in truth_paths]
        out["+ catalog back-off"] = {
            "leaf_share": float(leaf_sure.mean()),
            "leaf_precision": float(np.mean([conf[i] == truth_paths[i] for i in np.flatnonzero(leaf_sure)]))
            if leaf_sure.any() else None,
            "ancestor_share": float(anc.mean()),
            "ancestor_precision": float(np.mean([truth_anc[i].startswith(conf[i] + " >") for i in np.flatnonzero(anc)]))
            if anc.any() else None,
        }
    out["gain_top1_points"] = {k: round(100 * (out[k]["top1"] - out["zero-shot"]["top1"]), 1)
                               for k in ("names only", "+ catalog") if k in out}
    return out


def _evaluate_ancestor(name: str, encode, texts_raw: list[str], truth: list[str], leaves: list[str],
                       train_texts: list[str], train_leaves: list[str]) -> dict:
    """Depth-1 truth (department) scored through the whole tree: an ancestor's probability is the sum
    of its leaves'; the baseline embeds the department names alone."""
    deps = sorted(set(truth) | {split_path(c)[0] for c in leaves})
    col = {c: j for j, c in enumerate(deps)}
    y = np.array([col[t] for t in truth])
    raw = encode(texts_raw)
    norm = encode([normalize_text(t) for t in texts_raw])
    out: dict = {"benchmark": name, "n_eval": len(y), "categories": len(deps)}
    out["zero-shot"] = topk_accuracy(raw @ encode(deps).T, y)
    for label, m in (("names only", CategoryModel.build(leaves, encode)),
                     ("+ catalog", CategoryModel.build(leaves, encode, product_texts=train_texts,
                                                       product_categories=train_leaves))):
        npb = m.node_proba(m.proba(norm))
        cols = [m.nodes.index(d) for d in deps]
        out[label] = topk_accuracy(npb[:, cols], y)
    out["gain_top1_points"] = {k: round(100 * (out[k]["top1"] - out["zero-shot"]["top1"]), 1)
                               for k in ("names only", "+ catalog")}
    return out


def run_instacart(shared: Path, embedder=None, cache_dir: Path | None = None, *, log_fn=print) -> list[dict]:
    from governance.labelling.embed_cache import cached_encode  # noqa: PLC0415
    from governance.labelling.encoder import Embedder  # noqa: PLC0415

    emb = embedder or Embedder(backend="auto", onnx_dir=(cache_dir / "onnx") if cache_dir else None)
    encode = lambda texts: cached_encode(emb, list(texts), cache_dir)  # noqa: E731
    df = load_instacart(shared)
    test = stable_holdout(df["product_id"].to_list())
    tr, te = df.filter(pl.Series(~test)), df.filter(pl.Series(test))
    log_fn(f"instacart: {df.height:,} products, {te.height:,} evaluated, {tr.height:,} give prototypes")
    t0 = time.perf_counter()
    encode(df["product_name"].to_list())  # warm the cache once (the raw names)
    log_fn(f"embedded the names in {time.perf_counter() - t0:.0f}s")
    aisles = sorted(df["path"].unique().to_list())
    deps = sorted(df["department"].unique().to_list())
    res = [
        _evaluate("instacart name -> aisle (department > aisle)", encode, te["product_name"].to_list(),
                  te["path"].to_list(), aisles, tr["product_name"].to_list(), tr["path"].to_list()),
        _evaluate_ancestor("instacart name -> department (via the tree)", encode, te["product_name"].to_list(),
                           te["department"].to_list(), aisles, tr["product_name"].to_list(), tr["path"].to_list()),
        _evaluate("instacart name -> department (departments only)", encode, te["product_name"].to_list(),
                  te["department"].to_list(), deps, tr["product_name"].to_list(), tr["department"].to_list()),
    ]
    return res


def run_shop(n_events: int = 20_000, seed: int = 11, embedder=None, cache_dir: Path | None = None,
             *, log_fn=print) -> list[dict]:
    """A generated shop's queries → their true leaf category: zero-shot, names only, + catalog (titles and
    descriptions), + catalog + clicks (weak labels from the training queries' sessions; the fixed hashed
    fifth of queries is evaluated, its own clicks unused)."""
    from governance.labelling.embed_cache import cached_encode  # noqa: PLC0415
    from governance.labelling.encoder import Embedder  # noqa: PLC0415
    from governance.labelling.intent import Catalog, _click_distribution, product_texts, session_evidence  # noqa: PLC0415
    from governance.labelling.intent_training import split_queries  # noqa: PLC0415
    from governance.shop.config import ShopConfig  # noqa: PLC0415
    from governance.shop.generator import generate_shop  # noqa: PLC0415

    emb = embedder or Embedder(backend="auto", onnx_dir=(cache_dir / "onnx") if cache_dir else None)
    encode = lambda texts: cached_encode(emb, list(texts), cache_dir)  # noqa: E731
    shop = generate_shop(ShopConfig(n_events=n_events, seed=seed))
    products = shop.clean["products"]
    truth = shop.truth["queries"].select("query_id", "true_leaf_category").drop_nulls()
    queries = shop.clean["queries"].join(truth, on="query_id").filter(pl.col("query_text").is_not_null())
    train, held = split_queries(queries)
    cats = sorted(products["category_path"].drop_nulls().unique().to_list())
    held = held.filter(pl.col("true_leaf_category").is_in(cats))
    col = {c: j for j, c in enumerate(cats)}
    y = np.array([col[c] for c in held["true_leaf_category"].to_list()])
    texts = held["query_text"].to_list()
    raw, norm = encode(texts), encode([normalize_text(t) for t in texts])
    out: dict = {"benchmark": f"generated shop queries -> leaf ({n_events:,} events, seed {seed})",
                 "n_eval": len(y), "categories": len(cats)}
    out["zero-shot"] = topk_accuracy(raw @ encode([split_path(c)[-1] for c in cats]).T, y)
    out["names only"] = topk_accuracy(CategoryModel.build(cats, encode).proba(norm), y)
    pt, pc = product_texts(products)
    out["+ catalog"] = topk_accuracy(CategoryModel.build(cats, encode, product_texts=pt,
                                                         product_categories=pc).proba(norm), y)
    ev = session_evidence(train, shop.clean["events"], Catalog(products))
    rows = [(t, _click_distribution(ev.get(q), col)) for q, t in
            zip(train["query_id"].cast(pl.String).to_list(), train["query_text"].to_list())]
    rows = [(t, d) for t, d in rows if d is not None]
    qv = encode([normalize_text(t) for t, _ in rows])
    m = CategoryModel.build(cats, encode, product_texts=pt, product_categories=pc, query_vectors=qv,
                            query_distributions=np.stack([d for _, d in rows]))
    out["+ catalog + clicks"] = topk_accuracy(m.proba(norm), y)
    out["clicked training queries"] = len(rows)
    out["gain_top1_points"] = {k: round(100 * (out[k]["top1"] - out["zero-shot"]["top1"]), 1)
                               for k in ("names only", "+ catalog", "+ catalog + clicks")}
    log_fn(f"shop: {len(y):,} held-out queries, {len(cats)} leaves, {len(rows):,} clicked training queries")
    return [out]


def format_results(results: list[dict]) -> str:
    lines = [f"{'benchmark':46} {'method':32} {'top-1':>7} {'top-5':>7} {'Δtop-1':>7}"]
    for r in results:
        z = r["zero-shot"]["top1"]
        for k in ("zero-shot", "names only", "names only, no batch refinement", "+ catalog", "+ catalog + clicks"):
            if k in r:
                lines.append(f"{r['benchmark'][:46]:46} {k:32} {100 * r[k]['top1']:6.1f}% {100 * r[k]['top5']:6.1f}% "
                             f"{100 * (r[k]['top1'] - z):+6.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    from governance.settings import Settings  # noqa: PLC0415
    ap = argparse.ArgumentParser(description="query/product category benchmarks: zero-shot baseline vs CategoryModel")
    ap.add_argument("--json", action="store_true", help="print the full results as JSON too")
    ap.add_argument("--shop-events", type=int, default=20_000,
                    help="also a generated shop of this many events (queries, catalog, clicks); 0 = skip "
                         "(default %(default)s)")
    a = ap.parse_args(argv)
    s = Settings.load()
    res = []
    if s.shared_data is None or not (Path(s.shared_data) / "instacart_sample").is_dir():
        print("instacart_sample not found under the shared data directory (settings shared_data): skipped")
    else:
        res += run_instacart(Path(s.shared_data), cache_dir=s.model_cache)
    if a.shop_events:
        res += run_shop(a.shop_events, cache_dir=s.model_cache)
    print(format_results(res))
    if a.json:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
