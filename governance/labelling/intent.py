"""Search-query intent {product, category, brand, deal, support} and product category, from weak labels.

Weak labels (no hand labels anywhere):

* **patterns** — support words (return, refund, track, order status, help, …), deal words (cheap,
  sale, discount, clearance, coupon, "under $N", "N% off", …), catalog **brand names** (a query that
  is a brand, optionally with store-ish words, is a brand query; a brand plus product words is a
  product query), and the catalog's vocabulary (only category words → category; words that name
  product features beyond the category vocabulary → product);
* **behaviour** — the items clicked / added / bought after the query in the same session (until the
  session's next query when query times are known): their leaf categories are the query's category
  evidence, and their spread votes on the intent (one product → product, one brand across
  categories → brand, many products of one leaf → category).

A discriminative model then generalises beyond the patterns: logistic regression on the query's
MiniLM embedding, trained on the weakly labelled queries (weighted by the weak label's
confidence). A high-precision pattern (support, deal, brand-only) overrides the model's argmax; the
reported probability is ``0.5 + 0.5 · p_model(rule class)`` in that case, so disagreement shows.

Category: a :class:`~governance.labelling.categories.CategoryModel` on the same encoder — path
templates of each leaf, catalog prototypes and nearest products (titles and descriptions), click
prototypes (the queries whose clicks landed in a leaf: weak labels), refinement on the batch
being labelled, ancestors scored as the sum of their leaves with back-off to the deepest confident
ancestor (``category_confident``). A query's own click distribution, when it has one, is averaged
with the model's probabilities. **Intent and category are independent outputs**: a support query
("track my order") still gets a category. Probabilities are for ranking and thresholds, not
calibrated; ``top_categories`` lists the ``top_k`` leaves with their scores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from governance.labelling.categories import CategoryModel, normalize_text
from governance.labelling.encoder import Progress, ProgressReporter
from governance.labelling.text import unlabelable_reason

INTENTS = ("product", "category", "brand", "deal", "support")
MODEL_NAME = "intent-minilm-weak"
MODEL_VERSION = "weak-supervision-1"
TAU = 0.05
QUERY_MAX_CHARS = 300
EVENT_WEIGHTS = {"purchase": 3.0, "add_to_cart": 2.0, "click": 1.0, "view": 0.5}

SUPPORT_RE = re.compile(
    r"\b(returns?|returning|refunds?|exchanges?|track(?:ing)?|order status|my (?:order|package|account|parcel)|"
    r"where is my|cancel(?:lation)?|help|contact|customer (?:service|support)|support|warranty|invoice|receipt|"
    r"password|log ?in|sign ?in|account|delivery (?:time|status|address)|shipping (?:costs?|time|policy|status)|"
    r"how long does|not (?:received|arrived)|damaged|gift card balance|payment method|faq|complaint)\b", re.I)
DEAL_RE = re.compile(
    r"\b(cheap(?:est|er)?|sale|on sale|deals?|discount(?:ed|s)?|clearance|coupons?|promo(?:tion)?s?|bargains?|"
    r"budget|affordable|outlet|black friday|cyber monday|free shipping|lowest price|best price|price drop|"
    r"markdown|bogo|offers?)\b|\b(?:under|below|less than|up to|max)\s*\$?\s*\d+|\$\s*\d+|\d+\s*%\s*off", re.I)
#: words that, next to a brand, still mean "show me the brand"
BRAND_CONTEXT = frozenset("store shop official brand collection new arrivals arrival outlet site website products "
                          "range line".split())
#: words that add nothing to a category query
GENERIC = frozenset("best top rated review reviews buy online new for the a an and of in with to my cheap good "
                    "men women kids teens beginners travel home office black white blue red green grey gray pink navy "
                    "mens womens kid women's men's sale 2023 2024 2025 2026 shop".split())
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

INTENT_DESCRIPTIONS = {
    "product": "a specific product: brand, model, feature or attribute",
    "category": "browse a type of product or product category",
    "brand": "a brand name, the brand's store",
    "deal": "cheap sale discount deal coupon low price",
    "support": "customer service help: return refund track order delivery account",
}


def _tokens(s: str) -> list[str]:
    return _TOKEN.findall(s.lower())


def category_text(path: str) -> str:
    """What is embedded for a category: the leaf first, then its ancestors ("Maxi Dresses, Dresses, Women")."""
    parts = [p.strip() for p in path.split(">") if p.strip()]
    return ", ".join(reversed(parts)) if parts else path


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _embedder(embedder=None):
    if embedder is not None:
        return embedder
    from governance.labelling.encoder import shared_embedder  # noqa: PLC0415
    return shared_embedder()


# --------------------------------------------------------------------------------------------------
# zero-shot category labelling for any taxonomy


def label_query_categories(queries: list[str], category_names: list[str], *, embedder=None, tau: float = TAU,
                           top_k: int = 3) -> pl.DataFrame:
    """Zero-shot: each query's most similar category (cosine of MiniLM embeddings), with probability.

    Works on any shop's taxonomy; `category_names` may be plain names or "Top > Sub > Leaf" paths.
    Columns: query, category, category_probability, similarity, top_categories (list of the `top_k`).
    """
    if not category_names:
        raise ValueError("category_names is empty")
    cats = list(dict.fromkeys(category_names))
    emb = _embedder(embedder)
    qe = emb.encode([q or "" for q in queries])
    ce = emb.encode([category_text(c) for c in cats])
    sim = qe @ ce.T
    p = _softmax_rows(sim / tau)
    best = p.argmax(1)
    order = np.argsort(-p, axis=1)[:, :top_k]
    return pl.DataFrame({
        "query": list(queries),
        "category": [cats[i] for i in best],
        "category_probability": p[np.arange(len(queries)), best].astype(float),
        "similarity": sim[np.arange(len(queries)), best].astype(float),
        "top_categories": [[cats[j] for j in row] for row in order],
    }, schema_overrides={"top_categories": pl.List(pl.String)})


# --------------------------------------------------------------------------------------------------
# weak labels


class Catalog:
    """Brand names and vocabularies taken from the products frame (product_id, brand, category_path[, title])."""

    def __init__(self, products: pl.DataFrame | None = None, category_names: Sequence[str] | None = None):
        self.brands: dict[str, str] = {}
        self.categories: list[str] = list(dict.fromkeys(category_names or []))
        self.item_category: dict[str, str] = {}
        self.item_brand: dict[str, str] = {}
        title_vocab: set[str] = set()
        if products is not None and products.height:
            if "brand" in products.columns:
                for b in products["brand"].drop_nulls().unique().to_list():
                    if b and b.strip():
                        self.brands[b.strip().lower()] = b.strip()
            if "category_path" in products.columns:
                self.categories = list(dict.fromkeys(self.categories + sorted(
                    products["category_path"].drop_nulls().unique().to_list())))
            pid = products["product_id"].cast(pl.String).to_list()
            if "category_path" in products.columns:
                self.item_category = {k: v for k, v in zip(pid, products["category_path"].to_list()) if v}
            if "brand" in products.columns:
                self.item_brand = {k: v for k, v in zip(pid, products["brand"].to_list()) if v}
            if "title" in products.columns:
                for t in products["title"].drop_nulls().to_list():
                    title_vocab.update(_tokens(t))
        # category words: the tree's own words, plus title words shared by many products of one leaf
        # (the leaf's nouns: "knife", "dress"); the other title words name specific products
        self.category_vocab = {w for c in self.categories for w in _tokens(c.replace(">", " "))}
        if products is not None and "title" in products.columns and "category_path" in products.columns:
            per_leaf = (products.select(pl.col("category_path"), pl.col("title").cast(pl.String))
                        .drop_nulls().group_by("category_path").agg(pl.col("title")))
            for titles in per_leaf["title"].to_list():
                if len(titles) < 4:
                    continue
                df: dict[str, int] = {}
                for t in titles:
                    for w in set(_tokens(t)):
                        df[w] = df.get(w, 0) + 1
                self.category_vocab |= {w for w, c in df.items() if c / len(titles) >= 0.25}
        self.category_vocab -= {b.lower() for b in self.brands}
        # plural/singular tolerance for category words
        self.category_vocab |= {w[:-1] for w in self.category_vocab if w.endswith("s")}
        self.category_vocab |= {w + "s" for w in list(self.category_vocab)} | {w + "es" for w in list(self.category_vocab)}
        self.top_vocab = {w for c in self.categories for w in _tokens(c.split(">")[0])}
        self.title_vocab = title_vocab
        self.specific_vocab = title_vocab - self.category_vocab - GENERIC - {b.lower() for b in self.brands}
        self._brand_re = (re.compile(r"\b(" + "|".join(sorted(map(re.escape, self.brands), key=len, reverse=True))
                                     + r")\b", re.I) if self.brands else None)

    def find_brand(self, q: str) -> str | None:
        if self._brand_re is None:
            return None
        m = self._brand_re.search(q)
        return self.brands[m.group(1).lower()] if m else None


def weak_intent(query: str, catalog: Catalog) -> tuple[str | None, str, float]:
    """(intent or None, rule that fired, confidence) from the patterns alone."""
    q = query or ""
    if SUPPORT_RE.search(q):
        return "support", "support words", 0.95
    brand = catalog.find_brand(q)
    if brand is not None:
        rest = [t for t in _tokens(re.sub(re.escape(brand), " ", q, flags=re.I))]
        content = [t for t in rest if t not in BRAND_CONTEXT and t not in GENERIC]
        if not content or all(t in catalog.top_vocab for t in content):
            return "brand", "brand name (+ store words / top category)", 0.9
    if DEAL_RE.search(q):
        return "deal", "deal words", 0.9
    if brand is not None:
        return "product", "brand + product words", 0.7
    toks = [t for t in _tokens(q) if t not in GENERIC and not t.isdigit()]
    if toks and catalog.specific_vocab and any(t in catalog.specific_vocab for t in toks):
        return "product", "words naming specific products", 0.6
    if toks and catalog.category_vocab and all(t in catalog.category_vocab for t in toks):
        return "category", "category words only", 0.7
    if re.search(r"\b(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9-]{3,}\b", q.lower()):
        return "product", "model number", 0.6
    return None, "", 0.0


def session_evidence(queries: pl.DataFrame, events: pl.DataFrame | None, catalog: Catalog) -> dict[str, dict]:
    """Per query_id: weighted leaf-category distribution and distinct items/brands engaged after the query."""
    if events is None or events.height == 0 or not catalog.item_category:
        return {}
    ev = events.select(pl.col("session_id").cast(pl.String), pl.col("item_id").cast(pl.String),
                       pl.col("event_type").cast(pl.String),
                       *([pl.col("event_time")] if "event_time" in events.columns else []))
    ev = ev.with_columns(pl.col("event_type").replace_strict(EVENT_WEIGHTS, default=0.0, return_dtype=pl.Float64)
                         .alias("w")).filter(pl.col("w") > 0)
    q = queries.select(pl.col("query_id").cast(pl.String), pl.col("session_id").cast(pl.String),
                       *([pl.col("query_time")] if "query_time" in queries.columns else []))
    timed = "query_time" in q.columns and "event_time" in ev.columns
    if timed:
        q = q.sort("session_id", "query_time").with_columns(
            pl.col("query_time").shift(-1).over("session_id").alias("next_query_time"))
        j = ev.join(q, on="session_id", how="inner").filter(
            (pl.col("event_time") >= pl.col("query_time"))
            & (pl.col("next_query_time").is_null() | (pl.col("event_time") < pl.col("next_query_time"))))
    else:
        j = ev.join(q, on="session_id", how="inner")
    out: dict[str, dict] = {}
    for (qid,), g in j.group_by(["query_id"]):
        dist: dict[str, float] = {}
        items, brands = set(), set()
        for item, w in zip(g["item_id"].to_list(), g["w"].to_list()):
            c = catalog.item_category.get(item)
            if c is None:
                continue
            dist[c] = dist.get(c, 0.0) + w
            items.add(item)
            if item in catalog.item_brand:
                brands.add(catalog.item_brand[item])
        if dist:
            tot = sum(dist.values())
            out[qid] = {"categories": {k: v / tot for k, v in dist.items()}, "items": items, "brands": brands}
    return out


def behaviour_intent(ev: dict | None) -> tuple[str | None, float]:
    if not ev:
        return None, 0.0
    n_items, n_brands, n_cats = len(ev["items"]), len(ev["brands"]), len(ev["categories"])
    if n_items == 1:
        return "product", 0.4
    if n_brands == 1 and n_cats > 1:
        return "brand", 0.4
    if n_cats == 1 and n_brands > 1:
        return "category", 0.4
    return None, 0.0


# --------------------------------------------------------------------------------------------------
# the labeller


@dataclass
class IntentModel:
    """What labelling queries learns from one set of clean queries, kept so other days (and a
    registry version) reuse it: the intent classifier on query embeddings and the category
    prototypes. The patterns (support, deal, brand) are code, applied at labelling time."""

    #: logistic regression over MiniLM query embeddings; None when too few weak labels (zero-shot)
    intent_coef: np.ndarray | None
    intent_intercept: np.ndarray | None
    intent_classes: list[int]
    #: embeddings of INTENT_DESCRIPTIONS: the zero-shot fallback and the share of unseen classes
    description_embeddings: np.ndarray
    categories: list[str]
    #: per category: normalised (name embedding + mean embedding of queries whose clicks landed there)
    category_prototypes: np.ndarray
    #: categories whose prototype saw clicks (the others are zero-shot: their name alone)
    category_seen: np.ndarray
    tau: float = TAU
    n_weak_labels: int = 0
    #: the category scorer (catalog / click prototypes, hierarchy); None in models saved before it existed
    category_model: CategoryModel | None = None

    @property
    def trained(self) -> bool:
        return self.intent_coef is not None

    def intent_proba(self, qe: np.ndarray) -> np.ndarray:
        zero = _softmax_rows((qe @ self.description_embeddings.T) / TAU)
        if not self.trained or len(qe) == 0:
            return zero
        z = qe @ self.intent_coef.T + self.intent_intercept
        if len(self.intent_classes) == 2:  # sklearn's binary case: one decision function
            p1 = 1 / (1 + np.exp(-z[:, 0]))
            fitted = np.stack([1 - p1, p1], 1)
        else:
            fitted = _softmax_rows(z)
        p = np.zeros((len(qe), len(INTENTS)))
        p[:, self.intent_classes] = fitted
        missing = [j for j in range(len(INTENTS)) if j not in set(self.intent_classes)]
        if missing:  # classes no weak label reached: give them their zero-shot share
            p = 0.85 * p
            p[:, missing] += 0.15 * zero[:, missing] / np.maximum(zero[:, missing].sum(1, keepdims=True), 1e-9)
        return p

    def category_proba(self, qe: np.ndarray) -> np.ndarray:
        if self.category_model is not None:
            return self.category_model.proba(qe)
        return _softmax_rows((qe @ self.category_prototypes.T) / self.tau)

    def save(self, directory: Path | str) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays = {"description_embeddings": self.description_embeddings, "category_prototypes": self.category_prototypes,
                  "category_seen": self.category_seen}
        if self.trained:
            arrays |= {"intent_coef": self.intent_coef, "intent_intercept": self.intent_intercept}
        np.savez(d / "intent_model.npz", **arrays)
        (d / "intent_model.json").write_text(json.dumps({
            "intents": list(INTENTS), "intent_classes": self.intent_classes, "categories": self.categories,
            "tau": self.tau, "n_weak_labels": self.n_weak_labels, "encoder": "all-MiniLM-L6-v2 (mean pooled)",
            "category_evidence": self.category_model.evidence if self.category_model is not None else "names"},
            indent=2))
        if self.category_model is not None:
            self.category_model.save(d / "categories")
        return d

    @classmethod
    def load(cls, directory: Path | str) -> IntentModel:
        d = Path(directory)
        meta = json.loads((d / "intent_model.json").read_text())
        if meta["intents"] != list(INTENTS):
            raise ValueError(f"intent model at {d} was trained for intents {meta['intents']}, not {list(INTENTS)}")
        a = np.load(d / "intent_model.npz")
        return cls(intent_coef=a["intent_coef"] if "intent_coef" in a else None,
                   intent_intercept=a["intent_intercept"] if "intent_intercept" in a else None,
                   intent_classes=meta["intent_classes"], description_embeddings=a["description_embeddings"],
                   categories=meta["categories"], category_prototypes=a["category_prototypes"],
                   category_seen=a["category_seen"], tau=meta["tau"], n_weak_labels=meta["n_weak_labels"],
                   category_model=CategoryModel.load(d / "categories") if (d / "categories").is_dir() else None)


@dataclass
class _Prepared:
    """A query table made ready for labelling: texts, reasons, embeddings, click evidence."""

    queries: pl.DataFrame
    texts: list[str | None]
    reasons: list[str | None]
    idx: np.ndarray          # rows that can be labelled
    qe: np.ndarray           # their embeddings
    qc: np.ndarray           # embeddings of their normalised texts (quantities, punctuation removed): categories
    qids: list[str]
    evidence: dict[str, dict]
    catalog: Catalog
    rule: list[tuple[str | None, str, float]]


def _prepare(queries: pl.DataFrame, products, events, category_names, query_column, emb, rep) -> _Prepared:
    if "query_id" not in queries.columns:
        queries = queries.with_row_index("query_id").with_columns(pl.col("query_id").cast(pl.String))
    texts = [t if isinstance(t, str) else None for t in queries[query_column].to_list()]
    reasons = [unlabelable_reason(t, max_chars=QUERY_MAX_CHARS) for t in texts]
    ok = np.array([r is None for r in reasons], dtype=bool)
    catalog = Catalog(products, category_names)
    catalog.products = products
    rep.update(int((~ok).sum()))
    idx = np.flatnonzero(ok)
    qtext = [texts[i] for i in idx]
    last = [0]

    def sub(done: int, _t: int) -> None:
        rep.update(done - last[0])
        last[0] = done

    qe = emb.encode(qtext, progress=sub) if len(idx) else np.zeros((0, 384), dtype=np.float32)
    rep.close()
    normed = [normalize_text(t) for t in qtext]
    changed = [k for k, (t, n) in enumerate(zip(qtext, normed)) if n != " ".join(t.lower().split())]
    qc = qe.copy()
    if changed:
        qc[changed] = emb.encode([normed[k] for k in changed])
    qids = queries["query_id"].cast(pl.String).to_list()
    evidence = session_evidence(queries, events, catalog) if "session_id" in queries.columns else {}
    return _Prepared(queries, texts, reasons, idx, qe, qc, qids, evidence, catalog,
                     [weak_intent(t, catalog) for t in qtext])


def _click_distribution(ev: dict | None, col: dict[str, int]) -> np.ndarray | None:
    if not ev:
        return None
    d = np.zeros(len(col))
    for c, v in ev["categories"].items():
        if c in col:
            d[col[c]] = v
    return d / d.sum() if d.sum() > 0 else None


def _fit(prep: _Prepared, emb, tau: float, behaviour_intent_votes: bool, cache_dir=None) -> IntentModel:
    y, w = [], []
    for (lab, _src, conf), i in zip(prep.rule, prep.idx):
        b_lab, b_conf = behaviour_intent(prep.evidence.get(prep.qids[i]))
        if lab is None and b_lab is not None and behaviour_intent_votes:
            lab, conf = b_lab, b_conf
        elif lab is not None and b_lab is not None:
            conf = min(0.99, conf + 0.1) if b_lab == lab else conf * 0.8
        y.append(lab)
        w.append(conf)
    lab = np.array([INTENTS.index(v) if v else -1 for v in y], dtype=np.int64)
    have = lab >= 0
    de = emb.encode([INTENT_DESCRIPTIONS[i] for i in INTENTS])
    coef = intercept = None
    classes: list[int] = []
    if have.sum() >= 10 and len(np.unique(lab[have])) >= 2:
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
        lr = LogisticRegression(C=2.0, max_iter=2000)
        lr.fit(prep.qe[have], lab[have], sample_weight=np.asarray(w)[have])
        coef, intercept, classes = lr.coef_, lr.intercept_, [int(c) for c in lr.classes_]

    cats = prep.catalog.categories
    dim = prep.qe.shape[1] if prep.qe.size else 384
    cmodel = None
    if cats:
        col = {c: j for j, c in enumerate(cats)}
        rows = [(k, _click_distribution(prep.evidence.get(prep.qids[i]), col)) for k, i in enumerate(prep.idx)]
        rows = [(k, d) for k, d in rows if d is not None]
        qv = prep.qc[[k for k, _ in rows]] if rows else None
        qd = np.stack([d for _, d in rows]) if rows else None
        ptexts, pcats = product_texts(getattr(prep.catalog, "products", None))
        cmodel = CategoryModel.build(cats, _encode_fn(emb, cache_dir), product_texts=ptexts, product_categories=pcats,
                                     query_vectors=qv, query_distributions=qd)
        proto, seen = cmodel.prototypes(), (cmodel.click_mass > 0) | (cmodel.n_products > 0)
    else:
        proto, seen = np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=bool)
    return IntentModel(intent_coef=coef, intent_intercept=intercept, intent_classes=classes,
                       description_embeddings=de, categories=list(cats), category_prototypes=proto,
                       category_seen=seen, tau=tau, n_weak_labels=int(have.sum()), category_model=cmodel)


def product_texts(products: pl.DataFrame | None) -> tuple[list[str] | None, list[str] | None]:
    """Each current product's text for its category's prototype: title, and the description's start."""
    if products is None or not products.height or "category_path" not in products.columns:
        return None, None
    title = pl.col("title").cast(pl.String).fill_null("") if "title" in products.columns else pl.lit("")
    desc = (pl.col("description").cast(pl.String).fill_null("").str.slice(0, 200) if "description" in products.columns
            else pl.lit(""))
    t = products.select(text=pl.concat_str([title, desc], separator=". ").str.strip_chars(". "),
                        cat=pl.col("category_path").cast(pl.String)).filter(
        pl.col("cat").is_not_null() & (pl.col("text").str.len_chars() > 0))
    return t["text"].to_list(), t["cat"].to_list()


def _encode_fn(emb, cache_dir):
    from governance.labelling.embed_cache import cached_encode  # noqa: PLC0415
    return lambda texts: cached_encode(emb, list(texts), cache_dir)


def fit_intent_model(queries: pl.DataFrame, *, products: pl.DataFrame | None = None,
                     events: pl.DataFrame | None = None, category_names: Sequence[str] | None = None,
                     query_column: str = "query_text", embedder=None, tau: float = TAU,
                     behaviour_intent_votes: bool = False, progress: Progress | None = None,
                     cache_dir: Path | str | None = None) -> IntentModel:
    """Learn an `IntentModel` from queries' weak labels (see the module docstring)."""
    emb = _embedder(embedder)
    prep = _prepare(queries, products, events, category_names, query_column, emb,
                    ProgressReporter(queries.height, progress, False, "queries"))
    return _fit(prep, emb, tau, behaviour_intent_votes, cache_dir)


def label_queries(queries: pl.DataFrame, *, products: pl.DataFrame | None = None, events: pl.DataFrame | None = None,
                  category_names: Sequence[str] | None = None, query_column: str = "query_text", embedder=None,
                  progress: Progress | None = None, show_progress: bool | None = None,
                  tau: float = TAU, behaviour_intent_votes: bool = False,
                  model: IntentModel | None = None, model_name: str = MODEL_NAME,
                  model_version: str = MODEL_VERSION, top_k: int = 0,
                  cache_dir: Path | str | None = None) -> pl.DataFrame:
    """`queries` plus intent, intent_probability, intent_source, category, category_probability,
    category_source, model_name, model_version, labelled_at, unlabelable_reason.

    `products` (product_id, brand, category_path[, title]) supplies brands and the category tree;
    `events` (session_id, item_id, event_type[, event_time]) supplies click evidence (queries need a
    session_id, and query_time to bound the evidence to the events before the next query).
    Without either, the labeller runs on patterns + zero-shot similarity (`category_names`).
    `model`: a registered `IntentModel` to apply; without one, a model is fitted on these queries.
    `top_k` > 0 adds ``top_categories``: the k best leaves with their scores. `cache_dir`
    (``Settings.model_cache``): product-text embeddings are cached there by content hash.
    `behaviour_intent_votes`: let click spread label queries no pattern covers (off by default: on
    the generated shop it cost 7 points of intent accuracy — one clicked item does not make a
    product query); clicks always inform the category and the weak labels' confidence.
    """
    n = queries.height
    emb = _embedder(embedder)
    prep = _prepare(queries, products, events, category_names, query_column, emb,
                    ProgressReporter(n, progress, show_progress, "queries"))
    if model is None:
        model = _fit(prep, emb, tau, behaviour_intent_votes, cache_dir)
    idx, qe = prep.idx, prep.qe

    # ---- intent --------------------------------------------------------------------------------
    p_int = model.intent_proba(qe)
    intent, intent_p, intent_src = [None] * n, [None] * n, [None] * n
    strong = {"support", "deal", "brand"}
    for k, i in enumerate(idx):
        p = p_int[k]
        lab, src, _ = prep.rule[k]
        if lab in strong:
            j = INTENTS.index(lab)
            intent[i], intent_p[i], intent_src[i] = lab, float(0.5 + 0.5 * p[j]), f"rule: {src}"
        else:
            if not model.trained:
                # zero-shot similarity to descriptions is only trusted between product and category:
                # support, deal and brand are what the patterns recognise
                p = p.copy()
                p[[INTENTS.index(x) for x in strong]] = 0.0
                p = p / max(p.sum(), 1e-12)
            j = int(p.argmax())
            intent[i], intent_p[i] = INTENTS[j], float(p[j])
            intent_src[i] = "model" if model.trained else "zero-shot"

    # ---- category (independent of the intent: a support query keeps its category) -------------------
    cat, cat_p, cat_src = [None] * n, [None] * n, [None] * n
    conf, level, tops = [None] * n, [None] * n, [None] * n
    cats = model.categories
    if cats and len(idx):
        col = {c: j for j, c in enumerate(cats)}
        pc = model.category_proba(prep.qc)
        base_src = ("model: " + model.category_model.evidence) if model.category_model is not None else (
            "model" if model.category_seen.any() else "zero-shot")
        clicked = np.zeros(len(idx), dtype=bool)
        for k, i in enumerate(idx):
            d = _click_distribution(prep.evidence.get(prep.qids[i]), col)
            if d is not None:
                pc[k] = 0.5 * d + 0.5 * pc[k]
                clicked[k] = True
        if model.category_model is not None:
            pred = model.category_model.predict(prep.qc, top_k=max(top_k, 1), proba=pc)
            conf_k, level_k, tops_k = (pred["category_confident"].to_list(), pred["category_level"].to_list(),
                                       pred["top_categories"].to_list())
        else:
            order = np.argsort(-pc, axis=1)[:, :max(top_k, 1)]
            tops_k = [[{"category": cats[j], "score": float(pc[r, j])} for j in row] for r, row in enumerate(order)]
            conf_k = level_k = [None] * len(idx)
        best = pc.argmax(1)
        for k, i in enumerate(idx):
            j = int(best[k])
            cat[i], cat_p[i] = cats[j], float(pc[k, j])
            cat_src[i] = "clicks + " + base_src if clicked[k] else base_src
            conf[i], level[i], tops[i] = conf_k[k], level_k[k], tops_k[k]
    extra = [pl.Series("category_confident", conf, dtype=pl.String), pl.Series("category_level", level, dtype=pl.String)]
    if top_k:
        extra.append(pl.Series("top_categories", [t[:top_k] if t is not None else None for t in tops],
                               dtype=pl.List(pl.Struct({"category": pl.String, "score": pl.Float64}))))
    now = datetime.now(UTC)
    return prep.queries.with_columns(
        pl.Series("intent", intent, dtype=pl.String),
        pl.Series("intent_probability", intent_p, dtype=pl.Float64),
        pl.Series("intent_source", intent_src, dtype=pl.String),
        pl.Series("category", cat, dtype=pl.String),
        pl.Series("category_probability", cat_p, dtype=pl.Float64),
        pl.Series("category_source", cat_src, dtype=pl.String),
        *extra,
        pl.lit(model_name, dtype=pl.String).alias("model_name"),
        pl.lit(model_version, dtype=pl.String).alias("model_version"),
        pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("labelled_at"),
        pl.Series("unlabelable_reason", prep.reasons, dtype=pl.String),
    )


def evaluate_queries(labelled: pl.DataFrame, truth: pl.DataFrame, *, intent_column: str | None = None,
                     category_column: str | None = None) -> dict:
    """Accuracy / macro-F1 of intent and accuracy of leaf category against a truth table keyed by query_id."""
    from governance.labelling.metrics import macro_f1  # noqa: PLC0415
    ic = intent_column or next(c for c in ("true_intent", "intent", "query_intent") if c in truth.columns)
    cc = category_column or next((c for c in ("true_leaf_category", "category_path", "category", "true_category")
                                  if c in truth.columns), None)
    t = truth.select(pl.col("query_id").cast(pl.String), pl.col(ic).alias("_ti"),
                     *([pl.col(cc).alias("_tc")] if cc else []))
    j = labelled.with_columns(pl.col("query_id").cast(pl.String)).join(t, on="query_id", how="inner")
    yi = np.array([INTENTS.index(v) if v in INTENTS else -1 for v in j["_ti"].to_list()])
    pi = np.array([INTENTS.index(v) if v in INTENTS else -1 for v in j["intent"].to_list()])
    keep = yi >= 0
    out = {"n": int(j.height), "intent_accuracy": float((yi[keep] == pi[keep]).mean()) if keep.any() else None,
           "intent_macro_f1": macro_f1(yi[keep], np.where(pi[keep] < 0, 0, pi[keep]), len(INTENTS)) if keep.any()
           else None}
    if cc:
        c = j.filter(pl.col("_tc").is_not_null())
        out["category_n"] = c.height
        out["category_accuracy"] = float((c["_tc"] == c["category"]).fill_null(False).mean()) if c.height else None
    return out
