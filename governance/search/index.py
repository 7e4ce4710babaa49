"""The search index of a catalogue: BM25 + MiniLM (+ HNSW past a size), saved as one directory.

``build_index`` takes the current products (``integrated.products`` plus descriptions from the
catalog) and their embeddings; ``SearchIndex.search`` returns the hybrid's ranking with each
component's score and rank, which is what ``governance search`` prints. ``build_shop_index`` is
the stage's whole job over a lake, reusing the integration stage's embedding cache.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from governance.search.dense import DenseIndex, embed_products, encode_query
from governance.search.hybrid import FUSION, hybrid_search
from governance.search.lexical import LexicalIndex

#: each component's depth before fusion
DEPTH = 100
#: what the index keeps of a product (and shows)
PRODUCT_COLUMNS = ("product_id", "title", "brand", "category_path", "price")


@dataclass
class SearchIndex:
    products: pl.DataFrame  # PRODUCT_COLUMNS (those present), in index order
    lexical: LexicalIndex
    dense: DenseIndex
    timings: dict[str, float] = field(default_factory=dict)
    encode_query = staticmethod(encode_query)

    @property
    def size(self) -> int:
        return self.products.height

    def component_rankings(self, query: str, query_vector: np.ndarray | None = None, depth: int = DEPTH):
        """(bm25 indices, bm25 scores, dense indices, dense scores), each best first."""
        li, ls = self.lexical.search(query, depth)
        qv = self.encode_query(query) if query_vector is None else query_vector
        di, ds = self.dense.search(qv, depth)
        return li, ls, di, ds

    def hybrid(self, query: str, query_vector: np.ndarray | None = None, depth: int = DEPTH):
        """:func:`governance.search.hybrid.hybrid_search` over this index."""
        qv = self.encode_query(query) if query_vector is None else query_vector
        return hybrid_search(self.lexical, self.dense, query, qv, depth)

    def search(self, query: str, k: int = 10, *, depth: int = DEPTH, method: str = "hybrid",
               query_vector: np.ndarray | None = None) -> pl.DataFrame:
        """The top ``k`` products for ``query`` with each component's score and rank (and the hybrid's)."""
        items, fused, (li, ls), (di, ds) = self.hybrid(query, query_vector, max(depth, k))
        hybrid = pl.DataFrame({"i": items, "hybrid": fused.astype(np.float64)})
        if method == "bm25":
            top = li[:k]
        elif method == "dense":
            top = di[:k]
        else:
            top = items[:k]
        return self.explain(top, li, ls, di, ds, hybrid)

    def explain(self, items, li, ls, di, ds, hybrid: pl.DataFrame) -> pl.DataFrame:
        comp = pl.DataFrame({"i": np.asarray(items, dtype=np.int64)}).with_row_index("rank", offset=1)
        lex = pl.DataFrame({"i": li, "bm25": ls.astype(np.float64)}).with_row_index("bm25_rank", offset=1)
        den = pl.DataFrame({"i": di, "dense": ds.astype(np.float64)}).with_row_index("dense_rank", offset=1)
        out = comp.join(hybrid, on="i", how="left").join(lex, on="i", how="left").join(den, on="i", how="left")
        prods = self.products.with_row_index("i").with_columns(pl.col("i").cast(pl.Int64))
        cols = [c for c in PRODUCT_COLUMNS if c in prods.columns]
        return (out.join(prods.select("i", *cols), on="i", how="left").sort("rank")
                .select("rank", *cols, "hybrid", "bm25", "bm25_rank", "dense", "dense_rank"))

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        tmp = directory.with_name(f".{directory.name}.tmp")
        if tmp.exists():
            import shutil  # noqa: PLC0415

            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        self.products.write_parquet(tmp / "products.parquet")
        self.lexical.save(tmp / "bm25")
        self.dense.save(tmp)
        (tmp / "manifest.json").write_text(json.dumps({
            "products": self.size, "dense_method": self.dense.method, "fusion": FUSION, "depth": DEPTH,
            "bm25": {"k1": self.lexical.k1, "b": self.lexical.b, "fields": dict(self.lexical.fields)},
            "timings": self.timings}, indent=2))
        if directory.exists():
            import shutil  # noqa: PLC0415

            old = directory.with_name(f".{directory.name}.old")
            if old.exists():
                shutil.rmtree(old)
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old)
        else:
            tmp.rename(directory)
        return directory

    @classmethod
    def load(cls, directory: Path) -> SearchIndex:
        directory = Path(directory)
        if not (directory / "manifest.json").exists():
            raise FileNotFoundError(f"no search index under {directory}: materialize search/index first "
                                    "(make demo, or the `search` asset group in Dagster)")
        products = pl.read_parquet(directory / "products.parquet")
        manifest = json.loads((directory / "manifest.json").read_text())
        return cls(products=products, lexical=LexicalIndex.load(directory / "bm25", products.height),
                   dense=DenseIndex.load(directory), timings=manifest.get("timings", {}))


def build_index(products: pl.DataFrame, embeddings: np.ndarray, *, ann_threshold: int | None = None) -> SearchIndex:
    """BM25 over the products' text fields and the dense index over their embeddings (same order)."""
    from governance.search.dense import ANN_THRESHOLD  # noqa: PLC0415

    lexical = LexicalIndex.build(products)
    dense = DenseIndex.build(embeddings, ann_threshold=ANN_THRESHOLD if ann_threshold is None else ann_threshold)
    keep = [c for c in PRODUCT_COLUMNS if c in products.columns]
    return SearchIndex(products=products.select(keep), lexical=lexical, dense=dense,
                       timings={"bm25_build_s": lexical.build_seconds, "dense_build_s": dense.build_seconds})


# ---------------------------------------------------------------------------------------------
# the shop's index


def index_dir(data_root: Path) -> Path:
    return Path(data_root) / "search" / "index"


def shop_catalogue(lake) -> pl.DataFrame:
    """Current products (``integrated.products``) with their descriptions from the catalog resolution."""
    from governance.integration.pipeline import build_catalog  # noqa: PLC0415

    current = build_catalog(lake).current
    desc = current.select("product_id", *(["description"] if "description" in current.columns else []))
    if lake.exists("integrated", "products"):
        products = lake.read("integrated", "products")
        base = products.select([c for c in ("product_id", "title", "brand", "category_l1", "category_l2",
                                             "category_l3", "category_path", "price") if c in products.columns])
        out = base.join(desc, on="product_id", how="left") if "description" in desc.columns else base
    else:
        out = current
    return out.sort("product_id")


@dataclass
class ShopIndexBuild:
    index: SearchIndex
    table: pl.DataFrame  # search.index: one row per indexed product
    embedded_now: int
    from_cache: int
    seconds: dict[str, float]


def build_shop_index(lake, data_root: Path, *, log=print) -> ShopIndexBuild:
    """Index the shop's current catalogue and save it. Embeddings come from ``integrated.embedding_cache``
    (texts missing there are embedded now, and not written back: that table is the integration stage's)."""
    t0 = time.perf_counter()
    products = shop_catalogue(lake)
    t_read = time.perf_counter() - t0
    cache = lake.read("integrated", "embedding_cache") if lake.exists("integrated", "embedding_cache") else None
    log(f"search index: {products.height:,} products; embedding cache holds "
        f"{0 if cache is None else cache.height:,} vectors")
    t1 = time.perf_counter()
    matrix, _, embedded, _ = embed_products(products, cache)
    t_embed = time.perf_counter() - t1
    if embedded:  # the cache is the integration stage's table: read here, written only by catalog_findings
        log(f"search index: embedded {embedded:,} product texts missing from the cache in {t_embed:.1f}s")
    index = build_index(products, matrix)
    index.timings.update({"read_s": t_read, "embed_s": t_embed, "total_s": time.perf_counter() - t0})
    index.save(index_dir(data_root))
    table = products.select([c for c in (*PRODUCT_COLUMNS, "category_l1") if c in products.columns]).with_columns(
        pl.lit(index.dense.method).alias("dense_method"),
        pl.lit(index.lexical.vocabulary).cast(pl.Int64).alias("vocabulary"))
    return ShopIndexBuild(index=index, table=table, embedded_now=embedded, from_cache=products.height - embedded,
                          seconds=dict(index.timings))
