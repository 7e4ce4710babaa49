"""Product categories of short texts (search queries, product names) from what a shop always has.

The plain baseline — cosine of the text's MiniLM embedding with the category *name*'s — ignores
the shop's own evidence. ``CategoryModel`` adds, per leaf of the category tree:

* **name templates over the path** — the leaf alone, ``"a leaf product"`` and ``"leaf (parent)"``,
  embedded and averaged (a leaf called "other" or "more" is read in its parent's context);
* **catalog prototypes** — the mean embedding of the leaf's products' texts (title, and the start
  of the description when there is one), blended with the name vector by how many products the leaf
  has (``n / (n + 2)``: one product barely moves it, ten dominate);
* **click prototypes** — the mean embedding of the queries whose clicks / purchases landed in the
  leaf (weak labels; blended the same way by the click mass);
* **nearest exemplars** — the products (and clicked queries) most similar to the text vote for
  their own leaves (``k`` nearest, weights ``exp(cos / τ)``); capped per leaf so a big leaf cannot
  drown the others;
* **the batch itself** (transductive) — prototypes are moved towards the texts being labelled that
  they attract (three soft k-means steps started at the prototypes, ``transductive_beta``); this
  uses the unlabelled texts only and needs a batch of ``transductive_min_batch`` or more and at
  least ``transductive_min_per_leaf`` (10) texts per leaf on average — with fewer, prototypes drift
  onto single texts (on a generated shop's 163 held-out queries over 79 leaves it cost 10 points);
* **the hierarchy** — every ancestor of a leaf gets a prototype (the mean of its leaves' prototypes
  plus its own name); a leaf's score adds ``hierarchy_weight`` × the mean cosine with its ancestors,
  so a text that is clearly "dairy" prefers dairy leaves when the leaf cosines are close; and the
  output backs off to the deepest ancestor whose summed probability reaches ``min_confidence`` when
  the leaf itself is unsure (``category_confident``, ``category_level``). An ancestor's probability
  is the sum of its leaves' (so a department is scored through all its aisles' names and evidence).

Texts are normalised before embedding (lower case, quantities and pack sizes such as "12 oz",
"6 ct", "2 x 500 ml" removed, punctuation to spaces), the same way for every source.
Probabilities: ``(1 - α) · softmax(score / τ) + α · kNN vote`` (α = ``knn_weight`` when exemplars
exist) — good for ranking and thresholds, not calibrated. How far to trust the catalog and the
exemplars (``knn_weight``, ``blend_prior``) is chosen per shop on a held-out fifth of its own clicked
queries (or products), because it depends on whether its product texts read like what is labelled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

PATH_SEPARATOR = ">"
_QUANTITY = re.compile(
    r"\b\d+(?:[.,/]\d+)?\s*(?:x\s*\d+(?:[.,]\d+)?\s*)?(?:fl\.?\s*oz|oz|ounces?|ct|count|pk|packs?|pcs?|pieces?|lbs?|"
    r"pounds?|g|gr|grams?|kg|mg|ml|cl|l|liters?|litres?|gal|gallons?|qt|pt|in|inch(?:es)?|cm|mm|ft|gb|tb|mah|w|v)\b\.?",
    re.I)
_NON_WORD = re.compile(r"[^\w&'+-]+", re.UNICODE)


def normalize_text(text: str | None) -> str:
    """Lower case, quantities / pack sizes removed, punctuation to spaces; the original when nothing is left."""
    if not isinstance(text, str):
        return ""
    s = _NON_WORD.sub(" ", _QUANTITY.sub(" ", text.lower())).strip()
    s = re.sub(r"\s+", " ", s)
    return s or text.strip().lower()


def split_path(path: str) -> list[str]:
    parts = [p.strip() for p in str(path).split(PATH_SEPARATOR) if p.strip()]
    return parts or [str(path).strip()]


def path_templates(path: str) -> list[str]:
    """The texts whose mean embedding stands for a category name (leaf first, then its ancestors)."""
    parts = split_path(path)
    leaf = parts[-1].lower()
    out = [leaf, f"a {leaf} product"]
    if len(parts) > 1:
        out.append(f"{leaf} ({parts[-2].lower()})")
    return list(dict.fromkeys(out))


def _norm(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


Encode = Callable[[list[str]], np.ndarray]


def _encoder(embedder, cache_dir: Path | str | None) -> Encode:
    from governance.labelling.embed_cache import cached_encode  # noqa: PLC0415
    return lambda texts: cached_encode(embedder, list(texts), cache_dir)


@dataclass
class CategoryParams:
    tau: float = 0.05
    hierarchy_weight: float = 0.0      # ancestors' cosine added to a leaf's score (0: ancestors only aggregate)
    transductive_beta: float = 1.0     # weight of the batch's own texts when refining prototypes (0: off)
    transductive_iterations: int = 3
    transductive_min_batch: int = 50
    transductive_min_per_leaf: float = 10.0  # and at least this many texts per leaf on average
    knn_k: int = 15
    knn_tau: float = 0.05
    knn_weight: float = 0.5
    max_exemplars_per_leaf: int = 200
    min_confidence: float = 0.5
    blend_prior: float = 2.0       # n / (n + blend_prior): weight of catalog / click means vs the name


#: (knn_weight, blend_prior) tried by ``CategoryModel.build`` on the shop's own held-out evidence: how far
#: to trust the catalog and the exemplars depends on whether they read like the texts being labelled
#: (product names labelled from product names: a lot; search queries from product titles: little)
SELECTION_GRID = tuple((k, b) for k in (0.5, 0.25, 0.0) for b in (2.0, 8.0, 20.0))
MIN_SELECTION_TEXTS = 30


@dataclass
class CategoryModel:
    """Leaf categories with name, catalog and click prototypes, ancestors and exemplars (module docstring)."""

    categories: list[str]
    name_vectors: np.ndarray              # (L, d) mean template embedding per leaf
    product_means: np.ndarray             # (L, d) mean product-text embedding (0 where none)
    n_products: np.ndarray                # (L,)
    click_means: np.ndarray               # (L, d) mean embedding of queries clicked into the leaf
    click_mass: np.ndarray                # (L,)
    nodes: list[str]                      # every ancestor path ("a", "a > b") of every leaf
    node_names: np.ndarray                # (N, d) template embedding per ancestor
    leaf_ancestors: list[list[int]]       # per leaf, indexes into nodes (root first)
    exemplars: np.ndarray = field(default_factory=lambda: np.zeros((0, 384), dtype=np.float16))
    exemplar_leaf: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    params: CategoryParams = field(default_factory=CategoryParams)

    # ---- building ------------------------------------------------------------------------------
    @classmethod
    def build(cls, categories: Sequence[str], encode: Encode, *, product_texts: Sequence[str] | None = None,
              product_categories: Sequence[str] | None = None, query_vectors: np.ndarray | None = None,
              query_distributions: np.ndarray | None = None, params: CategoryParams | None = None,
              use_exemplars: bool = True) -> CategoryModel:
        """`encode(texts) -> L2-normalised vectors`. Product texts/categories give catalog prototypes and
        exemplars; `query_vectors` with `query_distributions` ((n, L) click share per leaf) give click ones.
        Without `params`, the evidence's weights (``SELECTION_GRID``) are chosen on a held-out fifth of the
        shop's own evidence (``select_weights``)."""
        if params is None:
            params = select_weights(categories, encode, product_texts, product_categories, query_vectors,
                                    query_distributions, use_exemplars)
        cats = _leaves(categories)
        if not cats:
            raise ValueError("no categories to label with")
        col = {c: j for j, c in enumerate(cats)}
        templates = [path_templates(c) for c in cats]
        flat = [t for ts in templates for t in ts]
        tv = encode(flat)
        owner = np.repeat(np.arange(len(cats)), [len(ts) for ts in templates])
        name_vectors = _norm(_group_mean(tv, owner, len(cats)))
        dim = name_vectors.shape[1]
        # ancestors
        nodes: list[str] = []
        node_col: dict[str, int] = {}
        leaf_anc: list[list[int]] = []
        for c in cats:
            parts = split_path(c)
            anc = []
            for depth in range(1, len(parts)):
                key = f" {PATH_SEPARATOR} ".join(parts[:depth])
                if key not in node_col:
                    node_col[key] = len(nodes)
                    nodes.append(key)
                anc.append(node_col[key])
            leaf_anc.append(anc)
        node_names = (_norm(_group_mean(*_flat_encode([path_templates(n) for n in nodes], encode), len(nodes)))
                      if nodes else np.zeros((0, dim), dtype=np.float32))
        # catalog
        pmeans, npro = np.zeros((len(cats), dim), dtype=np.float32), np.zeros(len(cats))
        ex, ex_leaf = np.zeros((0, dim), dtype=np.float16), np.zeros(0, dtype=np.int32)
        if product_texts is not None and product_categories is not None and len(product_texts):
            texts, lab, keep = _labelled_products(product_texts, product_categories, col)
            if keep.any():
                idx = np.flatnonzero(keep)
                pv = encode([texts[i] for i in idx])
                pl_ = lab[idx]
                pmeans = _group_mean(pv, pl_, len(cats))
                npro = np.bincount(pl_, minlength=len(cats)).astype(float)
                if use_exemplars:
                    # stable cap per leaf: the first `max_exemplars_per_leaf` in the given order
                    order = np.argsort(pl_, kind="stable")
                    rank = np.empty(len(pl_), dtype=np.int64)
                    starts = np.searchsorted(pl_[order], pl_[order])
                    rank[order] = np.arange(len(pl_)) - starts
                    cap = rank < params.max_exemplars_per_leaf
                    ex, ex_leaf = pv[cap].astype(np.float16), pl_[cap].astype(np.int32)
        # clicks
        cmeans, cmass = np.zeros((len(cats), dim), dtype=np.float32), np.zeros(len(cats))
        if query_vectors is not None and query_distributions is not None and len(query_vectors):
            d = np.asarray(query_distributions, dtype=np.float64)
            cmass = d.sum(0)
            cmeans = (d.T @ query_vectors) / np.maximum(cmass, 1e-12)[:, None]
            if use_exemplars:
                top = d.argmax(1)
                sure = d.max(1) >= 0.5
                ex = np.concatenate([ex, query_vectors[sure].astype(np.float16)])
                ex_leaf = np.concatenate([ex_leaf, top[sure].astype(np.int32)])
        return cls(categories=cats, name_vectors=name_vectors.astype(np.float32), product_means=pmeans.astype(np.float32),
                   n_products=npro, click_means=cmeans.astype(np.float32), click_mass=cmass, nodes=nodes,
                   node_names=node_names.astype(np.float32), leaf_ancestors=leaf_anc, exemplars=ex,
                   exemplar_leaf=ex_leaf, params=params)

    # ---- scoring -------------------------------------------------------------------------------
    @property
    def evidence(self) -> str:
        parts = ["names"]
        if self.n_products.sum():
            parts.append("catalog")
        if self.click_mass.sum():
            parts.append("clicks")
        return " + ".join(parts)

    def prototypes(self) -> np.ndarray:
        k = self.params.blend_prior
        wp = (self.n_products / (self.n_products + k))[:, None] * 2.0
        wc = (self.click_mass / (self.click_mass + k))[:, None] * 2.0
        return _norm(self.name_vectors + wp * _norm(self.product_means) + wc * _norm(self.click_means))

    def _node_prototypes(self, leaf_protos: np.ndarray) -> np.ndarray:
        if not self.nodes:
            return np.zeros((0, leaf_protos.shape[1]), dtype=np.float32)
        acc = np.zeros((len(self.nodes), leaf_protos.shape[1]))
        cnt = np.zeros(len(self.nodes))
        for j, anc in enumerate(self.leaf_ancestors):
            for a in anc:
                acc[a] += leaf_protos[j]
                cnt[a] += 1
        return _norm(_norm(acc / np.maximum(cnt, 1)[:, None]) + self.node_names)

    def refined_prototypes(self, qv: np.ndarray) -> np.ndarray:
        """Prototypes moved towards the batch's own texts (soft k-means started at the prototypes): each
        iteration adds ``transductive_beta`` × the probability-weighted mean of the texts a leaf attracts.
        Unsupervised: uses the texts being labelled, never their labels."""
        protos = self.prototypes()
        p = self.params
        if (not p.transductive_beta or len(qv) < p.transductive_min_batch
                or len(qv) < p.transductive_min_per_leaf * len(self.categories)):
            return protos
        refined = protos
        for _ in range(p.transductive_iterations):
            w = _softmax_rows((qv @ refined.T) / p.tau)
            refined = _norm(protos + p.transductive_beta * (w.T @ qv) / np.maximum(w.sum(0), 1e-9)[:, None])
        return refined.astype(np.float32)

    def scores(self, qv: np.ndarray) -> np.ndarray:
        """(n, L) leaf scores: cosine with the (batch-refined) leaf prototype + hierarchy_weight × mean
        ancestor cosine."""
        protos = self.refined_prototypes(qv)
        s = qv @ protos.T
        if self.nodes and self.params.hierarchy_weight:
            ns = qv @ self._node_prototypes(protos).T
            anc = np.zeros((len(self.categories), len(self.nodes)))
            for j, a in enumerate(self.leaf_ancestors):
                if a:
                    anc[j, a] = 1.0 / len(a)
            s = s + self.params.hierarchy_weight * (ns @ anc.T)
        return s

    def knn_vote(self, qv: np.ndarray) -> np.ndarray | None:
        if not len(self.exemplars):
            return None
        p = self.params
        k = min(p.knn_k, len(self.exemplars))
        out = np.zeros((len(qv), len(self.categories)))
        ex = self.exemplars.astype(np.float32)
        for s in range(0, len(qv), 2048):
            sim = qv[s:s + 2048] @ ex.T
            nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            top = np.take_along_axis(sim, nn, 1)
            w = np.exp((top - top.max(1, keepdims=True)) / p.knn_tau)
            rows = np.repeat(np.arange(len(top)), k)
            np.add.at(out[s:s + 2048], (rows, self.exemplar_leaf[nn].ravel()), w.ravel())
        return out / np.maximum(out.sum(1, keepdims=True), 1e-12)

    def proba(self, qv: np.ndarray) -> np.ndarray:
        p = _softmax_rows(self.scores(qv) / self.params.tau)
        vote = self.knn_vote(qv)
        if vote is not None:
            a = self.params.knn_weight
            p = (1 - a) * p + a * vote
        return p

    def node_proba(self, p_leaf: np.ndarray) -> np.ndarray:
        """(n, N) probability of each ancestor: the sum over its leaves."""
        m = np.zeros((len(self.categories), len(self.nodes)))
        for j, a in enumerate(self.leaf_ancestors):
            m[j, a] = 1.0
        return p_leaf @ m

    def predict(self, qv: np.ndarray, *, top_k: int = 5, proba: np.ndarray | None = None) -> pl.DataFrame:
        """category (best leaf, always given), category_probability, category_confident (deepest path whose
        probability ≥ min_confidence, or the best leaf / null when nothing is), category_level, top_categories."""
        p = self.proba(qv) if proba is None else proba
        n = len(p)
        best = p.argmax(1)
        bp = p[np.arange(n), best]
        confident: list[str | None] = [self.categories[j] if bp[i] >= self.params.min_confidence else None
                                       for i, j in enumerate(best)]
        level = ["leaf" if c is not None else None for c in confident]
        unsure = np.flatnonzero(bp < self.params.min_confidence)
        if len(unsure) and self.nodes:
            npb = self.node_proba(p[unsure])
            depth = np.array([len(split_path(x)) for x in self.nodes])
            for r, i in enumerate(unsure):
                ok = np.flatnonzero(npb[r] >= self.params.min_confidence)
                if len(ok):
                    j = ok[np.lexsort((-npb[r, ok], -depth[ok]))[0]]
                    confident[i], level[i] = self.nodes[j], f"ancestor (depth {depth[j]})"
        k = min(top_k, len(self.categories))
        order = np.argsort(-p, axis=1)[:, :k]
        return pl.DataFrame({
            "category": [self.categories[j] for j in best],
            "category_probability": bp.astype(float),
            "category_confident": confident,
            "category_level": level,
            "top_categories": [[{"category": self.categories[j], "score": float(p[i, j])} for j in row]
                               for i, row in enumerate(order)],
        }, schema_overrides={"category_confident": pl.String, "category_level": pl.String,
                             "top_categories": pl.List(pl.Struct({"category": pl.String, "score": pl.Float64}))})

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "categories.npz", name_vectors=self.name_vectors, product_means=self.product_means,
                 n_products=self.n_products, click_means=self.click_means, click_mass=self.click_mass,
                 node_names=self.node_names, exemplars=self.exemplars, exemplar_leaf=self.exemplar_leaf)
        (d / "categories.json").write_text(json.dumps({
            "categories": self.categories, "nodes": self.nodes, "leaf_ancestors": self.leaf_ancestors,
            "params": asdict(self.params), "evidence": self.evidence}, indent=1))
        return d

    @classmethod
    def load(cls, directory: Path | str) -> CategoryModel:
        d = Path(directory)
        meta = json.loads((d / "categories.json").read_text())
        with np.load(d / "categories.npz") as a:
            arrays = {k: a[k] for k in a.files}
        return cls(categories=meta["categories"], nodes=meta["nodes"], leaf_ancestors=meta["leaf_ancestors"],
                   params=CategoryParams(**meta["params"]), **arrays)


def select_weights(categories, encode: Encode, product_texts, product_categories, query_vectors, query_distributions,
                   use_exemplars: bool = True) -> CategoryParams:
    """``knn_weight`` and ``blend_prior`` chosen by top-1 accuracy on every fifth item of the evidence most
    like what will be labelled — the clicked queries (their main leaf) when there are clicks, else the
    products — with a model built from the other four fifths. Defaults when there is too little to judge
    (fewer than ``MIN_SELECTION_TEXTS`` held-out items). Never sees the texts it will label."""
    default = CategoryParams()
    cats = _leaves(categories)
    kw = {"product_texts": product_texts, "product_categories": product_categories, "query_vectors": query_vectors,
          "query_distributions": query_distributions, "use_exemplars": use_exemplars, "params": default}
    if query_vectors is not None and query_distributions is not None and len(query_vectors):
        d = np.asarray(query_distributions, dtype=np.float64)
        held = (np.arange(len(d)) % 5 == 0) & (d.max(1) >= 0.5)
        if held.sum() < MIN_SELECTION_TEXTS:
            return default
        kw.update(query_vectors=np.asarray(query_vectors)[~held], query_distributions=d[~held])
        val_vectors, val_truth = np.asarray(query_vectors)[held], d[held].argmax(1)
    elif product_texts is not None and product_categories is not None and len(product_texts):
        texts, lab, keep = _labelled_products(product_texts, product_categories, {c: j for j, c in enumerate(cats)})
        usable = np.flatnonzero(keep)
        held = np.zeros(len(texts), dtype=bool)
        held[usable[::5]] = True
        if held.sum() < MIN_SELECTION_TEXTS:
            return default
        kw.update(product_texts=[t for t, h in zip(product_texts, held) if not h],
                  product_categories=[c for c, h in zip(product_categories, held) if not h])
        val_vectors, val_truth = encode([texts[i] for i in np.flatnonzero(held)]), lab[held]
    else:
        return default
    model = CategoryModel.build(cats, encode, **kw)
    best = (-1.0, default)
    for knn_weight, blend_prior in SELECTION_GRID:
        model.params = CategoryParams(knn_weight=knn_weight, blend_prior=blend_prior)
        top1 = float((model.proba(val_vectors).argmax(1) == val_truth).mean())
        if top1 > best[0] + 1e-9:
            best = (top1, model.params)
    return best[1]


def _leaves(categories: Sequence[str]) -> list[str]:
    """The distinct, non-blank category paths, in first-seen order."""
    return list(dict.fromkeys(c for c in categories if isinstance(c, str) and c.strip()))


def _labelled_products(product_texts, product_categories, col: dict[str, int]):
    """(normalised texts, leaf index or -1, usable mask): products of a known leaf with some text."""
    lab = np.array([col.get(c, -1) if isinstance(c, str) else -1 for c in product_categories])
    texts = [normalize_text(t) for t in product_texts]
    return texts, lab, (lab >= 0) & np.array([bool(t) for t in texts], dtype=bool)


def _group_mean(v: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, v.shape[1]), dtype=np.float64)
    np.add.at(out, groups, v)
    cnt = np.bincount(groups, minlength=n)
    return (out / np.maximum(cnt, 1)[:, None]).astype(np.float32)


def _flat_encode(groups: list[list[str]], encode: Encode) -> tuple[np.ndarray, np.ndarray]:
    flat = [t for g in groups for t in g]
    return encode(flat), np.repeat(np.arange(len(groups)), [len(g) for g in groups])


def zero_shot_scores(qv: np.ndarray, categories: Sequence[str], encode: Encode) -> np.ndarray:
    """The plain baseline: cosine of the raw text's embedding with the category name's (leaf name only)."""
    return qv @ encode([split_path(c)[-1] for c in categories]).T


def topk_accuracy(scores: np.ndarray, truth: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Share of rows whose true column is among the k highest scores, per k (ties broken by column
    order, as ``argmax`` breaks them: a tie never counts in the truth's favour for free)."""
    t = scores[np.arange(len(truth)), truth][:, None]
    cols = np.arange(scores.shape[1])[None, :]
    ranks = (scores > t).sum(1) + ((scores == t) & (cols < truth[:, None])).sum(1)
    return {f"top{k}": float((ranks < k).mean()) for k in ks}
