"""Review and search-query text, assembled from phrase banks so no two texts follow one template.

A review is an opener, one or two aspect comments (quality, value, shipping, durability, fit,
taste, story, skin, ease of use — whichever fit the product's category, with the category's own
part nouns), sometimes a hedge ("although ..."), and a closer, each drawn from the bank of the
rating's sentiment. Queries follow the shopper's intent: a near-title, a category phrase, a brand,
a deal hunt, or a support question; a few carry typos.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from governance.shop.catalog import SUBS, Catalog, leaf_specs, leaf_sub
from governance.shop.util import pick, render, uniform_below
from governance.shop.vocab import SUB_VOCAB, TREE

OPENERS: dict[int, tuple[str, ...]] = {
    5: (
        "Absolutely love {this} {noun}!",
        "Best {noun} I have ever bought.",
        "Fantastic {noun}, exceeded my expectations.",
        "Five stars, {this} {noun} {is} excellent.",
        "Wow, what a great {noun}.",
        "So happy with {this} {noun}.",
        "Amazing {noun}, no regrets at all.",
        "{This} {noun} {is} simply perfect.",
    ),
    4: (
        "Really good {noun} overall.",
        "Very pleased with {this} {noun}.",
        "Solid {noun}, happy with the purchase.",
        "Nice {noun} that does what it should.",
        "Good {noun} for the money.",
        "Pretty great {noun} for everyday use.",
    ),
    3: (
        "The {noun} {is} okay.",
        "An average {noun}.",
        "Decent {noun}, nothing special.",
        "Mixed feelings about {this} {noun}.",
        "The {noun} does the job, more or less.",
        "It's fine, I guess.",
    ),
    2: (
        "Rather unhappy with {this} {noun}.",
        "The {noun} {is} disappointing.",
        "Expected much more, {this} {noun} {is} disappointing.",
        "Poor {noun} for the price.",
        "Below average {noun}, a poor buy.",
        "Quite disappointed with {this} {noun}.",
    ),
    1: (
        "Terrible {noun}, do not buy.",
        "Worst {noun} I have ever owned.",
        "Complete waste of money.",
        "Awful {noun}, a total disaster.",
        "Very disappointed, {this} {noun} {is} junk.",
        "Do not waste your money on {this} {noun}.",
        "Horrible {noun}, I regret buying it.",
    ),
}
CLOSERS: dict[int, tuple[str, ...]] = {
    5: (
        "Highly recommend!",
        "Would definitely buy again.",
        "Five stars from me.",
        "Love it, love it, love it.",
        "Already ordered a second one as a gift.",
        "Couldn't be happier.",
    ),
    4: ("Would recommend.", "Happy with it overall.", "A good purchase.", "Four stars.", "Would buy again."),
    3: (
        "It's fine for the price.",
        "Might buy again if it's on sale.",
        "Not bad, not great.",
        "Three stars.",
        "Okay for occasional use.",
    ),
    2: ("Probably won't buy again.", "I expected better.", "Two stars, sadly.", "Would not recommend."),
    1: (
        "Would not recommend.",
        "Returning it for a refund.",
        "Save your money.",
        "Never buying this brand again.",
        "Avoid!",
        "One star is generous.",
    ),
}
TITLES: dict[int, tuple[str, ...]] = {
    5: (
        "Love it!",
        "Excellent",
        "Perfect {noun}",
        "Highly recommend",
        "Amazing quality",
        "Best purchase this year",
        "Five stars",
    ),
    4: ("Very good", "Good value", "Happy with it", "Nice {noun}", "Solid choice", "Works well"),
    3: ("Okay", "Average", "It's fine", "Does the job", "Mixed feelings", "Could be better"),
    2: ("Disappointed", "Not great", "Meh", "Below expectations", "Not worth it"),
    1: ("Terrible", "Waste of money", "Do not buy", "Awful {noun}", "Broke in a week", "Avoid"),
}
ALL_TOPS = tuple(TREE)
DURABLE = ("Electronics", "Home & Kitchen", "Fashion", "Sports & Outdoors", "Toys")
#: aspect → (tops it applies to, positive templates, negative templates)
ASPECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "quality": (
        ALL_TOPS,
        (
            "The quality of the {part} is excellent.",
            "Really impressed by the {part}, very well made.",
            "I love the {part}, you can tell it is premium.",
        ),
        (
            "The quality of the {part} is poor.",
            "Disappointed by the {part}, it feels cheap.",
            "Problems with the {part} from day one.",
        ),
    ),
    "value": (
        ALL_TOPS,
        ("Great value for the price.", "Worth every penny.", "Cheaper than elsewhere and just as good."),
        ("Way overpriced for what you get.", "Not worth the money at all.", "Far too expensive for this poor quality."),
    ),
    "shipping": (
        ALL_TOPS,
        (
            "Shipping was fast and the package arrived in perfect condition.",
            "Arrived two days early, well packed.",
            "Delivery was quick and the packaging was excellent.",
        ),
        (
            "Shipping took forever and the box was damaged.",
            "Arrived late and poorly packed.",
            "Delivery was a nightmare, two weeks late.",
        ),
    ),
    "durability": (
        DURABLE,
        (
            "Holding up great after months of use.",
            "Survived heavy use without a scratch, impressive.",
            "Still looks brand new after many weeks, excellent.",
        ),
        (
            "Broke after just two weeks.",
            "Started falling apart within a month, awful.",
            "Stopped working after a few uses, useless.",
        ),
    ),
    "fit": (
        ("Fashion", "Sports & Outdoors"),
        (
            "The fit is perfect and true to size.",
            "Fits like a glove, love how comfortable it is.",
            "Comfortable all day long, great fit.",
        ),
        (
            "The sizing is way off, a terrible fit.",
            "Uncomfortable and the fit is awful.",
            "Had to send it back because the fit was bad.",
        ),
    ),
    "taste": (
        ("Grocery",),
        ("Delicious, wonderful {part}.", "Tastes amazing and fresh.", "Lovely {part}, the kids love it."),
        (
            "Tastes stale and bland, awful.",
            "Terrible {part}, nothing like described.",
            "Arrived stale, a disgusting {part}.",
        ),
    ),
    "story": (
        ("Books",),
        (
            "The {part} kept me hooked until the last page, wonderful.",
            "Beautifully written, loved the {part}.",
            "A wonderful read, brilliant {part}.",
        ),
        (
            "Boring and predictable {part}.",
            "Poorly written, I gave up halfway.",
            "Dull {part}, a real struggle to finish, disappointing.",
        ),
    ),
    "skin": (
        ("Beauty",),
        (
            "My skin feels soft and smooth, love it.",
            "Gentle, no irritation at all, love the {part}.",
            "Works wonderfully, lovely {part}.",
        ),
        ("Gave me a terrible rash.", "Irritated my skin, awful {part}.", "Greasy and useless, hated the {part}."),
    ),
    "ease": (
        ("Electronics", "Home & Kitchen", "Toys", "Sports & Outdoors"),
        ("Easy to set up and a joy to use.", "Works exactly as described, excellent.", "Simple to use, impressed."),
        (
            "Confusing to set up and frustrating to use.",
            "Does not work as described, poor.",
            "Useless instructions, a pain to use.",
        ),
    ),
}
#: mild counter-remarks that do not flip the review's sentiment (no strong sentiment words)
HEDGES_FOR_POSITIVE = (
    "The only minor issue: the {part} took a little getting used to.",
    "Packaging could have been sturdier, though.",
    "It took a while to arrive, although that is a small thing.",
    "The {part} could be slightly better, but that is nitpicking.",
)
HEDGES_FOR_NEGATIVE = (
    "The {part} seemed okay at first, but that does not save it.",
    "Customer service was polite, at least.",
    "The packaging was fine, although that hardly matters.",
    "The colour is as pictured, but that is about it.",
)

SUPPORT_QUERIES = (
    "how to return an item",
    "track my order",
    "where is my order",
    "cancel my order",
    "refund status",
    "change delivery address",
    "contact customer service",
    "reset password",
    "warranty claim",
    "return policy",
    "gift card balance",
    "how do i track my package",
    "order not received",
    "damaged item received",
    "change payment method",
    "delete my account",
    "shipping costs",
    "exchange wrong size",
    "invoice download",
    "how long does delivery take",
)
CATEGORY_TEMPLATES = (
    "{q}",
    "{q}",
    "best {q}",
    "{q} for {who}",
    "{color} {q}",
    "top rated {q}",
    "{q} reviews",
    "buy {q} online",
    "new {q}",
    "{q} {year}",
)
DEAL_TEMPLATES = (
    "cheap {q} under {n}",
    "{q} sale",
    "{q} discount",
    "best deals on {q}",
    "{q} clearance",
    "{q} coupon",
    "{q} black friday deal",
    "{q} under {n} dollars",
    "discount {q}",
    "{q} on sale",
)
BRAND_TEMPLATES = (
    "{brand}",
    "{brand}",
    "{brand} store",
    "{brand} new arrivals",
    "{brand} {top}",
    "{brand} official",
    "{brand} outlet",
    "{brand} {noun}",
)
PRODUCT_TEMPLATES = (
    "{brand} {noun}",
    "{brand} {noun} {attr}",
    "{brand} {adj} {noun}",
    "{noun} {attr} {brand}",
    "{brand} {adj} {noun} {attr}",
    "{adj} {noun} {attr}",
)
WHO = ("men", "women", "kids", "beginners", "travel", "home", "office", "teens")
COLORS = ("black", "white", "blue", "red", "green", "grey", "pink", "navy")


def sentiment_of(rating: np.ndarray) -> np.ndarray:
    """negative (1–2), neutral (3), positive (4–5)."""
    return np.where(rating <= 2, "negative", np.where(rating == 3, "neutral", "positive"))


def _flat(bank: dict[int, tuple[str, ...]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    flat, off, cnt = [], [], []
    for r in range(1, 6):
        off.append(len(flat))
        cnt.append(len(bank[r]))
        flat.extend(bank[r])
    return flat, np.array(off), np.array(cnt)


def _from_bank(rng, bank, level: np.ndarray) -> pl.Series:
    flat, off, cnt = _flat(bank)
    return pick(flat, off[level - 1] + uniform_below(rng, cnt[level - 1]))


def _aspect_tables(polarity: int):
    """Flattened aspect templates per top: (templates, offsets by top, counts by top)."""
    flat, off, cnt = [], [], []
    for top in TREE:
        off.append(len(flat))
        mine = [t for _, (tops, pos, neg) in ASPECTS.items() if top in tops for t in (pos if polarity > 0 else neg)]
        cnt.append(len(mine))
        flat.extend(mine)
    return flat, np.array(off), np.array(cnt)


def _aspects(rng, top: np.ndarray, polarity: int, distinct_from: np.ndarray | None = None):
    flat, off, cnt = _aspect_tables(polarity)
    k = uniform_below(rng, cnt[top])
    if distinct_from is not None:
        k = np.where(k == distinct_from, (k + 1) % cnt[top], k)
    return pick(flat, off[top] + k), k


def review_texts(
    rng: np.random.Generator, rating: np.ndarray, cat: Catalog, item: np.ndarray
) -> tuple[pl.Series, pl.Series]:
    """(title, text) per review whose sentiment follows `rating` (1..5)."""
    n = rating.size
    top = cat.top[item]
    specs = leaf_specs()
    noun_l = pick([s[3][0].lower() for s in specs], cat.leaf[item])
    plural = np.array([s[3][0].endswith("s") and not s[3][0].endswith("ss") for s in specs])[cat.leaf[item]]
    parts_flat = [p for sub in SUBS for p in SUB_VOCAB[sub]["parts"]]
    part = pick(parts_flat, leaf_sub()[cat.leaf[item]] * 6 + rng.integers(0, 6, n))
    this = pl.Series(np.where(plural, "these", "this"))
    This = pl.Series(np.where(plural, "These", "This"))
    is_ = pl.Series(np.where(plural, "are", "is"))

    opener = _from_bank(rng, OPENERS, rating)
    closer = _from_bank(rng, CLOSERS, rating)
    title = _from_bank(rng, TITLES, rating)
    positive = rating >= 4
    neutral = rating == 3
    pos1, k1 = _aspects(rng, top, +1)
    neg1, k2 = _aspects(rng, top, -1)
    pos2, _ = _aspects(rng, top, +1, distinct_from=k1)
    neg2, _ = _aspects(rng, top, -1, distinct_from=k2)
    hedge_p = pick(HEDGES_FOR_POSITIVE, rng.integers(0, len(HEDGES_FOR_POSITIVE), n))
    hedge_n = pick(HEDGES_FOR_NEGATIVE, rng.integers(0, len(HEDGES_FOR_NEGATIVE), n))

    two_aspects = rng.random(n) < 0.45
    hedge = rng.random(n) < np.where(rating == 5, 0.08, np.where(rating == 4, 0.25, 0.18))
    with_closer = rng.random(n) < 0.8
    neg_first = rng.random(n) < 0.5
    empty = pl.lit("")
    sp = pl.lit(" ")

    def opt(cond: np.ndarray, s: pl.Series | pl.Expr) -> pl.Expr:
        return pl.when(pl.Series(cond)).then(pl.concat_str(sp, s)).otherwise(empty)

    polar_a1 = pl.when(pl.Series(positive)).then(pos1).otherwise(neg1)
    polar_a2 = pl.when(pl.Series(positive)).then(pos2).otherwise(neg2)
    polar_h = pl.when(pl.Series(positive)).then(hedge_p).otherwise(hedge_n)
    polar = pl.concat_str(
        opener, sp, polar_a1, opt(two_aspects, polar_a2), opt(hedge, polar_h), opt(with_closer, closer)
    )
    mixed = pl.concat_str(
        opener,
        sp,
        pl.when(pl.Series(neg_first)).then(pl.concat_str(neg1, sp, pos1)).otherwise(pl.concat_str(pos1, sp, neg1)),
        opt(with_closer, closer),
    )
    template = pl.select(pl.when(pl.Series(neutral)).then(mixed).otherwise(polar)).to_series()
    text = render(template, noun=noun_l, this=this, This=This, part=part, **{"is": is_})
    noun_title = pl.Series([s[3][0] for s in specs]).gather(cat.leaf[item])
    title = render(title, noun=noun_title)
    return title.alias("title"), text.alias("text")


def _typo(rng: np.random.Generator, s: pl.Series, mask: np.ndarray) -> pl.Series:
    """Delete, double or swap one character somewhere in the middle of the string."""
    n = len(s)
    length = s.str.len_chars().to_numpy()
    pos = 1 + (rng.random(n) * np.maximum(length - 2, 1)).astype(np.int64)
    kind = rng.integers(0, 3, n)
    frame = pl.DataFrame({"s": s, "p": pos, "k": kind, "m": mask})
    p = pl.col("p")
    head = pl.col("s").str.slice(0, p)
    c1 = pl.col("s").str.slice(p, 1)
    c2 = pl.col("s").str.slice(p + 1, 1)
    tail1 = pl.col("s").str.slice(p + 1)
    tail2 = pl.col("s").str.slice(p + 2)
    out = (
        pl.when(~pl.col("m") | (pl.col("s").str.len_chars() < 4))
        .then(pl.col("s"))
        .when(pl.col("k") == 0)
        .then(pl.concat_str(head, tail1))
        .when(pl.col("k") == 1)
        .then(pl.concat_str(head, c1, c1, tail1))
        .otherwise(pl.concat_str(head, c2, c1, tail2))
    )
    return frame.select(out).to_series()


def query_texts(
    rng: np.random.Generator, intent: np.ndarray, leaf: np.ndarray, product: np.ndarray, cat: Catalog
) -> tuple[pl.Series, np.ndarray]:
    """Query text per query, and whether a typo was introduced."""
    n = intent.size
    specs = leaf_specs()
    leaf0 = np.maximum(leaf, 0)
    prod0 = np.maximum(product, 0)
    q_flat = [q for s in specs for q in s[3][1]]
    q_off = np.concatenate([[0], np.cumsum([len(s[3][1]) for s in specs])[:-1]])
    q_cnt = np.array([len(s[3][1]) for s in specs])
    leaf_q = pick(q_flat, q_off[leaf0] + uniform_below(rng, q_cnt[leaf0]))
    brand = pick(cat.brands, cat.brand[prod0]).str.to_lowercase()
    noun = pick([s[3][0].lower() for s in specs], cat.leaf[prod0])
    attr_flat = [a.lower() for s in specs for a in s[3][3]]
    attr_off = np.concatenate([[0], np.cumsum([len(s[3][3]) for s in specs])[:-1]])
    attr = pick(attr_flat, attr_off[cat.leaf[prod0]] + cat.attr[prod0])
    adj_flat = [a.lower() for t in TREE for a in TREE[t]["adjectives"]]
    adj = pick(adj_flat, cat.top[prod0] * 8 + cat.adj[prod0])
    top_l = pick([t.lower().replace(" & ", " ") for t in TREE], cat.top[prod0])
    median = np.array([s[3][2] for s in specs])[leaf0]
    cap = np.maximum(5, np.round(median * rng.uniform(0.6, 1.0, n) / 5) * 5).astype(np.int64)

    t_cat = render(
        CATEGORY_TEMPLATES,
        rng.integers(0, len(CATEGORY_TEMPLATES), n),
        q=leaf_q,
        who=pick(WHO, rng.integers(0, len(WHO), n)),
        color=pick(COLORS, rng.integers(0, len(COLORS), n)),
        year=pl.Series(rng.integers(2023, 2026, n)).cast(pl.String),
    )
    t_deal = render(DEAL_TEMPLATES, rng.integers(0, len(DEAL_TEMPLATES), n), q=leaf_q, n=pl.Series(cap).cast(pl.String))
    t_brand = render(BRAND_TEMPLATES, rng.integers(0, len(BRAND_TEMPLATES), n), brand=brand, top=top_l, noun=noun)
    t_prod = render(
        PRODUCT_TEMPLATES, rng.integers(0, len(PRODUCT_TEMPLATES), n), brand=brand, noun=noun, attr=attr, adj=adj
    )
    t_sup = pick(SUPPORT_QUERIES, rng.integers(0, len(SUPPORT_QUERIES), n))
    text = pl.select(
        pl.when(pl.Series(intent == 0))
        .then(t_prod)
        .when(pl.Series(intent == 1))
        .then(t_cat)
        .when(pl.Series(intent == 2))
        .then(t_brand)
        .when(pl.Series(intent == 3))
        .then(t_deal)
        .otherwise(t_sup)
    ).to_series()
    typo = rng.random(n) < 0.05
    text = _typo(rng, text, typo)
    case = rng.random(n)
    text = (
        pl.select(
            pl.when(pl.Series(case < 0.08))
            .then(text.str.to_titlecase())
            .when(pl.Series(case < 0.11))
            .then(text.str.to_uppercase())
            .when(pl.Series(case < 0.13))
            .then(pl.concat_str(text, pl.lit(" ")))
            .otherwise(text)
        )
        .to_series()
        .alias("query_text")
    )
    return text, typo
