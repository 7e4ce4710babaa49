"""Recommendation: split, each recall model, filters, ranker, metrics, gate — on small frames built here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from governance.labelling.registry import ModelRegistry
from governance.recommendation import gate as G
from governance.recommendation.data import Index, RecoData, temporal_split
from governance.recommendation.filters import DEFAULT_RULES, FilterContext, apply_filters
from governance.recommendation.metrics import cold_item_recall, coverage, popularity_bias, ranking_metrics
from governance.recommendation.rank import Ranker
from governance.recommendation.recall import EASE, KINDS, SKNN, Content, ImplicitMF, ItemKNN, Popularity
from governance.recommendation.recall.base import History, position_weights, topk

D0 = date(2026, 10, 1)
A = [f"pa{i}" for i in range(6)]  # products bought together by group A
B = [f"pb{i}" for i in range(6)]


def _inter(rows: list[tuple[str, str, int, float]], purchases: set[tuple[str, str]] = frozenset()) -> pl.DataFrame:
    return pl.DataFrame([{
        "user_key": u, "product_id": p, "date": D0 + timedelta(days=d), "events": 1, "views": 1, "clicks": 0,
        "add_to_carts": 0, "purchases": int((u, p) in purchases), "units": 0, "revenue": 0.0,
        "last_event_at": datetime(2026, 10, 1, 12, tzinfo=UTC) + timedelta(days=d), "weight": w}
        for u, p, d, w in rows])


def _products(ids: list[str], **extra) -> pl.DataFrame:
    n = len(ids)
    base = {"product_id": ids, "title": [f"t {i}" for i in ids], "brand": ["acme"] * n,
            "category_l1": ["A" if i.startswith("pa") else "B" for i in ids],
            "category_l2": ["A" if i.startswith("pa") else "B" for i in ids],
            "price": [10.0] * n, "currency": ["USD"] * n, "positive_share": [None] * n,
            "negative_share": [None] * n, "labelled_reviews": [0] * n, "mean_rating": [None] * n,
            "review_count": [0] * n, "conversion_rate": [None] * n}
    base.update(extra)
    return pl.DataFrame(base, schema_overrides={"positive_share": pl.Float64, "negative_share": pl.Float64,
                                                "mean_rating": pl.Float64, "conversion_rate": pl.Float64})


def _events(sessions: list[tuple[str, str | None, list[str], int]]) -> pl.DataFrame:
    rows = []
    for sid, user, items, day in sessions:
        for j, item in enumerate(items):
            rows.append({"session_id": sid, "user_key": user, "product_id": item, "event_type": "view",
                         "event_time": datetime(2026, 10, 1, 10, tzinfo=UTC) + timedelta(days=day, minutes=j)})
    return pl.DataFrame(rows, schema={"session_id": pl.String, "user_key": pl.String, "product_id": pl.String,
                                      "event_type": pl.String, "event_time": pl.Datetime("us", "UTC")})


@pytest.fixture(scope="module")
def data() -> RecoData:
    """Two taste groups over 4 days: A-users take A products, B-users B products; pa0/pb0 most popular."""
    rng = np.random.default_rng(0)
    rows, sessions = [], []
    for g, items in (("a", A), ("b", B)):
        for u in range(12):
            user = f"u{g}{u}"
            for d in range(4):
                picks = [items[0], *rng.choice(items[1:], 2, replace=False)]
                for p in picks:
                    rows.append((user, p, d, 1.0))
                sessions.append((f"s{user}{d}", user, picks, d))
    inter = _inter(rows, purchases={("ua0", "pa0")})
    products = _products([*A, *B, "pnew"])
    users = pl.DataFrame({"user_key": sorted({r[0] for r in rows}), "country": "US"})
    emb = np.zeros((13, 384), np.float32)
    emb[:6, 0] = 1.0  # A products point one way
    emb[6:12, 1] = 1.0  # B products another
    emb[12, 0] = 1.0  # the new product reads like the A products
    embeddings = pl.DataFrame({"product_id": [*A, *B, "pnew"], "embedding": pl.Series(emb, dtype=pl.Array(pl.Float32, 384))})
    return RecoData(inter, _events(sessions), products, users, embeddings=embeddings,
                    partitions={"integrated.interactions": [(D0 + timedelta(days=d)).isoformat() for d in range(4)]})


@pytest.fixture(scope="module")
def items(data) -> Index:
    return Index.of(data.products["product_id"].to_list())


def test_temporal_split_holds_out_the_last_day_never_a_random_sample(data):
    split = temporal_split(data, 1)
    last = max(data.days)
    assert split.cutoff == last - timedelta(days=1) and split.test_days == [last]
    assert split.train.interactions["date"].max() == split.cutoff
    assert split.train.events["event_time"].max() < datetime(last.year, last.month, last.day, tzinfo=UTC)
    assert split.test.height == data.interactions.filter(pl.col("date") == last).select("user_key", "product_id").unique().height
    with pytest.raises(ValueError):
        temporal_split(data, 4)


def _top(model, data, items, user: str, k: int = 3) -> list[str]:
    hist = History.build(data, items, [user])
    return model.recommend(hist, k)["product_id"].to_list()


def test_popularity_overall_per_category_and_time_decay(data, items):
    pop = Popularity(half_life_days=None).fit(data, items)
    top = _top(pop, data, items, "ua1", 2)
    assert set(top) == {"pa0", "pb0"}  # the two most interacted products, for everyone
    cat = Popularity(half_life_days=None, per_category=True).fit(data, items)
    assert _top(cat, data, items, "ua1", 1) == ["pa0"] and _top(cat, data, items, "ub1", 1) == ["pb0"]
    # decay: equal totals, but the recent product outranks the old one
    inter = _inter([("x", "old", 0, 2.0), ("x", "new", 3, 2.0)])
    d = RecoData(inter, _events([]), _products(["old", "new"]), pl.DataFrame({"user_key": ["x"]}))
    idx = Index.of(["old", "new"])
    decayed = Popularity(half_life_days=1.0).fit(d, idx)
    assert decayed.pop[idx.lookup(["new"])[0]] > decayed.pop[idx.lookup(["old"])[0]]
    flat = Popularity(half_life_days=None).fit(d, idx)
    assert flat.pop[0] == pytest.approx(flat.pop[1])


@pytest.mark.parametrize("model", [ItemKNN(similarity="jaccard"), ItemKNN(similarity="cosine", basis="session"),
                                   EASE(l2=10.0), ImplicitMF("als", factors=8, iterations=10, regularization=0.1),
                                   ImplicitMF("bpr", factors=8, iterations=200, learning_rate=0.05)],
                         ids=lambda m: f"{m.name}-{m.params.get('similarity', m.params.get('algorithm', ''))}")
def test_collaborative_recalls_recommend_the_users_taste_group(data, items, model):
    model.fit(data, items)
    for user, group in (("ua3", "pa"), ("ub3", "pb")):
        top = _top(model, data, items, user, 3)
        assert top and all(p.startswith(group) for p in top), (model.name, user, top)


def test_als_folds_in_a_user_unseen_in_training(data, items):
    als = ImplicitMF("als", factors=8, iterations=10, regularization=0.1).fit(data, items)
    newcomer = RecoData(_inter([("stranger", "pb1", 3, 1.0), ("stranger", "pb2", 3, 1.0)]), _events([]),
                        data.products, data.users)
    top = _top(als, newcomer, items, "stranger", 3)
    assert all(p.startswith("pb") for p in top)


def test_session_knn_continues_the_current_session(data, items):
    past = _events([(f"p{i}", None, ["pa1", "pa2", "pb5"], 0) for i in range(5)]
                   + [(f"q{i}", None, ["pb1", "pb2", "pa5"], 0) for i in range(5)])
    d = RecoData(data.interactions, past, data.products, data.users)
    sknn = SKNN(k=10, sample_size=100).fit(d, items)
    seq = History.build(RecoData(data.interactions, _events([("now", "ua1", ["pa1", "pa2"], 3)]), data.products,
                                 data.users), items, ["ua1"]).session
    scores = sknn.score_sequences(seq)[0]
    scores[items.lookup(["pa1", "pa2"])] = -1  # beyond the session's own items
    assert items.ids[int(np.argmax(scores))] == "pb5"  # what followed pa1, pa2 in the past sessions
    assert scores[items.lookup(["pa5"])[0]] == 0  # sessions sharing nothing with this one do not vote
    # linear position decay: the last item weighs 1
    w = position_weights(seq)
    assert w.data.max() == pytest.approx(1.0) and w.data.min() == pytest.approx(0.5)


def test_content_recall_reaches_a_product_nobody_interacted_with(data, items):
    content = Content(half_life_days=None).fit(data, items)
    top = _top(content, data, items, "ua2", 7)
    assert "pnew" in top and not any(p.startswith("pb") for p in top)
    rows, _ = content.similar(3)
    assert items.ids[rows[items.lookup(["pnew"])[0]][0]].startswith("pa")


@pytest.mark.parametrize("name,model", [("popularity", Popularity(per_category=True)), ("itemknn", ItemKNN()),
                                        ("ease", EASE(l2=10.0)), ("sknn", SKNN()), ("content", Content()),
                                        ("als", ImplicitMF("als", factors=4, iterations=3))])
def test_artifacts_round_trip_without_pickle(tmp_path, data, items, name, model):
    model.fit(data, items)
    model.save(tmp_path / name)
    loaded = KINDS[name].load(tmp_path / name)
    hist = History.build(data, items, ["ua1", "ub2"])
    np.testing.assert_allclose(model.score(hist), loaded.score(hist), rtol=1e-5, atol=1e-6)


def test_topk_orders_and_excludes():
    import scipy.sparse as sp

    s = np.array([[0.1, 0.9, 0.5, 0.7]], np.float32)
    rows, vals = topk(s, 2)
    assert rows.tolist() == [[1, 3]] and vals[0].tolist() == pytest.approx([0.9, 0.7])
    rows, _ = topk(s, 2, exclude=sp.csr_matrix(np.array([[0, 1, 0, 0]])))
    assert rows.tolist() == [[3, 2]]


def test_metrics_match_hand_computed_values():
    recs = pl.DataFrame({"user_key": ["u", "u", "u", "v", "v"], "product_id": ["a", "b", "c", "a", "d"],
                         "rank": [1, 2, 3, 1, 2]})
    truth = pl.DataFrame({"user_key": ["u", "u", "v", "w"], "product_id": ["b", "z", "d", "a"]})
    m = ranking_metrics(recs, truth, (2,))
    # u: hit at rank 2 of 2 relevant; v: hit at rank 2 of 1; w: nothing recommended
    dcg = 1 / np.log2(3)
    assert m["ndcg@2"] == pytest.approx((dcg / (1 + 1 / np.log2(3)) + dcg / 1.0 + 0) / 3)
    assert m["recall@2"] == pytest.approx((0.5 + 1.0 + 0) / 3)
    assert m["hr@2"] == pytest.approx(2 / 3) and m["mrr@2"] == pytest.approx((0.5 + 0.5) / 3)
    assert m["precision@2"] == pytest.approx((0.5 + 0.5) / 3)
    assert coverage(recs, 10, 2) == pytest.approx(3 / 10)
    pop = pl.DataFrame({"product_id": ["a", "b", "c", "d"], "pop": [4.0, 3.0, 2.0, 1.0]})
    assert popularity_bias(recs, pop, 1) == pytest.approx(1.0)  # "a" is the most popular
    recall, pairs = cold_item_recall(recs, truth, pl.Series(["a", "b", "c"]), 2)
    assert pairs == 2 and recall == pytest.approx(0.5)  # d found, z not


def test_filters_remove_what_each_rule_names_and_count_it(data):
    products = _products(["ok", "gone_bad", "quar", "flag", "dupa", "dupb", "neg", "eur", "free"],
                         negative_share=[0, 0, 0, 0, 0, 0, 0.9, 0, 0], labelled_reviews=[5] * 9,
                         currency=["USD"] * 7 + ["EUR", "USD"], price=[10.0] * 8 + [None])
    products = products.filter(pl.col("product_id") != "gone_bad")  # not in the current catalog
    findings = pl.DataFrame({"kind": ["miscategorised", "duplicate"], "product_id": ["flag", "dupb"],
                             "other_product_id": [None, "dupa"], "status": ["open", "open"]})
    ctx = FilterContext(products, _inter([("u", "ok", 0, 1.0)], purchases={("u", "ok")}),
                        pl.DataFrame({"user_key": ["u"], "country": ["US"]}), findings,
                        pl.DataFrame({"product_id": ["quar", "ok"], "rule": ["absurd_price", "key_duplicate"]}))
    ids = ["ok", "gone_bad", "quar", "flag", "dupa", "dupb", "neg", "eur", "free"]
    cands = pl.DataFrame({"user_key": ["u"] * len(ids), "product_id": ids, "score": [9., 8, 7, 6, 4, 5, 3, 2, 1]})
    res = apply_filters(cands, ctx, DEFAULT_RULES)
    removed = dict(res.counts.select("rule", "removed").iter_rows())
    assert removed == {"not_current": 1, "quarantined": 1, "flagged_by_catalog_checks": 1, "already_purchased": 1,
                       "outside_market": 2, "negative_reviews": 1, "duplicate_product": 1}
    assert res.kept["product_id"].to_list() == ["dupb"]  # the better scored of the duplicate pair
    per_user = res.per_user["filters"][0]
    assert "already_purchased:1" in per_user and "outside_market:2" in per_user
    # a market rule as data: EUR products are fine for a user in a market that sells in EUR
    rules = tuple(r if r.name != "outside_market" else type(r)(r.name, r.description, r.action, r.select,
                  {"currencies_by_country": {"*": ("USD",), "DE": ("EUR", "USD")}}) for r in DEFAULT_RULES)
    ctx_de = FilterContext(products, ctx.interactions, pl.DataFrame({"user_key": ["u"], "country": ["DE"]}),
                           findings, ctx.quarantined)
    res_de = apply_filters(cands, ctx_de, rules)
    assert "eur" in res_de.kept["product_id"].to_list()


def test_ranker_learns_an_order_from_its_features():
    rng = np.random.default_rng(1)
    names = ["m1", "m2"]
    n_users, per = 200, 20
    frame = pl.DataFrame({"user_key": np.repeat([f"u{i}" for i in range(n_users)], per),
                          "product_id": np.tile([f"p{j}" for j in range(per)], n_users),
                          "s_m1": rng.random(n_users * per), "s_m2": rng.random(n_users * per)})
    # relevance follows m2 only
    frame = frame.with_columns((pl.col("s_m2") > 0.8).cast(pl.Int64).alias("label"),
                               pl.lit(21).alias("r_m1"), pl.lit(21).alias("r_m2"))
    for c in Ranker(names).columns:
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(0.0).alias(c))
    ranker = Ranker(names, rounds=30).fit(frame)
    top2 = (frame.with_columns(pl.Series("pred", ranker.predict(frame)))
            .filter(pl.col("pred").rank("ordinal", descending=True).over("user_key") <= 2))
    assert top2["label"].mean() > 0.9  # about 4 of 20 candidates are relevant; the top two nearly always are
    assert next(iter(ranker.importance)) == "s_m2"
    contrib = ranker.contributions(frame.head(5))
    assert contrib.shape == (5, len(ranker.columns) + 1)


# ------------------------------------------------------------------------------------------------ gate


def _checks(rows: list[tuple[str, str, str, str, bool]]) -> pl.DataFrame:
    return G.checks_frame([{"table": t, "partition": p, "check_name": c, "severity": s, "passed": ok}
                           for t, p, c, s, ok in rows])


def test_quality_verdict_blocks_on_failed_error_checks_of_input_partitions_only():
    inputs = {"integrated.interactions": ["2026-10-01", "2026-10-02"], "integrated.products": ["all"]}
    ok = _checks([("integrated.interactions", "2026-10-01", "pk", "error", True),
                  ("integrated.interactions", "2026-10-02", "pk", "error", True),
                  ("integrated.interactions", "2026-10-02", "drift", "warn", False),  # a warning never blocks
                  ("integrated.interactions", "2026-09-01", "pk", "error", False),  # not an input partition
                  ("integrated.products", None, "pk", "error", True)])
    v = G.quality_verdict(ok, inputs)
    assert v.passed and v.failures.is_empty()
    bad = pl.concat([ok, _checks([("integrated.interactions", "2026-10-02", "reconciles", "error", False)])])
    v = G.quality_verdict(bad, inputs)
    assert not v.passed and "integrated.interactions[2026-10-02]:reconciles" in v.reason
    # the latest result of a check wins: re-run and passed
    fixed = pl.concat([bad, _checks([("integrated.interactions", "2026-10-02", "reconciles", "error", True)])])
    assert G.quality_verdict(fixed, inputs).passed
    # a partition without results passes unless results are required
    partial = ok.filter(pl.col("partition") != "2026-10-01")
    assert G.quality_verdict(partial, inputs).passed
    strict = G.quality_verdict(partial, inputs, require_results=True)
    assert not strict.passed and "integrated.interactions/2026-10-01" in strict.reason
    # a checked table's partition without results fails; a table never checked does not
    checked = G.quality_verdict(partial, inputs, require_results="checked_tables")
    assert not checked.passed and checked.unchecked == ["integrated.interactions/2026-10-01"]
    only_days = ok.filter(pl.col("table") != "integrated.products")
    assert G.quality_verdict(only_days, inputs, require_results="checked_tables").passed


def test_promotion_needs_quality_then_a_better_metric(tmp_path):
    from governance.labelling.registry import ModelCard

    reg = ModelRegistry(tmp_path)

    def register(score: float) -> str:
        card = ModelCard("reco_x", "x", {"ndcg@10": score}, "evalset-1", "data", {})
        return reg.register("reco_x", lambda d: (d / "w").write_text("1"), card)

    good = G.quality_verdict(_checks([]), {})
    failed = G.quality_verdict(_checks([("integrated.sessions", "2026-10-02", "pk", "error", False)]),
                               {"integrated.sessions": ["2026-10-02"]})
    v1 = register(0.30)
    assert G.promote(reg, "reco_x", v1, good).promoted and reg.current("reco_x") == v1
    v2 = register(0.50)
    d = G.promote(reg, "reco_x", v2, failed)
    assert not d.promoted and reg.current("reco_x") == v1
    assert "integrated.sessions[2026-10-02]:pk" in d.reason and f"{v1} keeps serving" in d.reason
    v3 = register(0.25)
    d = G.promote(reg, "reco_x", v3, good)
    assert not d.promoted and "does not beat" in d.reason and reg.current("reco_x") == v1
    assert G.promote(reg, "reco_x", v2, good).promoted and reg.current("reco_x") == v2
