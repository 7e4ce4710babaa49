"""CategoryModel (catalog / click prototypes, hierarchy, back-off, top-k) and the embedding cache, on a
bag-of-words embedder (no model): fast tests of the logic; the real benchmark is bench/label.py --categories."""

import hashlib

import numpy as np
import pytest

from governance.labelling.categories import (
    CategoryModel, CategoryParams, normalize_text, path_templates, topk_accuracy,
)
from governance.labelling.embed_cache import EmbeddingCache, cached_encode


class BagEmbedder:
    """Deterministic bag-of-words vectors; counts calls so caching can be checked."""

    dim = 128
    path = "bag"
    max_length = 0
    backend = "bag"

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts, **_):
        self.seen.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(",", " ").replace(">", " ").replace("(", " ").replace(")", " ").split():
                out[i, int(hashlib.md5(w.rstrip("s").encode()).hexdigest(), 16) % self.dim] += 1
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n == 0, 1, n)


def test_normalize_text_drops_quantities_and_punctuation():
    assert normalize_text("Organic Whole Milk, 1 gal") == "organic whole milk"
    assert normalize_text("Sparkling Water 12 x 355 ml!") == "sparkling water"
    assert normalize_text("AA Batteries (24 ct)") == "aa batteries"
    assert normalize_text("12 oz") == "12 oz"  # nothing left: the original (lower case) is kept
    assert normalize_text(None) == ""


def test_templates_read_a_vague_leaf_in_its_parent():
    t = path_templates("Pantry > Other")
    assert "other (pantry)" in t and "other" in t


# names that say nothing about the products: only the catalog can tell the leaves apart
CATS = ["Food > Aisle 1", "Food > Aisle 2", "Home > Aisle 3"]
PRODUCT_TEXTS = ["crunchy peanut butter", "smooth peanut butter jar", "strawberry jam", "grape jelly",
                 "dish soap lemon", "laundry detergent pods"]
PRODUCT_CATS = [CATS[0], CATS[0], CATS[1], CATS[1], CATS[2], CATS[2]]
QUERIES = ["peanut butter", "jam", "detergent"]
TRUTH = np.array([0, 1, 2])


def test_catalog_prototypes_beat_names_only():
    emb = BagEmbedder()
    qv = emb.encode(QUERIES)
    names = CategoryModel.build(CATS, emb.encode)
    catalog = CategoryModel.build(CATS, emb.encode, product_texts=PRODUCT_TEXTS, product_categories=PRODUCT_CATS)
    assert topk_accuracy(catalog.proba(qv), TRUTH, (1,))["top1"] == 1.0
    assert topk_accuracy(names.proba(qv), TRUTH, (1,))["top1"] < 1.0
    assert catalog.evidence == "names + catalog" and names.evidence == "names"


def test_click_weak_labels_teach_a_leaf():
    emb = BagEmbedder()
    clicked = emb.encode(["marmalade", "marmalade orange"])
    dist = np.array([[0.0, 1.0, 0.0], [0.0, 0.8, 0.2]])
    m = CategoryModel.build(CATS, emb.encode, query_vectors=clicked, query_distributions=dist)
    assert m.evidence == "names + clicks"
    assert m.categories[int(m.proba(emb.encode(["marmalade"])).argmax())] == CATS[1]


def test_ancestors_sum_their_leaves_and_back_off_when_the_leaf_is_unsure():
    emb = BagEmbedder()
    m = CategoryModel.build(CATS, emb.encode, product_texts=PRODUCT_TEXTS, product_categories=PRODUCT_CATS,
                            params=CategoryParams(min_confidence=0.6))
    p = np.array([[0.45, 0.45, 0.10], [0.9, 0.05, 0.05], [0.34, 0.33, 0.33]])
    npb = m.node_proba(p)
    assert np.allclose(npb[:, m.nodes.index("Food")], [0.9, 0.95, 0.67])
    out = m.predict(np.zeros((3, emb.dim), dtype=np.float32), proba=p, top_k=2)
    assert out["category"].to_list() == [CATS[0], CATS[0], CATS[0]]  # the best leaf is always given
    assert out["category_confident"].to_list() == ["Food", CATS[0], "Food"]
    assert out["category_level"].to_list()[:2] == ["ancestor (depth 1)", "leaf"]
    tops = out["top_categories"][1].to_list()
    assert [t["category"] for t in tops] == [CATS[0], CATS[1]] and tops[0]["score"] == pytest.approx(0.9)


def test_batch_refinement_moves_prototypes_towards_the_texts():
    emb = BagEmbedder()
    m = CategoryModel.build(CATS, emb.encode, params=CategoryParams(transductive_min_batch=2,
                                                                    transductive_min_per_leaf=1))
    qv = emb.encode(["aisle 1 peanut", "aisle 1 peanut butter", "aisle 2 jam"])
    before, after = m.prototypes(), m.refined_prototypes(qv)
    assert not np.allclose(before, after)
    m.params.transductive_min_per_leaf = 2  # 3 texts for 3 leaves: too few per leaf, prototypes stay
    assert np.allclose(m.refined_prototypes(qv), before)
    m.params.transductive_min_per_leaf = 1
    m.params.transductive_beta = 0.0
    assert np.allclose(m.refined_prototypes(qv), before)


def test_save_and_load_keep_the_scores(tmp_path):
    emb = BagEmbedder()
    m = CategoryModel.build(CATS, emb.encode, product_texts=PRODUCT_TEXTS, product_categories=PRODUCT_CATS)
    m.save(tmp_path / "c")
    m2 = CategoryModel.load(tmp_path / "c")
    qv = emb.encode(QUERIES)
    assert m2.categories == CATS and np.allclose(m.proba(qv), m2.proba(qv), atol=1e-3)


def test_topk_accuracy_counts_ties_against_the_truth():
    s = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]])
    assert topk_accuracy(s, np.array([0, 2, 1]), (1, 2)) == {"top1": pytest.approx(1 / 3), "top2": 1.0}


def test_embedding_cache_encodes_each_text_once(tmp_path):
    emb = BagEmbedder()
    a = cached_encode(emb, ["one", "two", "one"], tmp_path)
    assert sorted(emb.seen) == ["one", "two"]
    b = cached_encode(emb, ["two", "three", "one"], tmp_path)
    assert emb.seen[2:] == ["three"]
    assert np.allclose(b[0], a[1]) and np.allclose(b[2], a[0])
    assert np.allclose(b[1], emb.encode(["three"])[0])
    raw = cached_encode(emb, ["one"], tmp_path, normalize=False)  # another computation, another key
    assert emb.seen.count("one") == 2 and raw.shape == (1, emb.dim)


def test_embedding_cache_merges_shards(tmp_path):
    emb = BagEmbedder()
    cache = EmbeddingCache(tmp_path)
    for i in range(20):
        cache.encode(emb, [f"text {i}"])
    shards = list((tmp_path / "embeddings").rglob("shard-*.npz"))
    assert 1 <= len(shards) <= 16
    n = len(emb.seen)
    cache.encode(emb, [f"text {i}" for i in range(20)])
    assert len(emb.seen) == n


def test_evidence_weights_are_chosen_on_the_shops_held_out_clicks_not_fixed():
    """A catalog whose product texts read unlike the queries (each leaf's products use the next leaf's word)
    misleads the exemplar vote; the held-out fifth of the clicked queries shows it, so the vote is turned
    down. With products that read like the queries it stays on."""
    from governance.labelling.categories import SELECTION_GRID, select_weights
    emb = BagEmbedder()
    words = ["apple", "bread", "cheese", "donut", "eggs", "flour"]
    cats = [f"food > {w}" for w in words]
    products = [f"{words[(i + 1) % 6]} item {k}" for i in range(6) for k in range(20)]
    product_cats = [cats[i] for i in range(6) for _ in range(20)]
    queries = [f"{words[i]} please {k}" for i in range(6) for k in range(40)]
    qv = emb.encode(queries)
    dist = np.zeros((len(queries), 6))
    dist[np.arange(len(queries)), np.repeat(np.arange(6), 40)] = 1.0
    chosen = select_weights(cats, emb.encode, products, product_cats, qv, dist)
    assert (chosen.knn_weight, chosen.blend_prior) in SELECTION_GRID and chosen.knn_weight < 0.5
    default = CategoryModel.build(cats, emb.encode, product_texts=products, product_categories=product_cats,
                                  query_vectors=qv, query_distributions=dist, params=CategoryParams())
    selected = CategoryModel.build(cats, emb.encode, product_texts=products, product_categories=product_cats,
                                   query_vectors=qv, query_distributions=dist)
    fresh = emb.encode([f"{w} wanted" for w in words])
    assert selected.params == chosen
    assert (selected.proba(fresh).argmax(1) == np.arange(6)).mean() > (default.proba(fresh).argmax(1)
                                                                      == np.arange(6)).mean()
    honest = [f"{words[i]} item {k}" for i in range(6) for k in range(20)]  # products that read like the queries
    assert select_weights(cats, emb.encode, honest, product_cats, qv, dist).knn_weight > 0  # the vote stays on
    # too little held-out evidence to judge: the defaults
    assert select_weights(cats, emb.encode, products[:40], product_cats[:40], None, None) == CategoryParams()
