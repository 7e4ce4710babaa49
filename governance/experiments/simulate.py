"""A simulated search experiment on the generated shop: an exploration log, then an online A/B test.

The two arms are two search rankers over the shop's index — control: BM25 (the shop's plain
keyword search), treatment: the hybrid (BM25 and MiniLM fused as coverage-weighted z-scores,
``search.hybrid``). (The recommendation stage's served lists would be the other candidate; a search
A/B test needs nothing from it.)

The shopper model (fixed here, never fitted to the rankers):

* relevance of a product to a query comes from the generated shop's truth (``truth/queries.parquet``:
  the query's intent, leaf category, target product and brand) — the target product 1.0, a product
  of the wanted brand in the wanted leaf 0.6, of the wanted leaf 0.4 (0.6 for category and deal
  queries), of the wanted top category 0.08, anything else 0.01; support questions 0.02. A shop
  without truth falls back to what its shoppers did: the query's engaged products at
  0.25 × their grade (1–3), the rest 0.01;
* position bias: a shopper examines rank r with probability 1/r (the position-based model) and
  clicks an examined product with probability relevance × the shopper's own click propensity
  (their pre-period clicks per search against the shop's, clipped to 0.5–2);
* a click becomes a purchase with probability 0.3 × relevance, worth the product's price;
* a user searches Poisson(0.8 × pre-period searches + 0.3) times in the period; each search picks
  a query text with the frequency the shop's queries had.

The exploration log (before the test) is served by the control ranker with per-slot exploration:
each of the 10 slots shows, with probability ε = 0.2, a product drawn uniformly from the query's
candidate pool (the union of BM25's, MiniLM's and the hybrid's top 10) instead of the control's
(always, where BM25 found fewer than 10), and logs the propensity
``π0(product | query, slot) = (1 − ε)·[product is control's] + ε / |pool|`` (``1 / |pool|`` for an empty slot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from governance.experiments import ab_test
from governance.experiments.off_policy import estimate, fit_reward_model

SLOTS = 10
EPSILON = 0.2
DAYS = 7
EXPERIMENT = "search-ranker-bm25-vs-hybrid"
VARIANTS = {"control": "bm25", "treatment": "hybrid"}


@dataclass
class Served:
    """Per distinct query: the candidate pool and each ranker's top SLOTS (product indices)."""

    queries: pl.DataFrame  # qi, query, weight
    lists: dict[str, np.ndarray]  # ranker → (n_queries, SLOTS) product indices, -1 where fewer
    pool: list[np.ndarray]
    features: dict[str, np.ndarray] = field(default_factory=dict)  # per (qi, product) bm25/dense ranks


def serve(index, queries: pl.DataFrame, query_vectors: np.ndarray, depth: int = 100) -> Served:
    """Each ranker's list for every distinct query (one retrieval per query text)."""
    from governance.search.hybrid import hybrid_search  # noqa: PLC0415

    n = queries.height
    lists = {m: np.full((n, SLOTS), -1, dtype=np.int64) for m in ("bm25", "dense", "hybrid")}
    pool, fq, fi, fb, fd = [], [], [], [], []
    for i, q in enumerate(queries["query"].to_list()):  # one retrieval per distinct query text
        hi, _, (li, _), (di, _) = hybrid_search(index.lexical, index.dense, q, query_vectors[i], depth)
        for m, items in (("bm25", li), ("dense", di), ("hybrid", hi)):
            lists[m][i, :min(SLOTS, items.size)] = items[:SLOTS]
        cand = np.unique(np.concatenate([li[:SLOTS], di[:SLOTS], hi[:SLOTS]]))
        pool.append(cand)
        fq.append(np.full(cand.size, i))
        fi.append(cand)
        fb.append(_rank_in(li, cand, depth))
        fd.append(_rank_in(di, cand, depth))
    feats = {"qi": np.concatenate(fq), "i": np.concatenate(fi), "bm25_rank": np.concatenate(fb),
             "dense_rank": np.concatenate(fd)} if n else {}
    return Served(queries, lists, pool, feats)


def _rank_in(ranked: np.ndarray, items: np.ndarray, depth: int) -> np.ndarray:
    """1-based rank of each item in ``ranked`` (depth + 1 where absent)."""
    if ranked.size == 0:
        return np.full(items.size, depth + 1, dtype=np.int64)
    order = np.argsort(ranked, kind="stable")
    at = np.clip(np.searchsorted(ranked[order], items), 0, ranked.size - 1)
    return np.where(ranked[order][at] == items, order[at] + 1, depth + 1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# the world


def query_pool(clean_queries: pl.DataFrame, truth: pl.DataFrame | None, max_queries: int = 1000) -> pl.DataFrame:
    """Distinct normalised query texts with their frequency (and the shop's truth where it exists)."""
    from governance.search.evaluate import normalise_query  # noqa: PLC0415

    q = (clean_queries.filter(pl.col("query_text").is_not_null())
         .with_columns(normalise_query(pl.col("query_text")).alias("query")).filter(pl.col("query") != ""))
    if truth is not None:
        q = q.join(truth.select("query_id", "true_intent", "true_leaf_category", "true_top_category",
                                "target_product_id", "target_brand"), on="query_id", how="left")
    agg = [pl.len().alias("weight")]
    if truth is not None:
        agg += [pl.col(c).drop_nulls().mode().sort().first().alias(c) for c in
                ("true_intent", "true_leaf_category", "true_top_category", "target_product_id", "target_brand")]
    return (q.group_by("query").agg(agg).sort(["weight", "query"], descending=[True, False]).head(max_queries)
            .with_row_index("qi").with_columns(pl.col("qi").cast(pl.Int64)))


def relevance_table(served: Served, products: pl.DataFrame, judged: pl.DataFrame | None) -> pl.DataFrame:
    """qi, i, rel for every candidate of every query."""
    pairs = pl.DataFrame({"qi": served.features["qi"], "i": served.features["i"]})
    prods = products.with_row_index("i").with_columns(pl.col("i").cast(pl.Int64))
    cols = [c for c in ("product_id", "brand", "category_path", "category_l1") if c in prods.columns]
    pairs = pairs.join(prods.select("i", *cols), on="i", how="left").join(served.queries, on="qi", how="left")
    if "true_intent" in served.queries.columns:
        intent = pl.col("true_intent")
        same_leaf = pl.col("category_path") == pl.col("true_leaf_category")
        same_top = pl.col("category_l1") == pl.col("true_top_category")
        same_brand = pl.col("brand") == pl.col("target_brand")
        rel = (pl.when(intent == "support").then(0.02)
               .when(pl.col("product_id") == pl.col("target_product_id")).then(1.0)
               .when(intent.is_in(["category", "deal"]) & same_leaf).then(0.6)
               .when(same_brand & same_leaf).then(0.6)
               .when(same_leaf).then(0.4)
               .when((intent == "brand") & same_brand).then(0.4)
               .when(same_top).then(0.08)
               .otherwise(0.01))
        return pairs.select("qi", "i", rel.fill_null(0.01).alias("rel"))
    g = judged.select("query", "product_id", (0.25 * pl.col("grade")).alias("rel")) if judged is not None else None
    out = pairs.join(g, on=["query", "product_id"], how="left") if g is not None else pairs.with_columns(
        pl.lit(None, pl.Float64).alias("rel"))
    return out.select("qi", "i", pl.col("rel").fill_null(0.01))


def user_frame(sessions: pl.DataFrame, users: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per known user with pre-period searches, clicks, purchases and revenue (0 for none)."""
    pre = (sessions.filter(pl.col("user_key").is_not_null()).group_by("user_key")
           .agg(pl.col("queries").sum().alias("pre_searches"), pl.col("clicks").sum().alias("pre_clicks"),
                pl.col("purchases").sum().alias("pre_purchases"),
                pl.col("revenue").fill_null(0).sum().alias("pre_revenue")))
    base = (users.select("user_key") if users is not None else pre.select("user_key")).unique()
    return (base.join(pre, on="user_key", how="left")
            .with_columns(pl.col("pre_searches", "pre_clicks", "pre_purchases").fill_null(0).cast(pl.Int64),
                          pl.col("pre_revenue").fill_null(0.0))
            .sort("user_key"))


@dataclass
class World:
    served: Served
    rel: dict[tuple[int, int], float]
    rel_matrix: np.ndarray  # (n_queries, n_products) sparse-ish dense matrix of relevance (default 0.01)
    price: np.ndarray
    users: pl.DataFrame
    propensity: np.ndarray  # per user click factor

    @classmethod
    def build(cls, served: Served, products: pl.DataFrame, users: pl.DataFrame, judged=None) -> World:
        table = relevance_table(served, products, judged)
        n_q, n_p = served.queries.height, products.height
        rel = np.full((n_q, n_p), 0.01, dtype=np.float32)
        rel[table["qi"].to_numpy(), table["i"].to_numpy()] = table["rel"].to_numpy()
        price = products["price"].fill_null(0.0).to_numpy() if "price" in products.columns else np.zeros(n_p)
        s, c = users["pre_searches"].to_numpy(), users["pre_clicks"].to_numpy()
        base = (c.sum() + 1) / (s.sum() + 1)
        factor = np.clip(((c + base) / (s + 1)) / base, 0.5, 2.0)
        return cls(served, {}, rel, np.nan_to_num(price), users, factor)


def _searches(world: World, rng: np.random.Generator, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(user index, query index) per simulated search."""
    lam = (0.8 * world.users["pre_searches"].to_numpy() + 0.3) * days / DAYS
    n = rng.poisson(lam)
    user = np.repeat(np.arange(lam.size), n)
    w = world.served.queries["weight"].to_numpy().astype(np.float64)
    query = rng.choice(w.size, size=user.size, p=w / w.sum())
    return user, query


def _outcomes(world: World, rng, user, query, shown: np.ndarray):
    """Clicks and purchases of (searches × SLOTS) shown products under the position-based model."""
    valid = shown >= 0
    rel = np.where(valid, world.rel_matrix[query[:, None], np.maximum(shown, 0)], 0.0)
    exam = 1.0 / np.arange(1, SLOTS + 1)
    p_click = np.clip(exam[None, :] * rel * world.propensity[user][:, None], 0, 1)
    click = rng.random(shown.shape) < p_click
    buy = click & (rng.random(shown.shape) < 0.3 * rel)
    revenue = np.where(buy, world.price[np.maximum(shown, 0)], 0.0)
    return click, buy, revenue


def exploration_log(world: World, seed: int = 11, days: int = DAYS, epsilon: float = EPSILON) -> pl.DataFrame:
    """The control ranker with per-slot ε-exploration; one row per (search, slot) with its propensity."""
    rng = np.random.default_rng(seed)
    user, query = _searches(world, rng, days)
    control = world.served.lists[VARIANTS["control"]][query]
    pool_size = np.array([p.size for p in world.served.pool])[query]
    explore = rng.random(control.shape) < epsilon
    draw = np.floor(rng.random(control.shape) * pool_size[:, None]).astype(np.int64)
    pools = world.served.pool
    offsets = np.concatenate([[0], np.cumsum([p.size for p in pools])])
    flat = np.concatenate(pools) if pools else np.zeros(0, dtype=np.int64)
    drawn = flat[offsets[query][:, None] + draw]
    shown = np.where(explore | (control < 0), drawn, control)
    # propensity of what was shown: from the control's slot and from exploration
    prop = np.where(control < 0, 1.0 / pool_size[:, None],  # an empty control slot is always explored
                    (1 - epsilon) * (shown == control) + epsilon / pool_size[:, None])
    click, buy, revenue = _outcomes(world, rng, user, query, shown)
    n = user.size
    return pl.DataFrame({
        "search": np.repeat(np.arange(n), SLOTS), "user": np.repeat(user, SLOTS), "qi": np.repeat(query, SLOTS),
        "slot": np.tile(np.arange(1, SLOTS + 1), n), "i": shown.ravel(), "propensity": prop.ravel(),
        "click": click.ravel().astype(np.int8), "purchase": buy.ravel().astype(np.int8), "revenue": revenue.ravel(),
    })


def offline_estimates(world: World, log: pl.DataFrame, *, n_boot: int = 500, seed: int = 0,
                      n_refit: int = 0) -> pl.DataFrame:
    """Clicks per search of each arm estimated from the exploration log (IPS, SNIPS, DM, DR).

    ``n_refit`` > 0 refits the reward model on that many bootstrap resamples for DM's and DR's
    intervals (one fit shared by both arms per resample). The stage leaves it at 0 — the model held
    fixed: on the demo's 77,630 slot impressions 100 refits took the stage from 2.5 s to
    611 s on this loaded 2-core machine; the Open Bandit validation refits (200 resamples)."""
    feats = pl.DataFrame(world.served.features)
    log = log.join(feats, on=["qi", "i"], how="left", maintain_order="left")

    def x(frame: pl.DataFrame) -> np.ndarray:
        slot = frame["slot"].to_numpy()
        onehot = (slot[:, None] == np.arange(1, SLOTS + 1)[None, :]).astype(np.float32)
        return np.hstack([onehot, np.log(frame.select("bm25_rank", "dense_rank").to_numpy().astype(np.float32)),
                          world.propensity[frame["user"].to_numpy()][:, None]])

    x_log = x(log)
    reward = log["click"].to_numpy().astype(np.float64)
    model = fit_reward_model(x_log, reward)
    q_logged = model(x_log)
    rows = []
    models: dict[bytes, object] = {}  # one refit per resample, shared by both arms (same draws, same seed)

    def model_for(counts: np.ndarray):
        key = counts.astype(np.int32).tobytes()
        if key not in models:
            models[key] = fit_reward_model(x_log, reward, sample_weight=np.repeat(counts, SLOTS))
        return models[key]

    for variant, ranker in VARIANTS.items():
        target = world.served.lists[ranker][log["qi"].to_numpy(), log["slot"].to_numpy() - 1]
        weight = (log["i"].to_numpy() == target) / log["propensity"].to_numpy()
        tgt = log.select("user", "qi", "slot").with_columns(pl.Series("i", target))
        tgt = tgt.join(feats, on=["qi", "i"], how="left", maintain_order="left").with_columns(
            pl.col("bm25_rank", "dense_rank").fill_null(101))
        x_tgt = x(tgt)
        q_target = np.where(target >= 0, model(x_tgt), 0.0)
        # where the arm shows nothing (fewer than 10 results) its reward is known: 0. Such a row
        # counts with weight 1 and reward 0, so SNIPS normalises over every slot, not only filled ones
        empty = target < 0
        weight = np.where(empty, 1.0, weight)
        shape = (-1, SLOTS)  # the log is ordered by search, then slot

        def refit(counts: np.ndarray, x_tgt=x_tgt, empty=empty) -> tuple[np.ndarray, np.ndarray]:
            """The reward model refitted on one bootstrap resample of searches (each search's count
            weighs its slots)."""
            m = model_for(counts)
            return np.where(empty, 0.0, m(x_log)), np.where(empty, 0.0, m(x_tgt))

        for e in estimate(np.where(empty, 0.0, reward).reshape(shape), weight.reshape(shape),
                          np.where(empty, 0.0, q_logged).reshape(shape), q_target.reshape(shape),
                          n_boot=n_boot, seed=seed, refit=refit, n_refit=n_refit):
            rows.append({"variant": variant, "ranker": ranker, **e.as_dict()})
    # the sum over slots = expected clicks per search
    return pl.DataFrame(rows)


def online_test(world: World, *, seed: int = 23, days: int = DAYS) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Assign users by stable hash, serve each its arm's ranking for ``days``; (assignments, per-user outcomes)."""
    rng = np.random.default_rng(seed)
    assignment = ab_test.assign(world.users["user_key"], EXPERIMENT, tuple(VARIANTS))
    is_t = (assignment["variant"] == "treatment").to_numpy()
    user, query = _searches(world, rng, days)
    lists_c = world.served.lists[VARIANTS["control"]][query]
    lists_t = world.served.lists[VARIANTS["treatment"]][query]
    shown = np.where(is_t[user][:, None], lists_t, lists_c)
    click, buy, revenue = _outcomes(world, rng, user, query, shown)
    per_search = pl.DataFrame({"user": user, "clicks": click.sum(1), "clicked": click.any(1).astype(np.int64),
                               "purchases": buy.sum(1), "revenue": revenue.sum(1)})
    agg = per_search.group_by("user").agg(pl.len().alias("searches"), pl.col("clicks").sum(),
                                          pl.col("clicked").sum().alias("searches_clicked"),
                                          pl.col("purchases").sum(), pl.col("revenue").sum())
    users = (world.users.with_row_index("user").with_columns(pl.col("user").cast(pl.Int64))
             .join(agg.with_columns(pl.col("user").cast(pl.Int64)), on="user", how="left")
             .with_columns(pl.col("searches", "clicks", "searches_clicked", "purchases").fill_null(0),
                           pl.col("revenue").fill_null(0.0))
             .with_columns(assignment["variant"].alias("variant"), assignment["bucket"].alias("bucket")))
    return assignment.with_columns(pl.lit(EXPERIMENT).alias("experiment")), users.drop("user")


# ---------------------------------------------------------------------------------------------
# the whole experiment over a lake


@dataclass
class SearchExperiment:
    log: pl.DataFrame  # the exploration log (search, slot, product, propensity, click, …)
    offline: pl.DataFrame  # estimator rows per arm
    assignments: pl.DataFrame
    users: pl.DataFrame  # per assigned user: variant, pre-period and in-period outcomes
    analysis: dict
    verdict: dict
    queries: int = 0


def _read_all(lake, layer: str, table: str) -> pl.DataFrame | None:
    days = lake.partitions(layer, table)
    if days:
        return pl.concat([lake.read(layer, table, d) for d in days], how="diagonal_relaxed")
    return lake.read(layer, table) if lake.exists(layer, table) else None


def run_search_experiment(lake, index, truth_dir=None, *, max_queries: int = 1000, query_cache=None,
                          log=print) -> SearchExperiment:
    """Exploration log → offline estimates of both arms → online A/B test → analysis and verdict."""
    from pathlib import Path  # noqa: PLC0415

    from governance.search.dense import encode_queries_cached  # noqa: PLC0415
    from governance.search.evaluate import shop_judgments  # noqa: PLC0415

    queries = _read_all(lake, "clean", "queries")
    truth_path = Path(truth_dir) / "queries.parquet" if truth_dir else None
    truth = pl.read_parquet(truth_path) if truth_path and truth_path.exists() else None
    pool = query_pool(queries, truth, max_queries)
    log(f"experiment: {pool.height:,} query texts ({'shop truth' if truth is not None else 'click'} relevance)")
    vectors = encode_queries_cached(pool["query"].to_list(), query_cache)
    served = serve(index, pool, vectors)
    clicks = _read_all(lake, "integrated", "query_clicks")
    judged = shop_judgments(clicks) if clicks is not None and truth is None else None
    sessions = _read_all(lake, "integrated", "sessions")
    users_tbl = lake.read("integrated", "users") if lake.exists("integrated", "users") else None
    users = user_frame(sessions, users_tbl)
    world = World.build(served, index.products if "category_l1" in index.products.columns else
                        _with_top(index.products), users, judged)
    exploration = exploration_log(world)
    log(f"experiment: exploration log of {exploration['search'].n_unique():,} searches "
        f"({exploration.height:,} slot impressions)")
    offline = offline_estimates(world, exploration)
    assignments, outcome = online_test(world)
    analysis = ab_test.analyse(outcome)
    verdict = compare_offline_online(offline, analysis)
    ids = index.products["product_id"]
    exploration = (exploration.with_columns(ids.gather(exploration["i"]).alias("product_id"),
                                            pool["query"].gather(exploration["qi"]).alias("query"),
                                            users["user_key"].gather(exploration["user"]).alias("user_key"))
                   .select("search", "user_key", "query", "slot", "product_id", "propensity", "click", "purchase",
                           "revenue"))
    return SearchExperiment(exploration, offline, assignments, outcome, analysis, verdict, pool.height)


def _with_top(products: pl.DataFrame) -> pl.DataFrame:
    return products.with_columns(pl.col("category_path").str.split(" > ").list.first().alias("category_l1"))


def compare_offline_online(offline: pl.DataFrame, analysis: dict) -> dict:
    """Does the offline estimate (made before the test) pick the online winner of clicks per search?"""
    online = next(m for m in analysis["metrics"] if m["metric"] == "clicks per search")
    online_winner = "treatment" if online["diff"] > 0 else "control"
    rows = {}
    for est in offline["estimator"].unique(maintain_order=True).to_list():
        o = offline.filter(pl.col("estimator") == est)
        c = o.filter(pl.col("variant") == "control")["value"].item()
        t = o.filter(pl.col("variant") == "treatment")["value"].item()
        rows[est] = {"control": c, "treatment": t, "predicted_winner": "treatment" if t > c else "control",
                     "predicted_lift": (t - c) / c if c else float("nan"),
                     "agrees": (("treatment" if t > c else "control") == online_winner)}
    return {"online_control": online["control"], "online_treatment": online["treatment"],
            "online_lift": online["relative"], "online_p_value": online["p_value"], "online_winner": online_winner,
            "online_significant": online["p_value"] < ab_test.ALPHA,
            "by_estimator": rows}
