"""Dense retrieval: MiniLM sentence embeddings, exact cosine or an HNSW index (``usearch``).

Products are embedded as the integration stage embeds them (``findings.product_texts``: title and
description), through its content-hash cache (``integrated.embedding_cache``), so a product
embedded for the catalog findings is never embedded again. Texts not in the cache are encoded by
the project's one MiniLM loader (``governance.labelling.encoder.Embedder``, 256 word pieces, mean
pooled, L2-normalised — the integration encoder's settings, so cached and new vectors agree).

Exact search is one matrix–vector product; past ``ANN_THRESHOLD`` products an HNSW graph answers
instead (``bench/search.py`` measures exact against ANN and the ANN's recall). The graph stores
int8-quantised vectors (a quarter of the memory, about a third of the build time of float32) and
proposes twice the neighbours asked for (at least ``ANN_CANDIDATES``), which are re-scored with exact float32 dot products from the
kept matrix: the returned order and similarities are exact over the candidates, and the
quantisation's error only decides which candidates are proposed. usearch was chosen
over faiss-cpu and hnswlib on the same 100k vectors: equal latency (~0.3 ms at k=100), the fastest
build and the best recall at equal graph parameters, no OpenMP runtime to clash with torch's, and
hnswlib has had no release since 2023.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from governance.search.lexical import top_k

DIM = 384
#: below this many products exact search is both exact and fast enough (see bench/search.py)
ANN_THRESHOLD = 50_000
HNSW_CONNECTIVITY = 32
HNSW_EXPANSION_ADD = 128
HNSW_EXPANSION_SEARCH = 256
#: the graph's vector type (usearch): int8, re-scored exactly
HNSW_DTYPE = "i8"
#: neighbours the graph proposes for exact re-scoring: at least this many, and twice the k asked for
ANN_CANDIDATES = 100
ANN_OVERSAMPLE = 2


class ProductEncoder:
    """The labelling stage's MiniLM loader under the integration cache's model name and settings."""

    def __init__(self, batch_size: int = 64):
        from governance.integration.findings import MODEL_NAME  # noqa: PLC0415
        from governance.labelling.encoder import Embedder  # noqa: PLC0415

        self.name = MODEL_NAME
        self.batch_size = batch_size
        self.embedder = Embedder(max_length=256)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode(texts, batch_size=self.batch_size)


def encode_queries(queries: list[str]) -> np.ndarray:
    """Query embeddings from the process-wide MiniLM (``labelling.encoder.shared_embedder``)."""
    from governance.labelling.encoder import shared_embedder  # noqa: PLC0415

    return shared_embedder().encode(list(queries), batch_size=128)


def encode_queries_cached(queries: list[str], cache_path=None) -> np.ndarray:
    """Query embeddings through a small content cache (query text → vector, one Parquet file), so
    the evaluation and the experiment of one run embed each query text once."""
    from pathlib import Path  # noqa: PLC0415

    if not queries:
        return np.zeros((0, DIM), dtype=np.float32)
    path = Path(cache_path) if cache_path else None
    cache = pl.read_parquet(path) if path and path.exists() else pl.DataFrame(
        schema={"query": pl.String, "vector": pl.Array(pl.Float32, DIM)})
    wanted = pl.DataFrame({"query": queries}).unique(maintain_order=True)
    todo = wanted.join(cache, on="query", how="anti")["query"].to_list()
    if todo:
        new = pl.DataFrame({"query": todo, "vector": pl.Series(encode_queries(todo), dtype=pl.Array(pl.Float32, DIM))})
        cache = pl.concat([cache, new]).unique("query", keep="last")
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            cache.write_parquet(tmp)
            tmp.replace(path)
    aligned = pl.DataFrame({"query": queries}).join(cache, on="query", how="left", maintain_order="left")
    return aligned["vector"].to_numpy().astype(np.float32)


_QUERY_ENCODER = None


def encode_query(query: str) -> np.ndarray:
    """One query's embedding on one thread, through the labelling loader's model and tokenizer.

    A single short text gains nothing from more threads, and on a loaded machine torch's pool
    spins (20 ms on one thread against 350 ms on two, measured here at load 10); the model is
    looked up once, not per query (``shared_embedder`` checks the device on every call).
    """
    import torch  # noqa: PLC0415

    from governance.labelling.encoder import mean_pool, shared_embedder  # noqa: PLC0415

    global _QUERY_ENCODER
    if _QUERY_ENCODER is None:
        _QUERY_ENCODER = shared_embedder()
    emb = _QUERY_ENCODER
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            enc = emb.tokenizer([query or ""], truncation=True, max_length=emb.max_length, return_tensors="pt")
            enc = enc.to(emb.device)
            hidden = emb.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            vec = torch.nn.functional.normalize(mean_pool(hidden.float(), enc["attention_mask"]), dim=-1)
        return vec[0].cpu().numpy().astype(np.float32)
    finally:
        torch.set_num_threads(threads)


def with_text_columns(products: pl.DataFrame) -> pl.DataFrame:
    """The columns ``findings.product_texts`` reads, null where a catalogue lacks them."""
    want = {"brand": pl.String, "title": pl.String, "category_path": pl.String, "category_l1": pl.String,
            "category_l2": pl.String, "category_l3": pl.String, "price": pl.Float64}
    return products.with_columns([pl.lit(None, dtype).alias(c) for c, dtype in want.items()
                                  if c not in products.columns])


def embed_products(products: pl.DataFrame, cache: pl.DataFrame | None, encoder=None):
    """(matrix aligned with ``products``, the updated cache, texts embedded now, seconds)."""
    from governance.integration.findings import MODEL_NAME, embed, product_texts  # noqa: PLC0415

    texts = product_texts(with_text_columns(products), MODEL_NAME)
    if cache is not None and cache.height:
        missing = texts.filter(~pl.col("content_hash").is_in(cache["content_hash"].implode())).height
    else:
        missing = texts.height
    if missing and encoder is None:
        encoder = ProductEncoder()
    result = embed(texts, cache, encoder)
    return result.matrix, result.cache, result.embedded, result.seconds


_CONTROLLER = None


def _one_blas_thread():
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


@dataclass
class DenseIndex:
    """Normalised product vectors, searched exactly or through an HNSW graph."""

    matrix: np.ndarray
    ann: object = None
    build_seconds: float = 0.0
    #: graph candidates re-scored exactly (0: the graph's own top k, as it ranks them)
    candidates: int = ANN_CANDIDATES

    @classmethod
    def build(cls, matrix: np.ndarray, *, ann_threshold: int = ANN_THRESHOLD, threads: int = 0,
              dtype: str = HNSW_DTYPE, candidates: int = ANN_CANDIDATES) -> DenseIndex:
        t0 = time.perf_counter()
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        ann = None
        if matrix.shape[0] >= ann_threshold:
            from usearch.index import Index  # noqa: PLC0415

            ann = Index(ndim=matrix.shape[1], metric="ip", dtype=dtype, connectivity=HNSW_CONNECTIVITY,
                        expansion_add=HNSW_EXPANSION_ADD, expansion_search=HNSW_EXPANSION_SEARCH)
            ann.add(np.arange(matrix.shape[0], dtype=np.uint64), matrix, threads=threads)
        return cls(matrix=matrix, ann=ann, build_seconds=time.perf_counter() - t0, candidates=candidates)

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    @property
    def method(self) -> str:
        if self.ann is None:
            return "exact"
        kind = str(getattr(self.ann, "dtype", "")).split(".")[-1].lower()
        return f"hnsw {kind} (usearch)" + (" + exact re-scoring" if self.candidates else "")

    def _proposed(self, k: int) -> int:
        """How many neighbours to ask the graph for, for the best ``k``."""
        return min(self.n, max(k, self.candidates, ANN_OVERSAMPLE * k) if self.candidates else k)

    def _rescore(self, keys: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The graph's candidates in exact order (ties: lower index first), the best ``k``."""
        keys = np.asarray(keys, dtype=np.int64)
        sims = self.matrix[keys] @ np.asarray(query, dtype=np.float32)
        order = np.lexsort((keys, -sims))[:k]
        return keys[order], sims[order]

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine similarity of every product (exact), on one BLAS thread: a matrix–vector product
        gains nothing from more, and on a loaded machine the extra threads spin (p95 44 ms against
        0.03 ms for 1.3k products, measured here at load 14)."""
        with _one_blas_thread():
            return self.matrix @ np.asarray(query, dtype=np.float32)

    def search_many(self, queries: np.ndarray, k: int = 100, *, chunk: int = 256) -> list[np.ndarray]:
        """Top-``k`` indices for many queries at once (one matrix product per chunk, or the HNSW's batch)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.n)
        if self.ann is not None:
            found = self.ann.search(queries, self._proposed(k))
            keys = np.asarray(found.keys, dtype=np.int64).reshape(len(queries), -1)
            counts = np.asarray(found.counts).reshape(-1)
            if not self.candidates:
                return [keys[i, :counts[i]][:k] for i in range(len(queries))]
            with _one_blas_thread():
                return [self._rescore(keys[i, :counts[i]], queries[i], k)[0] for i in range(len(queries))]
        out = []
        for start in range(0, len(queries), chunk):
            sims = queries[start:start + chunk] @ self.matrix.T
            for row in sims:  # top-k of each row of the chunk
                out.append(top_k(row, k)[0])
        return out

    def search(self, query: np.ndarray, k: int = 100, *, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and cosine similarities of the ``k`` nearest products, best first."""
        use_ann = self.ann is not None if exact is None else not exact
        if use_ann and self.ann is not None:
            query = np.asarray(query, dtype=np.float32)
            found = self.ann.search(query, self._proposed(k), threads=1)
            idx = np.asarray(found.keys, dtype=np.int64)
            if not self.candidates:
                return idx[:k], (1.0 - np.asarray(found.distances, dtype=np.float32))[:k]
            with _one_blas_thread():
                return self._rescore(idx, query, k)
        return top_k(self.scores(query), k)

    def save(self, directory: Path) -> None:
        np.save(directory / "embeddings.npy", self.matrix)
        if self.ann is not None:
            self.ann.save(str(directory / "dense.usearch"))

    @classmethod
    def load(cls, directory: Path) -> DenseIndex:
        matrix = np.load(directory / "embeddings.npy")
        ann = None
        if (directory / "dense.usearch").exists():
            from usearch.index import Index  # noqa: PLC0415

            ann = Index.restore(str(directory / "dense.usearch"))
            ann.expansion_search = HNSW_EXPANSION_SEARCH
        return cls(matrix=matrix, ann=ann)
