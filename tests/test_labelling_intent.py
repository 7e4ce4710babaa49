"""Query intent weak labels (patterns, sessions) and category labelling."""

import hashlib
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from governance.labelling.intent import Catalog, label_queries, session_evidence, weak_intent

PRODUCTS = pl.DataFrame({
    "product_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
    "brand": ["Acme", "Acme", "Northwind", "Northwind", "Zephyr", "Zephyr"],
    "category_path": ["Electronics > Audio > Headphones", "Electronics > Audio > Speakers",
                      "Clothing > Women > Dresses", "Clothing > Women > Dresses",
                      "Home > Kitchen > Coffee Makers", "Electronics > Audio > Headphones"],
    "title": ["Acme wireless noise cancelling headphones", "Acme bluetooth speaker", "Northwind linen maxi dress",
              "Northwind floral midi dress", "Zephyr drip coffee maker 12 cup", "Zephyr over-ear headphones"],
})


@pytest.fixture(scope="module")
def catalog():
    return Catalog(PRODUCTS)


@pytest.mark.parametrize("query, intent", [
    ("where is my order", "support"), ("how do I return an item", "support"), ("refund status", "support"),
    ("track my package", "support"), ("contact customer service", "support"),
    ("cheap headphones under $50", "deal"), ("dresses on sale", "deal"), ("coffee maker discount", "deal"),
    ("speakers 30% off", "deal"), ("headphones clearance", "deal"),
    ("acme", "brand"), ("Northwind store", "brand"), ("zephyr official", "brand"), ("acme electronics", "brand"),
    ("acme wireless headphones", "product"),
    ("headphones", "category"), ("women dresses", "category"), ("best coffee makers", "category"),
])
def test_weak_intent_patterns(catalog, query, intent):
    assert weak_intent(query, catalog)[0] == intent


def test_no_pattern_means_no_weak_label(catalog):
    assert weak_intent("something for grandma", catalog)[0] is None


def _t(m):
    return datetime(2026, 1, 1, 12, 0) + timedelta(minutes=m)


def test_session_evidence_bounded_by_next_query(catalog):
    queries = pl.DataFrame({"query_id": ["q1", "q2"], "session_id": ["s1", "s1"],
                            "query_text": ["headphones", "dress"], "query_time": [_t(0), _t(10)]})
    events = pl.DataFrame({"session_id": ["s1"] * 4, "item_id": ["p1", "p6", "p3", "p4"],
                           "event_type": ["click", "purchase", "click", "click"],
                           "event_time": [_t(1), _t(2), _t(11), _t(12)]})
    ev = session_evidence(queries, events, catalog)
    assert ev["q1"]["categories"] == {"Electronics > Audio > Headphones": 1.0}
    assert ev["q2"]["categories"] == {"Clothing > Women > Dresses": 1.0}
    assert ev["q1"]["brands"] == {"Acme", "Zephyr"}


class HashEmbedder:
    """Deterministic bag-of-words embedding (no model): enough to test the plumbing fast."""

    def encode(self, texts, **_):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(",", " ").replace(">", " ").split():
                w = w.rstrip("s")
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n == 0, 1, n)


def test_label_queries_columns_rules_and_clicks():
    queries = pl.DataFrame({"query_id": [f"q{i}" for i in range(6)], "session_id": [f"s{i}" for i in range(6)],
                            "query_text": ["where is my order", "cheap headphones", "acme", "", "linen thing",
                                           "Какое платье"]})
    events = pl.DataFrame({"session_id": ["s4", "s4"], "item_id": ["p3", "p4"], "event_type": ["click", "purchase"]})
    out = label_queries(queries, products=PRODUCTS, events=events, embedder=HashEmbedder(), top_k=3)
    for c in ("intent", "intent_probability", "category", "category_probability", "model_name", "model_version",
              "labelled_at", "unlabelable_reason", "category_confident", "category_level", "top_categories"):
        assert c in out.columns
    assert out["intent"].to_list()[:3] == ["support", "deal", "brand"]
    assert out["category"][0] is not None  # intent never drops a category: the two are independent outputs
    assert out["category"][1] == "Electronics > Audio > Headphones"
    assert out["category"][4] == "Clothing > Women > Dresses"
    assert out["category_source"][4] == "clicks + model: names + catalog + clicks"
    tops = out["top_categories"][1].to_list()
    assert len(tops) == 3 and tops[0]["category"] == out["category"][1]
    assert tops[0]["score"] >= tops[1]["score"] >= tops[2]["score"]
    assert out["intent"][3] is None and out["unlabelable_reason"][3].startswith("empty")
    assert out["unlabelable_reason"][5].startswith("non_english")
    p = out["intent_probability"].drop_nulls()
    assert ((p > 0) & (p <= 1)).all()


def test_zero_shot_categories_pick_the_obvious_one():
    from governance.labelling import label_query_categories
    cats = ["Electronics > Audio > Headphones", "Clothing > Women > Dresses", "Home > Kitchen > Coffee Makers",
            "Sports > Outdoor > Tents", "Beauty > Skin Care > Sunscreen"]
    queries = ["wireless earbuds", "summer maxi dress", "espresso machine", "camping tent for 4 people",
               "spf 50 sun cream"]
    out = label_query_categories(queries, cats)
    assert out["category"].to_list() == cats
    assert (out["category_probability"] > 0.2).all()
    assert out["top_categories"][0][0] == cats[0]
