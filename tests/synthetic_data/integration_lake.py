"""A fast, vectorised stand-in for the clean layer (clean.events/products/users/reviews/queries).

For tests and the benchmark only: it writes frames that follow ``clean_schema(source)`` exactly,
at any size (10M events in seconds), with known amounts of what integration must handle —
anonymous sessions, orphan users and items, product versions (price changes), sessions crossing
midnight, queries followed by clicks. The generated shop (``governance.shop``) is the realistic
source; this one exists so integration can be built and measured without the earlier stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from governance.cleaning.schema import clean_schema
from governance.quarantine import conform
from governance.storage import Lake

US = 1_000_000
DAY_US = 86_400 * US
EVENT_TYPES = np.array(["view", "click", "add_to_cart", "purchase"])
CATEGORIES = [
    ("Electronics", "Audio", "Headphones"), ("Electronics", "Audio", "Earbuds"),
    ("Electronics", "Computers", "Laptops"), ("Home & Kitchen", "Cookware", "Frying Pans"),
    ("Home & Kitchen", "Kitchen Appliances", "Blenders"), ("Fashion", "Shoes", "Sneakers"),
    ("Beauty", "Skin Care", "Moisturizers"), ("Books", "Fiction", "Thrillers"),
]
BRANDS = ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Soylent", "Hooli", "Stark"]


def _ids(prefix: str, idx: np.ndarray, width: int) -> pl.Series:
    return pl.select(pl.concat_str(pl.lit(prefix), pl.Series(idx.astype(np.int64)).cast(pl.String).str.zfill(width))
                     ).to_series()


def _ts(us: np.ndarray) -> pl.Series:
    return pl.Series(us.astype(np.int64)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


@dataclass
class SyntheticFacts:
    days: list[str]
    n_events: int
    orphan_item_events: int
    orphan_user_events: int
    anonymous_events: int
    n_users: int
    n_products: int


def _lineage(frame: pl.DataFrame, source: str, day: str | None, ingested: datetime) -> pl.DataFrame:
    folder = day or "2026-09-30"
    return frame.with_columns(
        pl.lit(f"{source}/{folder}/{source}.parquet").alias("_source_file"),
        pl.lit("0" * 64).alias("_file_hash"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row_number"),
        pl.lit(ingested).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
        pl.lit(day, pl.String).alias("_partition"),
    )


def write_synthetic_clean(lake: Lake, n_events: int, *, days: int = 7, start: date = date(2026, 10, 1),
                          seed: int = 0, anonymous_share: float = 0.05, orphan_share: float = 0.002,
                          session_length: float = 8.0, with_reviews: bool = True, with_queries: bool = True,
                          ) -> SyntheticFacts:
    rng = np.random.default_rng(seed)
    n_users = max(50, n_events // 60)
    n_products = int(min(20_000, max(300, n_events // 150)))
    t0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * US
    ingested = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=days + 1)

    # --- catalog: an initial version of every product, a price change for 5 % on day 2
    cat = rng.integers(0, len(CATEGORIES), n_products)
    brand = rng.integers(0, len(BRANDS), n_products)
    price = np.round(rng.lognormal(3.5, 0.8, n_products), 2)
    pid = _ids("p", np.arange(n_products), 7)
    paths = pl.Series([" > ".join(c) for c in CATEGORIES]).gather(cat)
    levels = [pl.Series([c[i] for c in CATEGORIES]).gather(cat) for i in range(3)]
    titles = pl.select(pl.concat_str(pl.Series(BRANDS).gather(brand), pl.lit(" "), levels[2], pl.lit(" "),
                                     pl.Series(np.arange(n_products)).cast(pl.String))).to_series()
    v1 = pl.DataFrame({"product_id": pid, "title": titles, "description": titles, "brand": pl.Series(BRANDS).gather(brand),
                       "category_path": paths, "price": price, "currency": "USD",
                       "updated_at": _ts(np.full(n_products, t0 - 30 * DAY_US)),
                       "category_l1": levels[0], "category_l2": levels[1], "category_l3": levels[2],
                       "price_imputed": False, "brand_missing": False})
    changed = np.flatnonzero(rng.random(n_products) < 0.05)
    v2 = v1[changed].with_columns((pl.col("price") * 1.1).round(2), pl.lit(t0 + 2 * DAY_US + 3600 * US)
                                  .cast(pl.Datetime("us", "UTC")).alias("updated_at"))
    products = _lineage(pl.concat([v1, v2]), "products", None, ingested)
    lake.write("clean", "products", conform(products, clean_schema("products")))
    price_at = {"base": price, "changed": changed}

    # --- users
    uid = _ids("u", np.arange(n_users), 7)
    users = pl.DataFrame({"user_id": uid, "email": pl.select(pl.concat_str(uid, pl.lit("@example.com"))).to_series(),
                          "phone": None, "name": None,
                          "country": pl.Series(["US", "DE", "GB", "FR"]).gather(rng.integers(0, 4, n_users)),
                          "signup_at": _ts(t0 - rng.integers(1, 400, n_users) * DAY_US),
                          "updated_at": None, "country_missing": False})
    lake.write("clean", "users", conform(_lineage(users, "users", None, ingested), clean_schema("users")))

    # --- sessions and events
    n_sessions = max(1, int(n_events / session_length))
    lengths = rng.geometric(1 / session_length, n_sessions)
    scale = n_events / lengths.sum()
    lengths = np.maximum(1, np.round(lengths * scale)).astype(np.int64)
    diff = n_events - lengths.sum()
    lengths[: abs(diff)] += np.sign(diff)
    lengths = np.maximum(lengths, 1)
    n = int(lengths.sum())
    start_us = t0 + rng.integers(0, days * DAY_US - 2 * 3600 * US, n_sessions)
    sess_of = np.repeat(np.arange(n_sessions), lengths)
    gaps = rng.exponential(40.0, n) * US
    first = np.zeros(n, dtype=bool)
    first[np.cumsum(lengths) - lengths] = True
    gaps[first] = 0
    csum = np.cumsum(gaps)
    offs = csum - np.repeat(csum[np.cumsum(lengths) - lengths], lengths)
    event_us = start_us[sess_of] + offs.astype(np.int64)
    zipf = 1.0 / np.arange(1, n_products + 1) ** 1.05
    zipf /= zipf.sum()
    session_product = rng.choice(n_products, n_sessions, p=zipf)
    own = rng.random(n) < 0.6
    prod = np.where(own, session_product[sess_of], rng.choice(n_products, n, p=zipf))
    etype = rng.choice(4, n, p=[0.7, 0.18, 0.08, 0.04])
    anon_session = rng.random(n_sessions) < anonymous_share
    session_user = rng.integers(0, n_users, n_sessions)
    user_idx = session_user[sess_of]
    anon = anon_session[sess_of]
    after_change = event_us >= t0 + 2 * DAY_US + 3600 * US
    unit_price = price_at["base"][prod] * np.where(np.isin(prod, price_at["changed"]) & after_change, 1.1, 1.0)
    priced = etype >= 2
    orphan_item = rng.random(n) < orphan_share
    orphan_user = (rng.random(n) < orphan_share) & ~anon
    item_ids = _ids("p", np.where(orphan_item, 9_000_000 + prod, prod), 7)
    user_ids = _ids("u", np.where(orphan_user, 9_000_000 + user_idx, user_idx), 7)
    events = pl.DataFrame({
        "event_id": _ids("e", np.arange(n), 10),
        "session_id": _ids("s", sess_of, 9),
        "user_id": user_ids,
        "item_id": item_ids,
        "event_type": pl.Series(EVENT_TYPES[etype]),
        "event_time": _ts(event_us),
        "price": np.where(priced, np.round(unit_price, 2), np.nan),
        "quantity": np.where(priced, rng.integers(1, 3, n), 0),
        "device": pl.Series(["web", "ios", "android"]).gather(rng.integers(0, 3, n)),
    }).with_columns(
        pl.when(pl.Series(anon)).then(None).otherwise(pl.col("user_id")).alias("user_id"),
        pl.col("price").fill_nan(None),
        pl.when(pl.col("quantity") > 0).then(pl.col("quantity")).alias("quantity"),
        pl.when(pl.Series(priced)).then(pl.lit("USD")).alias("currency"),
        pl.lit(False).alias("price_usd_converted"),
        pl.Series(anon).alias("is_anonymous"),
        pl.col("event_time").dt.date().cast(pl.String).alias("__day"),
    )
    schema = clean_schema("events")
    written = []
    for (day,), part in events.partition_by("__day", as_dict=True, maintain_order=True).items():
        lake.write("clean", "events", conform(_lineage(part, "events", day, ingested), schema), day)
        written.append(day)

    # --- queries: a third of sessions start with one (a second query half-way for some)
    if with_queries:
        qs = np.flatnonzero(rng.random(n_sessions) < 0.33)
        q_time = start_us[qs] - rng.integers(1, 30, qs.size) * US
        qdf = pl.DataFrame({
            "query_id": _ids("q", np.arange(qs.size), 9), "session_id": _ids("s", qs, 9),
            "user_id": pl.select(pl.when(pl.Series(anon_session[qs])).then(None)
                                 .otherwise(_ids("u", session_user[qs], 7))).to_series(),
            "query_text": pl.Series([c[2].lower() for c in CATEGORIES]).gather(cat[session_product[qs]]),
            "query_time": _ts(q_time), "results_count": rng.integers(0, 50, qs.size),
            "pii_spans_masked": 0, "text_damaged": False, "user_unknown": False,
        }).with_columns(pl.col("query_time").dt.date().cast(pl.String).alias("__day"))
        for (day,), part in qdf.partition_by("__day", as_dict=True, maintain_order=True).items():
            lake.write("clean", "queries", conform(_lineage(part, "queries", day, ingested), clean_schema("queries")),
                       day)

    # --- reviews: by purchasers (mostly) and a few who never bought
    if with_reviews:
        buys = np.flatnonzero((etype == 3) & ~anon & ~orphan_item & ~orphan_user)
        pick = buys[rng.random(buys.size) < 0.3]
        r_time = event_us[pick] + 3600 * US
        rdf = pl.DataFrame({
            "review_id": _ids("r", np.arange(pick.size), 8), "user_id": _ids("u", user_idx[pick], 7),
            "product_id": _ids("p", prod[pick], 7), "rating": rng.integers(1, 6, pick.size),
            "title": "ok", "text": "fine product", "review_time": _ts(r_time),
            "pii_spans_masked": 0, "text_damaged": False, "text_missing": False,
        }).with_columns(pl.col("review_time").dt.date().cast(pl.String).alias("__day"))
        for (day,), part in rdf.partition_by("__day", as_dict=True, maintain_order=True).items():
            lake.write("clean", "reviews", conform(_lineage(part, "reviews", day, ingested), clean_schema("reviews")),
                       day)

    return SyntheticFacts(days=sorted(written), n_events=n, orphan_item_events=int(orphan_item.sum()),
                          orphan_user_events=int((orphan_user & ~orphan_item).sum()),
                          anonymous_events=int((anon & ~orphan_item).sum()), n_users=n_users, n_products=n_products)


__all__ = ["SyntheticFacts", "write_synthetic_clean"]
