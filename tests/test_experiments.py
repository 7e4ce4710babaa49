"""Off-policy estimators against their formulas and known answers; the A/B read-out's statistics."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
from scipy import stats

from governance.experiments import ab_test
from governance.experiments.off_policy import (dm, dr, estimate, fit_reward_model, ips, open_bandit_validation,
                                               snips)

# ------------------------------------------------------------------------------------------ formulas


def test_estimators_match_their_formulas_on_a_hand_computed_log():
    r = np.array([1.0, 0.0, 1.0, 0.0])
    w = np.array([2.0, 0.5, 1.0, 0.0])
    q_log = np.array([0.5, 0.2, 0.4, 0.1])
    q_tgt = np.array([0.6, 0.3, 0.5, 0.2])
    assert ips(r, w) == pytest.approx((2 + 0 + 1 + 0) / 4)
    assert snips(r, w) == pytest.approx(3 / 3.5)
    assert dm(q_tgt) == pytest.approx(0.4)
    # DR = mean(q_tgt + w (r - q_log)) = mean(0.6+1.0, 0.3-0.1, 0.5+0.6, 0.2+0) = 3.1 / 4
    assert dr(r, w, q_log, q_tgt) == pytest.approx(3.1 / 4)
    got = {e.estimator: e.value for e in estimate(r, w, q_log, q_tgt, n_boot=50)}
    assert got == pytest.approx({"IPS": 0.75, "SNIPS": 3 / 3.5, "DM": 0.4, "DR": 0.775})


def _bandit(n: int, seed: int):
    """Two context types, three actions, uniform logging; the target policy plays a fixed action per context."""
    rng = np.random.default_rng(seed)
    p_reward = np.array([[0.10, 0.30, 0.05], [0.40, 0.05, 0.20]])  # context × action
    target = np.array([1, 0])  # best action per context
    ctx = rng.integers(0, 2, n)
    act = rng.integers(0, 3, n)
    reward = (rng.random(n) < p_reward[ctx, act]).astype(float)
    weight = (act == target[ctx]) / (1 / 3)
    truth = 0.5 * 0.30 + 0.5 * 0.40  # both contexts equally likely
    return ctx, act, reward, weight, p_reward, target, truth


def test_ips_snips_dr_recover_a_known_policy_value_within_their_intervals():
    ctx, act, reward, weight, p_reward, target, truth = _bandit(30_000, seed=1)
    q_log = p_reward[ctx, act]  # a correct reward model
    q_tgt = p_reward[ctx, target[ctx]]
    est = {e.estimator: e for e in estimate(reward, weight, q_log, q_tgt, n_boot=300, seed=2)}
    for name in ("IPS", "SNIPS", "DR", "DM"):
        e = est[name]
        assert e.low <= truth <= e.high, (name, e)
        assert abs(e.value - truth) < 0.02, (name, e)
    # a correct model makes DR's interval no wider than IPS's
    assert (est["DR"].high - est["DR"].low) <= (est["IPS"].high - est["IPS"].low)
    # the logged rewards of the uniform policy are far from the target's value: the estimate is not a copy
    assert abs(reward.mean() - truth) > 0.1


def test_dm_is_biased_by_a_wrong_model_and_dr_corrects_it():
    ctx, act, reward, weight, p_reward, target, truth = _bandit(30_000, seed=3)
    wrong = np.full_like(p_reward, 0.2)
    est = {e.estimator: e.value for e in estimate(reward, weight, wrong[ctx, act], wrong[ctx, target[ctx]],
                                                  n_boot=100)}
    assert est["DM"] == pytest.approx(0.2)
    assert abs(est["DR"] - truth) < 0.02


def test_dm_interval_refits_the_reward_model_on_each_resample():
    ctx, act, reward, weight, p_reward, target, truth = _bandit(3_000, seed=4)
    cells = ctx * 3 + act

    def q_values(counts):
        """The reward model: the (weighted) mean reward of each (context, action) cell."""
        clicks = np.bincount(cells, weights=counts * reward, minlength=6)
        shown = np.bincount(cells, weights=counts, minlength=6)
        q = np.divide(clicks, shown, out=np.zeros(6), where=shown > 0).reshape(2, 3)
        return q[ctx, act], q[ctx, target[ctx]]

    seen = []

    def refit(counts):
        seen.append(counts)
        return q_values(counts)

    q_log, q_tgt = q_values(np.ones(ctx.size))
    fixed = {e.estimator: e for e in estimate(reward, weight, q_log, q_tgt, n_boot=400, seed=1)}
    refitted = {e.estimator: e for e in estimate(reward, weight, q_log, q_tgt, n_boot=400, seed=1,
                                                 refit=refit, n_refit=300)}
    assert len(seen) == 300 and all(c.sum() == ctx.size for c in seen)  # one refit per resample, n draws each
    for name in ("IPS", "SNIPS"):  # untouched by the reward model
        assert (refitted[name].low, refitted[name].high) == (fixed[name].low, fixed[name].high)
    assert refitted["DM"].value == fixed["DM"].value
    # held fixed, the model's own error is missing from DM's interval; refitted, it is there
    assert refitted["DM"].high - refitted["DM"].low > 2 * (fixed["DM"].high - fixed["DM"].low)
    assert refitted["DM"].low <= truth <= refitted["DM"].high
    # the refitted DM's interval is the spread of DM recomputed on each resample's own model
    counts = np.random.default_rng(1).multinomial(ctx.size, np.full(ctx.size, 1 / ctx.size), size=400)[:300]
    by_hand = [np.sum(c * q_values(c.astype(float))[1]) / c.sum() for c in counts]
    assert (refitted["DM"].low, refitted["DM"].high) == pytest.approx(tuple(np.quantile(by_hand, [0.025, 0.975])))


def test_reward_model_sample_weights_count_as_repeated_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (rng.random(400) < 1 / (1 + np.exp(-x @ np.array([1.0, -2.0, 0.5])))).astype(int)
    counts = rng.integers(0, 3, 400)
    weighted = fit_reward_model(x, y, sample_weight=counts)
    repeated = fit_reward_model(np.repeat(x, counts, axis=0), np.repeat(y, counts))
    assert weighted(x) == pytest.approx(repeated(x), abs=1e-4)
    assert not np.allclose(weighted(x), fit_reward_model(x, y)(x), atol=1e-3)  # the weights did something


def test_slot_estimates_sum_and_snips_normalises_per_slot():
    rng = np.random.default_rng(0)
    r = (rng.random((500, 3)) < 0.3).astype(float)
    w = rng.choice([0.0, 2.0], size=(500, 3))
    w[:, 2] *= 3  # a slot whose weights do not average 1
    total = {e.estimator: e.value for e in estimate(r, w, n_boot=50)}
    per_slot = [{e.estimator: e.value for e in estimate(r[:, s], w[:, s], n_boot=50)} for s in range(3)]
    assert total["IPS"] == pytest.approx(sum(p["IPS"] for p in per_slot))
    assert total["SNIPS"] == pytest.approx(sum(p["SNIPS"] for p in per_slot))


# ------------------------------------------------------------------------------------------ A/B


def test_assignment_is_a_stable_hash_split():
    units = [f"u{i:05d}" for i in range(20_000)]
    a = ab_test.assign(units, "exp-1")
    b = ab_test.assign(list(reversed(units)), "exp-1")
    joined = a.join(b, on="unit", suffix="_again")
    assert (joined["variant"] == joined["variant_again"]).all()  # same unit, same variant, any order
    share = (a["variant"] == "treatment").mean()
    assert 0.48 < share < 0.52
    # the bucket is md5("<experiment>:<unit>") read as a fraction of 2^52
    h = int(hashlib.md5(b"exp-1:u00042").hexdigest()[:13], 16) / 2 ** 52
    assert a.filter(pl.col("unit") == "u00042")["bucket"].item() == pytest.approx(h)
    other = ab_test.assign(units, "exp-2")
    assert 0.4 < (other["variant"] == a["variant"]).mean() < 0.6  # a new experiment reshuffles
    weighted = ab_test.assign(units, "exp-1", ("a", "b", "c"), (0.2, 0.3, 0.5))
    shares = weighted["variant"].value_counts(normalize=True).sort("variant")["proportion"].to_list()
    assert shares == pytest.approx([0.2, 0.3, 0.5], abs=0.015)


def test_srm_flags_a_broken_split_and_passes_a_fair_one():
    fair = ab_test.srm([5030, 4970])
    assert not fair["mismatch"] and fair["p_value"] > 0.5
    broken = ab_test.srm([5000, 5400])
    assert broken["chi2"] == pytest.approx(2 * 200 ** 2 / 5200)
    assert broken["mismatch"] and broken["p_value"] < 0.001
    assert not ab_test.srm([2000, 8000], [0.2, 0.8])["mismatch"]  # the planned split, not 50/50


def test_compare_means_matches_welch():
    rng = np.random.default_rng(5)
    c, t = rng.normal(1.0, 1.0, 800), rng.normal(1.15, 1.3, 700)
    comp = ab_test.compare_means("m", c, t)
    assert comp.p_value == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-6)
    assert comp.diff == pytest.approx(t.mean() - c.mean())
    assert comp.diff_low < comp.diff < comp.diff_high


def test_ratio_metric_uses_the_delta_method():
    rng = np.random.default_rng(6)
    den_c, den_t = rng.integers(1, 8, 2000), rng.integers(1, 8, 2000)
    num_c, num_t = rng.binomial(den_c, 0.30), rng.binomial(den_t, 0.36)
    comp = ab_test.compare_ratios("ctr", num_c, den_c, num_t, den_t)
    assert comp.control == pytest.approx(num_c.sum() / den_c.sum())
    assert comp.treatment == pytest.approx(num_t.sum() / den_t.sum())
    assert comp.p_value < 0.001 and comp.diff_low > 0
    # the delta-method interval agrees with a bootstrap over users
    boot = []
    for _ in range(400):
        i = rng.integers(0, 2000, 2000)
        boot.append(num_c[i].sum() / den_c[i].sum())
    half = (comp.control_high - comp.control_low) / 2
    assert half == pytest.approx(1.96 * np.std(boot), rel=0.2)


def test_cuped_keeps_the_effect_and_removes_the_explained_variance():
    rng = np.random.default_rng(7)
    n = 6000
    x = rng.gamma(2.0, 2.0, n)  # pre-period activity
    is_t = rng.random(n) < 0.5
    y = 0.8 * x + rng.normal(0, 1.0, n) + 0.3 * is_t
    comp, info = ab_test.compare_cuped("y", y, x, is_t)
    raw = ab_test.compare_means("y", y[~is_t], y[is_t])
    assert comp.diff == pytest.approx(0.3, abs=0.08)
    expected = np.corrcoef(x, y)[0, 1] ** 2
    assert info["variance_reduction"] == pytest.approx(expected, abs=0.05)
    assert (comp.diff_high - comp.diff_low) < 0.6 * (raw.diff_high - raw.diff_low)


def test_guardrail_fails_only_on_a_significant_drop():
    rng = np.random.default_rng(8)
    base = rng.exponential(40, 3000)
    assert ab_test.guardrail("revenue", base, rng.exponential(30, 3000))["violated"]
    assert not ab_test.guardrail("revenue", base, rng.exponential(40, 3000))["violated"]
    assert not ab_test.guardrail("revenue", base, rng.exponential(50, 3000))["violated"]


# ------------------------------------------------------------------------------------------ real logs


def test_open_bandit_estimates_bracket_the_on_policy_ctr(shared_data):
    result = open_bandit_validation(shared_data / "open_bandit_zozotown_sample", n_boot=300)
    assert result["on_policy_ctr_bts"] == pytest.approx(0.0042)
    assert result["logged_ctr_random"] == pytest.approx(0.0038)
    est = {r["estimator"]: r for r in result["estimates"].to_dicts()}
    assert set(est) == {"IPS", "SNIPS", "DM", "DR"}
    for name in ("IPS", "SNIPS", "DM", "DR"):  # DM's and DR's resamples refit the reward model
        r = est[name]
        assert r["ci_low"] <= result["on_policy_ctr_bts"] <= r["ci_high"], r
    assert est["DM"]["relative_error"] < 0.5


# ------------------------------------------------------------------------------------------ simulation


def _world(n_queries: int = 40, n_products: int = 60, seed: int = 0, n_users: int = 4000):
    from governance.experiments.simulate import SLOTS, Served, World

    rng = np.random.default_rng(seed)
    lists = {m: np.stack([rng.permutation(n_products)[:SLOTS] for _ in range(n_queries)])
             for m in ("bm25", "dense", "hybrid")}
    lists["hybrid"][:, :5] = lists["bm25"][:, :5]  # the arms share their top half, as fused lists do
    lists["hybrid"] = np.stack([np.concatenate([row[:5], [x for x in lists["dense"][i] if x not in row[:5]][:5]])
                                for i, row in enumerate(lists["hybrid"])])
    lists["bm25"][::5, 7:] = -1  # some queries where BM25 finds fewer than 10
    pool = [np.unique(np.concatenate([lists[m][i][lists[m][i] >= 0] for m in lists])) for i in range(n_queries)]
    feats = {"qi": np.concatenate([np.full(p.size, i) for i, p in enumerate(pool)]), "i": np.concatenate(pool)}
    feats["bm25_rank"] = rng.integers(1, 100, feats["i"].size)
    feats["dense_rank"] = rng.integers(1, 100, feats["i"].size)
    served = Served(pl.DataFrame({"qi": np.arange(n_queries), "query": [f"q{i}" for i in range(n_queries)],
                                  "weight": rng.integers(1, 20, n_queries)}), lists, pool, feats)
    users = pl.DataFrame({"user_key": [f"u{i:05d}" for i in range(n_users)], "pre_searches": rng.poisson(3, n_users),
                          "pre_clicks": rng.poisson(4, n_users), "pre_purchases": rng.poisson(1, n_users),
                          "pre_revenue": rng.exponential(20, n_users)})
    world = World(served, {}, rng.uniform(0.0, 0.9, (n_queries, n_products)).astype(np.float32),
                  rng.uniform(5, 50, n_products), users, np.ones(n_users))
    return world


def test_logged_propensities_make_importance_weights_average_one_per_slot():
    from governance.experiments.simulate import SLOTS, VARIANTS, exploration_log

    world = _world()
    log = exploration_log(world, seed=3)
    assert log.height == log["search"].n_unique() * SLOTS
    assert log["propensity"].is_between(0, 1, closed="right").all()
    for ranker in VARIANTS.values():
        target = world.served.lists[ranker][log["qi"].to_numpy(), log["slot"].to_numpy() - 1]
        w = np.where(target < 0, 1.0, (log["i"].to_numpy() == target) / log["propensity"].to_numpy())
        per_slot = pl.DataFrame({"slot": log["slot"], "w": w}).group_by("slot").agg(pl.col("w").mean())
        assert per_slot["w"].is_between(0.8, 1.2).all(), (ranker, per_slot)  # E[w] = 1 in every slot
        assert w.mean() == pytest.approx(1.0, abs=0.04)


def test_offline_estimates_track_the_online_value_of_each_arm():
    from governance.experiments.simulate import exploration_log, offline_estimates, online_test

    world = _world()
    offline = offline_estimates(world, exploration_log(world, seed=5), n_boot=200, n_refit=40)
    _, users = online_test(world, seed=9, days=28)
    active = users.filter(pl.col("searches") > 0)
    for variant in ("control", "treatment"):
        u = active.filter(pl.col("variant") == variant)
        online = u["clicks"].sum() / u["searches"].sum()
        for row in offline.filter(pl.col("variant") == variant).to_dicts():
            if row["estimator"] in ("IPS", "SNIPS", "DR"):
                assert row["value"] == pytest.approx(online, rel=0.12), (variant, row, online)
