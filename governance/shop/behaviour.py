"""Shopper behaviour: sessions, the view → click → add_to_cart → purchase funnel, search, reviews.

Everything is drawn per session / per visit / per event as numpy arrays; there is no Python loop
over rows. A search query steers the session's next visits towards the query's category (or
brand, or product), so query → click weak labels exist in the data the way they do in a real shop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from governance.shop.catalog import Catalog
from governance.shop.config import ShopConfig
from governance.shop.people import Users
from governance.shop.util import DAY_US, US, GroupSampler, epoch_us, weighted_choice

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
DEVICES = ("web", "ios", "android")
INTENTS = ("product", "category", "brand", "deal", "support")
INTENT_P = (0.30, 0.30, 0.12, 0.13, 0.15)

ANON_SHARE = 0.10
VISIT_P = 0.2  # visits per session ~ geometric, mean 5
P_CLICK, P_CLICK_SEARCH = 0.30, 0.50
P_CART, P_PURCHASE = 0.28, 0.55
P_FOLLOW_QUERY = 0.75  # a visit after a query is on the query's category
P_TARGET_FIRST = 0.8  # a product query's first visit is the product itself
HOUR_W = np.array(
    [
        2.0,
        1.3,
        0.9,
        0.7,
        0.6,
        0.7,
        1.1,
        1.8,
        2.6,
        3.2,
        3.5,
        3.7,
        4.0,
        4.0,
        3.8,
        3.8,
        4.0,
        4.4,
        5.0,
        5.8,
        6.3,
        6.0,
        4.8,
        3.3,
    ]
)
WEEKDAY_W = np.array([1.0, 0.97, 0.98, 1.02, 1.1, 1.3, 1.25])  # Mon..Sun
RATING_BASE = np.array([0.07, 0.05, 0.09, 0.22, 0.57])


@dataclass
class Behaviour:
    # sessions (index = session number)
    session_user: np.ndarray  # user index, -1 anonymous
    session_device: np.ndarray
    session_start: np.ndarray  # µs
    # events (clean, ordered by session then time)
    ev_session: np.ndarray
    ev_item: np.ndarray
    ev_type: np.ndarray  # index into EVENT_TYPES
    ev_t: np.ndarray  # µs
    ev_price: np.ndarray  # NaN where none
    ev_qty: np.ndarray  # 0 where none
    # queries
    q_session: np.ndarray
    q_t: np.ndarray
    q_intent: np.ndarray
    q_leaf: np.ndarray  # -1 for support
    q_product: np.ndarray  # target product (product / brand intents), else -1
    q_brand: np.ndarray  # brand of brand intent, else -1
    q_results: np.ndarray
    q_next_items: np.ndarray  # items of the visits the query steered (flattened), for checks
    # reviews
    rv_user: np.ndarray
    rv_item: np.ndarray
    rv_t: np.ndarray
    rv_rating: np.ndarray
    rv_purchase_event: np.ndarray  # event index of the purchase reviewed, -1 if before the window
    q_typo: np.ndarray | None = None

    @property
    def n_sessions(self) -> int:
        return len(self.session_user)


def _segment_starts(counts: np.ndarray) -> np.ndarray:
    ends = np.cumsum(counts)
    return ends - counts


def simulate(config: ShopConfig, rng: np.random.Generator, cat: Catalog, users: Users) -> Behaviour:
    n_target = config.n_events
    ws, we = epoch_us(config.window_start), epoch_us(config.window_end)
    exp_events_per_visit = 1 + P_CLICK * (1 + P_CART * (1 + P_PURCHASE))
    n_sess = int(np.ceil(n_target / (exp_events_per_visit / VISIT_P) * 1.25)) + 50

    # --- sessions -------------------------------------------------------------------------------
    dows = np.array([(config.start_date + dt.timedelta(days=d)).weekday() for d in range(config.days)])
    day_w = WEEKDAY_W[dows] * (1 + 0.01 * np.arange(config.days))
    s_day = rng.choice(config.days, n_sess, p=day_w / day_w.sum())
    s_hour = rng.choice(24, n_sess, p=HOUR_W / HOUR_W.sum())
    s_start = ws + s_day * DAY_US + (s_hour * 3600 + rng.integers(0, 3600, n_sess)) * US
    anon = rng.random(n_sess) < ANON_SHARE
    s_user = np.where(anon, -1, weighted_choice(rng, users.activity, n_sess))
    pref_device = rng.choice(3, users.n, p=[0.45, 0.32, 0.23])
    s_device = np.where(
        (s_user >= 0) & (rng.random(n_sess) < 0.8),
        pref_device[np.maximum(s_user, 0)],
        rng.choice(3, n_sess, p=[0.5, 0.28, 0.22]),
    )

    # --- visits and queries ---------------------------------------------------------------------
    nv = np.minimum(rng.geometric(VISIT_P, n_sess), 60)
    n_vis = int(nv.sum())
    v_sess = np.repeat(np.arange(n_sess), nv)
    v_pos = np.arange(n_vis) - np.repeat(_segment_starts(nv), nv)

    exp_sessions = n_target / (exp_events_per_visit / VISIT_P)
    m = min(1.2, config.target_queries / exp_sessions)
    kq = rng.choice(3, n_sess, p=[1 - m * 0.85, m * 0.7, m * 0.15])
    n_q = int(kq.sum())
    q_sess = np.repeat(np.arange(n_sess), kq)
    q_pos = (rng.random(n_q) * nv[q_sess]).astype(np.int64)
    order = np.lexsort((q_pos, q_sess))
    q_sess, q_pos = q_sess[order], q_pos[order]
    # two queries on one visit: the second is a refinement typed right after; keep both
    q_intent = rng.choice(len(INTENTS), n_q, p=INTENT_P)

    # visit → active query (last query at or before the visit in the same session)
    vkey = v_sess * 64 + v_pos
    qkey = q_sess * 64 + q_pos
    aq = np.searchsorted(qkey, vkey, side="right") - 1
    has_q = aq >= 0
    has_q[has_q] = q_sess[aq[has_q]] == v_sess[has_q]
    aq = np.where(has_q, aq, -1)
    steered_by = np.where(has_q & (q_intent[np.maximum(aq, 0)] != 4), aq, -1)

    # funnel depth per visit
    p_click = np.where(steered_by >= 0, P_CLICK_SEARCH, P_CLICK)
    click = rng.random(n_vis) < p_click
    cart = click & (rng.random(n_vis) < P_CART)
    buy = cart & (rng.random(n_vis) < P_PURCHASE)
    depth = 1 + click.astype(np.int64) + cart + buy

    # cut at exactly n_target events (a funnel prefix of the last visit is still a valid funnel)
    cum = np.cumsum(depth)
    if cum[-1] < n_target:
        raise RuntimeError("session oversampling too small")  # pragma: no cover - sized with margin
    last = int(np.searchsorted(cum, n_target))
    depth = depth[: last + 1].copy()
    depth[-1] -= int(cum[last] - n_target)
    n_vis = last + 1
    v_sess, v_pos, steered_by, aq = v_sess[:n_vis], v_pos[:n_vis], steered_by[:n_vis], aq[:n_vis]
    n_sess = int(v_sess[-1]) + 1
    keep_q = (q_sess < n_sess) & ((q_sess < v_sess[-1]) | (q_pos <= v_pos[-1]))
    q_sess, q_pos, q_intent = q_sess[keep_q], q_pos[keep_q], q_intent[keep_q]
    n_q = int(keep_q.sum())
    s_start, s_user, s_device = s_start[:n_sess], s_user[:n_sess], s_device[:n_sess]

    # --- times ----------------------------------------------------------------------------------
    n_ev = int(depth.sum())
    e_vis = np.repeat(np.arange(n_vis), depth)
    e_step = np.arange(n_ev) - np.repeat(_segment_starts(depth), depth)
    e_sess = v_sess[e_vis]
    first_of_visit = e_step == 0
    gap = np.zeros(n_ev, dtype=np.int64)
    view_gap = np.round(rng.lognormal(np.log(35), 0.9, n_ev)).astype(np.int64) + 2
    # typing a query before a visit takes a while
    visit_has_query = np.zeros(n_vis, dtype=bool)
    q_vis_first = np.searchsorted(vkey[:n_vis], qkey[keep_q])  # visit index of each query
    visit_has_query[q_vis_first] = True
    typing = np.where(visit_has_query[e_vis] & first_of_visit, rng.integers(4, 25, n_ev), 0)
    step_gap = np.choose(
        np.minimum(e_step, 3),
        [np.zeros(n_ev, np.int64), rng.integers(3, 25, n_ev), rng.integers(10, 90, n_ev), rng.integers(30, 240, n_ev)],
    )
    first_of_session = first_of_visit & (v_pos[e_vis] == 0)
    gap = np.where(first_of_visit, np.where(first_of_session, 0, view_gap) + typing, step_gap)
    csum = np.cumsum(gap)
    sess_counts = np.bincount(e_sess, minlength=n_sess)
    sess_start_ev = _segment_starts(sess_counts)
    offset = csum - np.repeat(csum[sess_start_ev] - gap[sess_start_ev], sess_counts)
    duration = offset[np.cumsum(sess_counts) - 1]
    s_start = np.minimum(s_start, we - (duration + 1) * US)
    e_t = np.repeat(s_start, sess_counts) + offset * US

    # query times: between the previous event and the view it led to
    q_view_ev = _segment_starts(depth)[q_vis_first]
    q_t = e_t[q_view_ev] - (typing[q_view_ev] * rng.uniform(0.3, 0.9, n_q)).astype(np.int64) * US
    q_t = q_t // US * US

    # --- items ----------------------------------------------------------------------------------
    leaf_sampler = GroupSampler(cat.leaf, cat.weight, n_groups=len(cat.leaf_top))
    bl_key = cat.brand * len(cat.leaf_top) + cat.leaf
    bl_uniq, bl_group = np.unique(bl_key, return_inverse=True)
    bl_sampler = GroupSampler(bl_group, cat.weight, n_groups=len(bl_uniq))

    def available(items: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.where(cat.available_from[items] > t, cat.sibling[items], items)

    q_product = np.full(n_q, -1)
    q_leaf = np.full(n_q, -1)
    q_brand = np.full(n_q, -1)
    prod_like = (q_intent == 0) | (q_intent == 2)
    q_product[prod_like] = available(weighted_choice(rng, cat.weight, int(prod_like.sum())), q_t[prod_like])
    q_leaf[prod_like] = cat.leaf[q_product[prod_like]]
    q_brand[q_intent == 2] = cat.brand[q_product[q_intent == 2]]
    leaf_w = np.bincount(cat.leaf, weights=cat.weight, minlength=len(cat.leaf_top))
    cat_like = (q_intent == 1) | (q_intent == 3)
    q_leaf[cat_like] = weighted_choice(rng, leaf_w, int(cat_like.sum()))

    # steered_by indexes the pre-cut query arrays; map to the kept ones
    kept_index = np.cumsum(keep_q) - 1
    steer = np.where(steered_by >= 0, kept_index[np.maximum(steered_by, 0)], -1)
    view_t = e_t[_segment_starts(depth)]
    items = weighted_choice(rng, cat.weight, n_vis)
    follow = (steer >= 0) & (rng.random(n_vis) < P_FOLLOW_QUERY)
    fq = steer[follow]
    by_brand = q_intent[fq] == 2
    g_items = np.where(
        by_brand,
        bl_sampler.sample(rng, bl_group[np.maximum(q_product[fq], 0)]),
        leaf_sampler.sample(rng, np.maximum(q_leaf[fq], 0)),
    )
    items[follow] = g_items
    first_after = (
        follow
        & (v_pos == q_pos[np.maximum(steer, 0)])
        & (q_intent[np.maximum(steer, 0)] == 0)
        & (rng.random(n_vis) < P_TARGET_FIRST)
    )
    items[first_after] = q_product[steer[first_after]]
    items = available(items, view_t)

    # --- prices, quantities -----------------------------------------------------------------------
    e_item = items[e_vis]
    qty_v = rng.choice(np.arange(1, 6), n_vis, p=[0.8, 0.12, 0.05, 0.02, 0.01])
    priced = e_step >= 2
    e_price = np.full(n_ev, np.nan)
    e_price[priced] = cat.price_at(e_item[priced], e_t[priced])
    e_qty = np.where(priced, qty_v[e_vis], 0)

    # results count: product queries find a handful, category/deal many, support none
    leaf_size = np.bincount(cat.leaf, minlength=len(cat.leaf_top))
    brand_size = np.bincount(cat.brand, minlength=len(cat.brands))
    base = np.choose(
        q_intent,
        [
            rng.integers(1, 30, n_q),
            leaf_size[np.maximum(q_leaf, 0)] * rng.integers(1, 4, n_q),
            brand_size[np.maximum(q_brand, 0)] + rng.integers(0, 10, n_q),
            (leaf_size[np.maximum(q_leaf, 0)] * rng.uniform(0.1, 0.6, n_q)).astype(np.int64) + 1,
            rng.integers(0, 4, n_q),
        ],
    )

    # items the query steered, for the click-through checks
    steered_items = items[follow]

    # --- reviews --------------------------------------------------------------------------------
    rv = _reviews(config, rng, cat, users, e_sess, e_step, e_t, e_item, s_user, ws, we)

    return Behaviour(
        session_user=s_user,
        session_device=s_device,
        session_start=s_start,
        ev_session=e_sess,
        ev_item=e_item,
        ev_type=np.minimum(e_step, 3),
        ev_t=e_t,
        ev_price=e_price,
        ev_qty=e_qty,
        q_session=q_sess,
        q_t=q_t,
        q_intent=q_intent,
        q_leaf=q_leaf,
        q_product=q_product,
        q_brand=q_brand,
        q_results=base.astype(np.int64),
        q_next_items=steered_items,
        rv_user=rv[0],
        rv_item=rv[1],
        rv_t=rv[2],
        rv_rating=rv[3],
        rv_purchase_event=rv[4],
    )


def _reviews(
    config: ShopConfig,
    rng: np.random.Generator,
    cat: Catalog,
    users: Users,
    e_sess,
    e_step,
    e_t,
    e_item,
    s_user,
    ws: int,
    we: int,
):
    """Reviews of purchases: some of purchases in the window (a few days later), the rest of older ones."""
    n_r = config.n_reviews
    purchases = np.flatnonzero((e_step == 3) & (s_user[e_sess] >= 0))
    n_in = min(int(round(0.4 * n_r)), purchases.size)
    pick_p = np.sort(rng.choice(purchases, n_in, replace=False)) if n_in else np.array([], dtype=np.int64)
    delay = (rng.lognormal(np.log(2.5 * 86_400), 0.8, n_in)).astype(np.int64) * US
    t_in = (e_t[pick_p] + delay) // US * US
    ok = t_in < we - 60 * US
    pick_p, t_in = pick_p[ok], t_in[ok]
    u_in, i_in = s_user[e_sess[pick_p]], e_item[pick_p]

    # a few (user, product) pairs repeat and are dropped below: draw some spare historical reviews
    n_hist = int((n_r - pick_p.size) * 1.15) + 5
    old = np.flatnonzero(~users.is_new)
    u_hist = old[weighted_choice(rng, users.activity[old], n_hist)]
    initial = np.flatnonzero(cat.available_from == np.iinfo(np.int64).min)
    i_hist = initial[weighted_choice(rng, cat.weight[initial], n_hist)]
    t_hist = ws + (rng.random(n_hist) * (we - ws - 60 * US)).astype(np.int64) // US * US

    user = np.concatenate([u_in, u_hist])
    item = np.concatenate([i_in, i_hist])
    t = np.concatenate([t_in, t_hist])
    pev = np.concatenate([pick_p, np.full(n_hist, -1)])
    # one review per (user, product)
    _, first = np.unique(user.astype(np.int64) * (cat.n + 1) + item, return_index=True)
    first = np.sort(first)[:n_r]
    user, item, t, pev = user[first], item[first], t[first], pev[first]

    quality = rng.normal(0, 0.35, cat.n)[item]
    logits = np.log(RATING_BASE)[None, :] + quality[:, None] * np.array([-2, -1, 0, 1, 2])[None, :]
    p = np.exp(logits)
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    rating = (rng.random(item.size)[:, None] > cum).sum(axis=1) + 1
    rating = np.minimum(rating, 5)
    order = np.argsort(t, kind="stable")
    return user[order], item[order], t[order], rating[order], pev[order]
