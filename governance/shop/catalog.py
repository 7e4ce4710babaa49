"""The catalog: a 3-level category tree, brands tied to categories, titles, descriptions and prices.

Prices are lognormal around a per-leaf median; a nightly repricing job changes a few percent of
them on some days, and new products appear on those days, so each product has a price history
and events can carry "the catalog price at the time".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from governance.shop.config import ShopConfig
from governance.shop.ids import make_ids
from governance.shop.util import DAY_US, US, GroupSampler, epoch_us, occurrence, pick, render, to_ts, uniform_below
from governance.shop.vocab import BRANDS, SUB_VOCAB, TOP_WEIGHTS, TREE

#: per-top variant words that make titles of one brand and leaf distinct
VARIANTS: dict[str, tuple[str, ...]] = {
    "Electronics": ("Black", "Silver", "White", "Midnight Blue", "Space Gray", "Graphite"),
    "Home & Kitchen": ("Red", "Black", "Sage Green", "Cream", "Charcoal", "Natural"),
    "Fashion": ("Black", "Navy", "Olive", "Beige", "Burgundy", "White"),
    "Beauty": ("Travel Size", "Value Pack", "Twin Pack", "Refill", "Limited Edition", "Mini"),
    "Sports & Outdoors": ("Black", "Neon Green", "Orange", "Cobalt Blue", "Grey", "Red"),
    "Toys": ("Ages 3+", "Ages 6+", "Ages 8+", "Gift Edition", "Travel Edition", "Jumbo"),
    "Books": ("Vol. 1", "Vol. 2", "2nd Edition", "Deluxe Edition", "Book Club Pick", "Revised Edition"),
    "Grocery": ("Pack of 2", "Pack of 4", "Value Size", "Multipack", "Bulk Pack", "Gift Box"),
}

TITLE_TEMPLATES = (
    "{brand} {adj} {noun} {attr} {variant}",
    "{brand} {adj} {noun} - {attr}, {variant}",
    "{brand} {noun} {attr}, {adj}, {variant}",
    "{brand} {adj} {noun}, {attr} ({variant})",
)
DESC_OPENERS = (
    "The {brand} {noun_l}, with {f1} and {f2}.",
    "Featuring {f1} and {f2}, this {adj_l} design from {brand} is built to last.",
    "Meet the {brand} {noun_l}: {f1}, {f2} and more.",
    "Built around {f1}, with {f2} on top.",
)
DESC_USES = ("Ideal for {use}.", "Perfect for {use}.", "Made for {use}.", "A great choice for {use}.")
DESC_EXTRAS = (
    "It also offers {f3}.",
    "Also includes {f3}.",
    "Customers mention {f3} as a highlight.",
    "Every unit is checked for {f3}.",
)

N_PRICE_CHANGE_DAYS = 4


@dataclass
class Catalog:
    """Everything the behaviour and fault modules need to know about products (index-aligned)."""

    leaves: pl.DataFrame  # leaf_idx, top, sub, leaf, category_path, noun, median_price
    leaf_top: np.ndarray  # top index per leaf
    tops: list[str]
    brands: list[str]
    ids: pl.Series  # product_id per product index
    leaf: np.ndarray
    top: np.ndarray
    brand: np.ndarray
    adj: np.ndarray  # adjective index (into the top's adjectives)
    attr: np.ndarray
    variant: np.ndarray
    title: pl.Series
    description: pl.Series
    weight: np.ndarray  # Zipf popularity weight
    available_from: np.ndarray  # µs; int64 min for products in the first snapshot
    sibling: np.ndarray  # an initial product of the same leaf (stand-in before launch)
    change_times: np.ndarray  # µs of each repricing run (sorted)
    prices: np.ndarray  # (n_products, n_changes + 1) USD price after k repricings
    changed: np.ndarray  # (n_products, n_changes) bool: repriced at change k
    created_at: np.ndarray  # µs: last catalog edit before the window (initial) or launch time
    versions: pl.DataFrame  # landed product rows: product_idx, version, price, updated_at_us, day

    @property
    def n(self) -> int:
        return len(self.leaf)

    def price_at(self, product: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.change_times, t_us, side="right")
        return self.prices[product, k]

    def category_path(self, product: np.ndarray | None = None) -> pl.Series:
        paths = self.leaves["category_path"]
        return paths.gather(self.leaf if product is None else self.leaf[product])


def _leaves_frame() -> tuple[pl.DataFrame, np.ndarray, list[str]]:
    rows, leaf_top = [], []
    tops = list(TREE)
    for ti, (top, spec) in enumerate(TREE.items()):
        for sub, leaves in spec["subs"].items():
            for leaf, (noun, _queries, median, attrs) in leaves.items():
                rows.append(
                    {
                        "leaf_idx": len(rows),
                        "top": top,
                        "sub": sub,
                        "leaf": leaf,
                        "category_path": f"{top} > {sub} > {leaf}",
                        "noun": noun,
                        "median_price": median,
                        "n_attrs": len(attrs),
                    }
                )
                leaf_top.append(ti)
    return pl.DataFrame(rows), np.array(leaf_top), tops


def leaf_specs() -> list[tuple[str, str, str, tuple]]:
    """(top, sub, leaf, (noun, queries, median, attrs)) in leaf index order."""
    return [
        (top, sub, leaf, spec) for top, s in TREE.items() for sub, ls in s["subs"].items() for leaf, spec in ls.items()
    ]


def _round_price(p: np.ndarray) -> np.ndarray:
    """Shop-like price endings: 3.99, 24.99, 129.00."""
    p = np.maximum(p, 0.99)
    small = np.floor(p) + 0.99
    mid = np.round(p) - 0.01
    big = np.round(p / 5) * 5
    return np.round(np.where(p < 10, small, np.where(p < 200, mid, big)), 2)


SUBS: list[str] = [sub for spec in TREE.values() for sub in spec["subs"]]


def leaf_sub() -> np.ndarray:
    """Subcategory index (into SUBS) of each leaf."""
    return np.array([SUBS.index(s[1]) for s in leaf_specs()])


def describe(
    rng: np.random.Generator, sub: np.ndarray, brand_names: pl.Series, noun: pl.Series, adj_name: pl.Series
) -> pl.Series:
    """Description text with the subcategory's own features and uses (what tells categories apart)."""
    n = len(sub)
    nf = 6
    feats = pl.Series([f for s in SUBS for f in SUB_VOCAB[s]["features"]])
    uses = pl.Series([u for s in SUBS for u in SUB_VOCAB[s]["uses"]])
    use_off = np.concatenate([[0], np.cumsum([len(SUB_VOCAB[s]["uses"]) for s in SUBS])[:-1]])
    use_n = np.array([len(SUB_VOCAB[s]["uses"]) for s in SUBS])
    a = rng.integers(0, nf, n)
    b = (a + 1 + rng.integers(0, nf - 1, n)) % nf
    c = (b + 1 + rng.integers(0, nf - 2, n)) % nf
    c = np.where(c == a, (c + 1) % nf, c)
    c = np.where(c == b, (c + 1) % nf, c)
    f1, f2, f3 = (feats.gather(sub * nf + k) for k in (a, b, c))
    use = uses.gather(use_off[sub] + uniform_below(rng, use_n[sub]))
    noun_l = noun.str.to_lowercase()
    s1 = render(
        DESC_OPENERS,
        rng.integers(0, len(DESC_OPENERS), n),
        brand=brand_names,
        noun_l=noun_l,
        adj_l=adj_name.str.to_lowercase(),
        f1=f1,
        f2=f2,
    )
    s2 = render(DESC_USES, rng.integers(0, len(DESC_USES), n), use=use)
    s3 = render(DESC_EXTRAS, rng.integers(0, len(DESC_EXTRAS), n), f3=f3)
    with_extra = pl.Series(rng.random(n) < 0.6)
    return (
        pl.select(
            pl.concat_str(
                s1, pl.lit(" "), s2, pl.when(with_extra).then(pl.concat_str(pl.lit(" "), s3)).otherwise(pl.lit(""))
            )
        )
        .to_series()
        .alias("description")
    )


def build_catalog(config: ShopConfig, rng: np.random.Generator) -> Catalog:
    leaves, leaf_top, tops = _leaves_frame()
    specs = leaf_specs()
    n_leaves = leaves.height
    n = config.n_products
    brands = [b for b, _ in BRANDS]

    # leaf of each product: two per leaf first (every leaf sells something), the rest weighted
    leaf_w = np.array([TOP_WEIGHTS[tops[t]] for t in leaf_top]) / np.bincount(leaf_top)[leaf_top]
    leaf_w = leaf_w * rng.lognormal(0, 0.35, n_leaves)
    leaf = np.concatenate(
        [np.repeat(np.arange(n_leaves), 2), rng.choice(n_leaves, n - 2 * n_leaves, p=leaf_w / leaf_w.sum())]
    )
    leaf = leaf[rng.permutation(n)]
    top = leaf_top[leaf]

    # brand: among the brands selling in the product's top category, a few dominate
    brand = np.zeros(n, dtype=np.int64)
    for ti, t in enumerate(tops):
        cand = np.array([bi for bi, (_, bt) in enumerate(BRANDS) if t in bt])
        w = 1.0 / np.arange(1, cand.size + 1) ** 0.8
        w = w[rng.permutation(cand.size)]
        rows = np.flatnonzero(top == ti)
        brand[rows] = cand[rng.choice(cand.size, rows.size, p=w / w.sum())]

    adj = rng.integers(0, 8, n)
    n_attrs = leaves["n_attrs"].to_numpy()[leaf]
    attr = uniform_below(rng, n_attrs)
    variant = rng.integers(0, 6, n)

    brand_names = pick(brands, brand)
    noun = pick([s[3][0] for s in specs], leaf)
    adj_name = pl.concat([pl.Series(TREE[tops[ti]]["adjectives"]) for ti in range(len(tops))]).gather(top * 8 + adj)
    attr_flat = [a for s in specs for a in s[3][3]]
    attr_off = np.concatenate([[0], np.cumsum([len(s[3][3]) for s in specs])[:-1]])
    attr_name = pick(attr_flat, attr_off[leaf] + attr)
    variant_name = pl.concat([pl.Series(VARIANTS[t]) for t in tops]).gather(top * 6 + variant)
    title = render(
        TITLE_TEMPLATES,
        rng.choice(len(TITLE_TEMPLATES), n, p=[0.55, 0.2, 0.1, 0.15]),
        brand=brand_names,
        adj=adj_name,
        noun=noun,
        attr=attr_name,
        variant=variant_name,
    )
    # the rare exact title collision becomes a successor model ("... Gen 2")
    dup_no = occurrence(title).to_numpy()
    title = (
        pl.select(
            pl.when(pl.Series(dup_no) > 0)
            .then(pl.concat_str(title, pl.lit(" Gen "), pl.Series(dup_no + 1).cast(pl.String)))
            .otherwise(title)
        )
        .to_series()
        .alias("title")
    )
    description = describe(rng, leaf_sub()[leaf], brand_names, noun, adj_name)

    # Zipf popularity over a random rank order
    rank = rng.permutation(n) + 1
    weight = 1.0 / rank.astype(np.float64) ** 1.05

    # base price: per-leaf median, per-brand premium, lognormal spread
    median = leaves["median_price"].to_numpy()[leaf]
    brand_premium = rng.lognormal(0, 0.25, len(brands))[brand]
    base = _round_price(median * brand_premium * rng.lognormal(0, 0.45, n))

    # repricing runs at ~02:xx on some days after the first; new products launch then too
    ws = epoch_us(config.window_start)
    change_days = (
        np.sort(rng.choice(np.arange(1, config.days), size=min(N_PRICE_CHANGE_DAYS, config.days - 1), replace=False))
        if config.days > 1
        else np.array([], dtype=np.int64)
    )
    change_times = ws + change_days * DAY_US + (2 * 3600 + rng.integers(0, 3600, change_days.size)) * US
    k_changes = change_days.size
    new_mask = np.zeros(n, dtype=bool)
    launch = np.full(n, -1, dtype=np.int64)
    if k_changes:
        # keep at least two initial products per leaf: only leaves' extra products may be new
        first_two = np.zeros(n, dtype=bool)
        order = np.argsort(leaf, kind="stable")
        pos_in_leaf = np.empty(n, dtype=np.int64)
        counts = np.bincount(leaf, minlength=n_leaves)
        pos_in_leaf[order] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
        first_two = pos_in_leaf < 2
        cand = np.flatnonzero(~first_two)
        n_new = min(cand.size, round(0.04 * n))
        new_idx = rng.choice(cand, n_new, replace=False)
        new_mask[new_idx] = True
        launch[new_idx] = rng.integers(0, k_changes, n_new)
    available_from = np.where(new_mask, change_times[np.maximum(launch, 0)] if k_changes else 0, np.iinfo(np.int64).min)

    prices = np.empty((n, k_changes + 1))
    prices[:, 0] = base
    changed = np.zeros((n, k_changes), dtype=bool)
    factors = np.array([0.8, 0.85, 0.9, 0.95, 1.05, 1.1, 1.15, 1.2])
    for k in range(k_changes):
        live = (~new_mask) | (launch < k)
        ch = live & (rng.random(n) < 0.05)
        changed[:, k] = ch
        prices[:, k + 1] = np.where(ch, _round_price(prices[:, k] * factors[rng.integers(0, 8, n)]), prices[:, k])

    sibling = np.arange(n)
    initial = ~new_mask
    samp = GroupSampler(leaf[initial], np.ones(initial.sum()), n_groups=n_leaves)
    sibling_initial = np.flatnonzero(initial)[samp.sample(rng, leaf)]
    sibling = np.where(new_mask, sibling_initial, sibling)

    created_at = np.where(new_mask, available_from, ws - rng.integers(3600, 400 * 86_400, n) * US)

    # landed product versions: the first-day snapshot, then per repricing day the changed and new rows
    rows_p, rows_v, rows_price, rows_t, rows_day = (
        [np.flatnonzero(initial)],
        [np.zeros(initial.sum(), np.int64)],
        [prices[initial, 0]],
        [created_at[initial]],
        [np.zeros(initial.sum(), np.int64)],
    )
    for k in range(k_changes):
        sel = np.flatnonzero(changed[:, k] | (new_mask & (launch == k)))
        rows_p.append(sel)
        rows_v.append(np.full(sel.size, k + 1))
        rows_price.append(prices[sel, k + 1])
        rows_t.append(np.full(sel.size, change_times[k]) + rng.integers(0, 600, sel.size) * US)
        rows_day.append(np.full(sel.size, change_days[k]))
    versions = pl.DataFrame(
        {
            "product_idx": np.concatenate(rows_p),
            "version": np.concatenate(rows_v),
            "price": np.concatenate(rows_price),
            "updated_at_us": np.concatenate(rows_t),
            "day": np.concatenate(rows_day),
        }
    )

    return Catalog(
        leaves=leaves.drop("n_attrs"),
        leaf_top=leaf_top,
        tops=tops,
        brands=brands,
        ids=make_ids("product", np.arange(n), config.seed).alias("product_id"),
        leaf=leaf,
        top=top,
        brand=brand,
        adj=adj,
        attr=attr,
        variant=variant,
        title=title,
        description=description,
        weight=weight,
        available_from=available_from,
        sibling=sibling,
        change_times=change_times,
        prices=prices,
        changed=changed,
        created_at=created_at,
        versions=versions,
    )


def title_parts(cat: Catalog, product: np.ndarray) -> dict[str, pl.Series]:
    """The words a product's title is made of (for reworded duplicates and search queries)."""
    specs = leaf_specs()
    tops = cat.tops
    leaf = cat.leaf[product]
    top = cat.top[product]
    attr_flat = [a for s in specs for a in s[3][3]]
    attr_off = np.concatenate([[0], np.cumsum([len(s[3][3]) for s in specs])[:-1]])
    return {
        "brand": pick(cat.brands, cat.brand[product]),
        "noun": pick([s[3][0] for s in specs], leaf),
        "adj": pl.concat([pl.Series(TREE[t]["adjectives"]) for t in tops]).gather(top * 8 + cat.adj[product]),
        "attr": pick(attr_flat, attr_off[leaf] + cat.attr[product]),
        "variant": pl.concat([pl.Series(VARIANTS[t]) for t in tops]).gather(top * 6 + cat.variant[product]),
    }


def clean_products(cat: Catalog) -> pl.DataFrame:
    """The true catalog at the end of the window (latest price, true category)."""
    last_update = cat.versions.group_by("product_idx").agg(pl.col("updated_at_us").max()).sort("product_idx")
    return pl.DataFrame(
        {
            "product_id": cat.ids,
            "title": cat.title,
            "description": cat.description,
            "brand": pick(cat.brands, cat.brand),
            "category_path": cat.category_path(),
            "price": cat.prices[:, -1],
            "currency": pl.Series(["USD"] * cat.n, dtype=pl.String),
            "updated_at": to_ts(last_update["updated_at_us"].to_numpy()),
        }
    )


def price_history(cat: Catalog) -> pl.DataFrame:
    """One row per (product, price) with the time it took effect (null: before the window)."""
    v = cat.versions
    return pl.DataFrame(
        {
            "product_id": cat.ids.gather(v["product_idx"].to_numpy()),
            "valid_from": to_ts(v.select(pl.when(pl.col("version") > 0).then(pl.col("updated_at_us"))).to_series()),
            "price": v["price"],
        }
    )
