"""Clean-table-shaped frames for tests and benchmarks, generated vectorised (numpy + Polars).

Every frame follows ``clean_schema(source)`` exactly, with the shop's category tree shape
('Top > Sub > Leaf'), event types view/click/add_to_cart/purchase, ratings 1–5, prices > 0 in USD.
``Drift`` injects the faults the anomaly checks must find (a price shift in one category, a vanished
event type, a volume change), so tests and the benchmark need neither the shop generator nor the
cleaning stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from governance.cleaning.schema import clean_schema
from governance.quarantine import conform

#: top category → (typical price, [(sub, [leaves])])
TAXONOMY: dict[str, tuple[float, list[tuple[str, list[str]]]]] = {
    "Electronics": (120.0, [("Audio", ["Headphones", "Speakers"]), ("Computers", ["Laptops", "Keyboards"])]),
    "Home & Kitchen": (45.0, [("Cookware", ["Pans", "Pots"]), ("Decor", ["Lamps", "Rugs"])]),
    "Fashion": (50.0, [("Men", ["Shirts", "Shoes"]), ("Women", ["Dresses", "Bags"])]),
    "Beauty": (25.0, [("Skincare", ["Serums", "Creams"]), ("Makeup", ["Lipstick", "Mascara"])]),
    "Sports & Outdoors": (60.0, [("Running", ["Shoes", "Watches"]), ("Camping", ["Tents", "Lamps"])]),
    "Toys": (30.0, [("Games", ["Board Games", "Puzzles"]), ("Building", ["Blocks", "Kits"])]),
    "Books": (15.0, [("Fiction", ["Thrillers", "Romance"]), ("Non-fiction", ["History", "Cooking"])]),
    "Grocery": (8.0, [("Pantry", ["Pasta", "Coffee"]), ("Snacks", ["Chips", "Chocolate"])]),
}
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
EVENT_TYPE_P = (0.70, 0.20, 0.07, 0.03)
DEVICES = ("web", "ios", "android")
COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU", "NL", "ES")
EPOCH_DAY = date(2026, 10, 1)


@dataclass
class Drift:
    """Faults to inject into one generated day."""

    #: multiply the prices of every product in these top categories
    price_factor: dict[str, float] = field(default_factory=dict)
    #: event types that vanish (their rows become views)
    drop_event_types: tuple[str, ...] = ()
    #: scale the day's volume
    volume_factor: float = 1.0
    #: fraction of device values nulled
    null_device_rate: float = 0.0


def _day_start_us(day: str | date) -> int:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1_000_000)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """``prefix`` + zero-padded number, built in Polars (fast for millions of rows)."""
    return pl.select(pl.format(f"{prefix}{{}}", pl.Series("id", numbers, dtype=pl.Int64).cast(pl.String)
                               .str.zfill(width))).to_series()


def _lineage(n: int, partition: str | None, source: str, ingested_us: int) -> dict[str, pl.Series | np.ndarray]:
    part = partition or "all"
    n_files = 4
    file_no = (np.arange(n) * n_files // max(n, 1)).astype(np.int64)
    files = pl.Series([f"landing/{source}/{part}/part-{i}.csv" for i in range(n_files)])
    hashes = pl.Series([f"{abs(hash((source, part, i))):016x}" for i in range(n_files)])
    return {
        "_source_file": files.gather(file_no),
        "_file_hash": hashes.gather(file_no),
        "_row_number": np.arange(n, dtype=np.int64),
        "_ingested_at": np.full(n, ingested_us, dtype=np.int64),
        "_partition": pl.Series([part]).gather(np.zeros(n, dtype=np.int64)),
    }


def _finish(source: str, columns: dict, n: int) -> pl.DataFrame:
    frame = pl.DataFrame({k: v for k, v in columns.items()}, nan_to_null=True) if n else pl.DataFrame()
    schema = clean_schema(source)
    for name, dtype in schema.items():  # flags the clean schema gained since: False, like cleaning fills them
        if dtype == pl.Boolean and name not in frame.columns and frame.width:
            frame = frame.with_columns(pl.lit(False).alias(name))
    if frame.width:
        casts = []
        for name, dtype in schema.items():
            if name in frame.columns and isinstance(dtype, pl.Datetime) and frame.schema[name] == pl.Int64:
                casts.append(pl.col(name).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
        if casts:
            frame = frame.with_columns(casts)
    return conform(frame, schema)


def products_frame(n: int = 2000, seed: int = 0, price_factor: dict[str, float] | None = None) -> pl.DataFrame:
    """A clean.products snapshot: ``n`` products spread over the taxonomy's leaves."""
    rng = np.random.default_rng(seed)
    leaves = [(top, sub, leaf, base) for top, (base, subs) in TAXONOMY.items() for sub, ls in subs for leaf in ls]
    leaf_idx = rng.integers(0, len(leaves), n)
    tops = np.array([leaf[0] for leaf in leaves], dtype=object)[leaf_idx]
    subs = np.array([leaf[1] for leaf in leaves], dtype=object)[leaf_idx]
    lvs = np.array([leaf[2] for leaf in leaves], dtype=object)[leaf_idx]
    base = np.array([leaf[3] for leaf in leaves])[leaf_idx]
    price = np.round(base * rng.lognormal(0, 0.5, n), 2).clip(0.5)
    for top, factor in (price_factor or {}).items():
        price = np.where(tops == top, np.round(price * factor, 2), price)
    brand = pl.Series([f"Brand{i % 97:02d}" for i in range(97)]).gather(rng.integers(0, 97, n))
    brand_missing = rng.random(n) < 0.02
    updated = _day_start_us(EPOCH_DAY) - rng.integers(0, 90 * 86_400_000_000, n)
    cols = {
        "product_id": _ids("p", np.arange(n), 6),
        "title": pl.Series(tops.astype(str)) + " " + pl.Series(lvs.astype(str)) + " #" + pl.Series(np.arange(n)).cast(
            pl.String),
        "description": pl.Series(["A fine product."] * n),
        "brand": brand.zip_with(pl.Series(~brand_missing), pl.Series([None] * n, dtype=pl.String)),
        "category_path": pl.Series(tops.astype(str)) + " > " + pl.Series(subs.astype(str)) + " > " + pl.Series(
            lvs.astype(str)),
        "price": price,
        "currency": pl.Series(["USD"] * n),
        "updated_at": updated,
        "category_l1": tops.astype(str),
        "category_l2": subs.astype(str),
        "category_l3": lvs.astype(str),
        "price_imputed": rng.random(n) < 0.01,
        "brand_missing": brand_missing,
        "is_current": np.ones(n, dtype=bool),
        **_lineage(n, None, "products", _day_start_us(EPOCH_DAY)),
    }
    return _finish("products", cols, n)


def users_frame(n: int = 1000, seed: int = 0) -> pl.DataFrame:
    """A clean.users snapshot (with PII columns filled, as the raw contract has them)."""
    rng = np.random.default_rng(seed + 1)
    ids = _ids("u", np.arange(n), 6)
    country = pl.Series(COUNTRIES).gather(rng.integers(0, len(COUNTRIES), n))
    missing = rng.random(n) < 0.03
    cols = {
        "user_id": ids,
        "email": ids + "@example.com",
        "phone": pl.Series(rng.integers(10**9, 10**10, n)).cast(pl.String),
        "name": "Person " + ids,
        "country": country.zip_with(pl.Series(~missing), pl.Series([None] * n, dtype=pl.String)),
        "signup_at": _day_start_us(EPOCH_DAY) - rng.integers(1, 800 * 86_400_000_000, n),
        "updated_at": np.full(n, _day_start_us(EPOCH_DAY), dtype=np.int64),
        "country_missing": missing,
        "signup_invalid": np.zeros(n, dtype=bool),
        "is_current": np.ones(n, dtype=bool),
        **_lineage(n, None, "users", _day_start_us(EPOCH_DAY)),
    }
    return _finish("users", cols, n)


def events_frame(day: str, n: int, products: pl.DataFrame, users: pl.DataFrame, seed: int = 0,
                 drift: Drift | None = None) -> pl.DataFrame:
    """One day of clean.events (``n`` rows before a volume drift), items and users drawn from the snapshots."""
    drift = drift or Drift()
    n = int(round(n * drift.volume_factor))
    rng = np.random.default_rng(seed + _day_start_us(day) // 86_400_000_000)
    start = _day_start_us(day)
    n_products = products.height
    # Zipf-like popularity over products, uniform over users
    weights = 1.0 / np.arange(1, n_products + 1) ** 0.8
    item_idx = np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(n)).clip(0, n_products - 1)
    etype = rng.choice(len(EVENT_TYPES), n, p=EVENT_TYPE_P)
    for dropped in drift.drop_event_types:
        etype = np.where(etype == EVENT_TYPES.index(dropped), 0, etype)
    carted = etype >= 2
    price = products["price"].to_numpy()[item_idx].copy()
    if drift.price_factor:
        tops = products["category_l1"].to_numpy()[item_idx]
        for top, factor in drift.price_factor.items():
            price = np.where(tops == top, price * factor, price)
    price = np.where(carted, np.round(price * rng.choice([1.0, 0.9, 0.8], n, p=[0.85, 0.1, 0.05]), 2), np.nan)
    quantity = np.where(carted, rng.integers(1, 4, n), -1)
    anonymous = rng.random(n) < 0.3
    user_idx = rng.integers(0, users.height, n)
    n_sessions = max(n // 8, 1)
    device = pl.Series(DEVICES).gather(rng.choice(3, n, p=[0.45, 0.32, 0.23]))
    if drift.null_device_rate:
        device = device.zip_with(pl.Series(rng.random(n) >= drift.null_device_rate), pl.Series([None] * n,
                                                                                                dtype=pl.String))
    event_no = np.arange(n, dtype=np.int64) + (start // 86_400_000_000) * 100_000_000
    cols = {
        "event_id": _ids("e", event_no, 12),
        "session_id": _ids("s", rng.integers(0, n_sessions, n) + (start // 86_400_000_000) * 10_000_000, 10),
        "user_id": users["user_id"].gather(user_idx).zip_with(pl.Series(~anonymous),
                                                              pl.Series([None] * n, dtype=pl.String)),
        "item_id": products["product_id"].gather(item_idx),
        "event_type": pl.Series(EVENT_TYPES).gather(etype),
        "event_time": start + np.sort(rng.integers(0, 86_400_000_000, n)),
        "price": price,
        "quantity": pl.Series(quantity).replace(-1, None),
        "currency": pl.Series(["USD", None]).gather(np.where(carted, 0, 1)),
        "device": device,
        "price_usd_converted": carted & (rng.random(n) < 0.01),
        "is_anonymous": anonymous,
        **_lineage(n, day, "events", start + 86_400_000_000 + 3_600_000_000),
    }
    return _finish("events", cols, n)


def reviews_frame(day: str, n: int, products: pl.DataFrame, users: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed + 7 + _day_start_us(day) // 86_400_000_000)
    start = _day_start_us(day)
    rating = rng.choice(5, n, p=[0.06, 0.07, 0.12, 0.3, 0.45]) + 1
    masked = (rng.random(n) < 0.01).astype(np.int32)
    texts = pl.Series(["Great value, would buy again.", "Broke after a week.", "Okay for the price.",
                       "Exactly as described, thanks [EMAIL] for the help.", ""]).gather(
        np.where(masked == 1, 3, rng.integers(0, 3, n)))
    cols = {
        "review_id": _ids("r", np.arange(n) + (start // 86_400_000_000) * 1_000_000, 10),
        "user_id": users["user_id"].gather(rng.integers(0, users.height, n)),
        "product_id": products["product_id"].gather(rng.integers(0, products.height, n)),
        "rating": rating,
        "title": pl.Series(["Good", "Bad", "Fine"]).gather(rng.integers(0, 3, n)),
        "text": texts,
        "review_time": start + np.sort(rng.integers(0, 86_400_000_000, n)),
        "pii_spans_masked": masked,
        "text_damaged": rng.random(n) < 0.002,
        "text_missing": np.zeros(n, dtype=bool),
        **_lineage(n, day, "reviews", start + 86_400_000_000),
    }
    return _finish("reviews", cols, n)


def queries_frame(day: str, n: int, users: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed + 11 + _day_start_us(day) // 86_400_000_000)
    start = _day_start_us(day)
    words = pl.Series(["headphones", "running shoes", "coffee", "lamp", "board games", "serum", "tent", "laptop"])
    unknown = rng.random(n) < 0.01
    cols = {
        "query_id": _ids("q", np.arange(n) + (start // 86_400_000_000) * 1_000_000, 10),
        "session_id": _ids("s", rng.integers(0, max(n // 3, 1), n), 10),
        "user_id": users["user_id"].gather(rng.integers(0, users.height, n)),
        "query_text": words.gather(rng.integers(0, len(words), n)),
        "query_time": start + np.sort(rng.integers(0, 86_400_000_000, n)),
        "results_count": rng.poisson(40, n),
        "pii_spans_masked": np.zeros(n, dtype=np.int32),
        "text_damaged": np.zeros(n, dtype=bool),
        "user_unknown": unknown,
        **_lineage(n, day, "queries", start + 86_400_000_000),
    }
    return _finish("queries", cols, n)


def quarantine_frame(source: str, day: str | None, counts: dict[str, int], stage: str = "cleaning") -> pl.DataFrame:
    """Quarantine rows (QUARANTINE_SCHEMA) with the given count per rule."""
    from governance.quarantine import QUARANTINE_SCHEMA

    rules = [r for r, k in counts.items() for _ in range(k)]
    n = len(rules)
    frame = pl.DataFrame({
        "source": [source] * n, "stage": [stage] * n, "rule": rules,
        "reason": [f"broke rule {r}" for r in rules], "file": ["landing/x.csv"] * n,
        "row_number": list(range(n)), "key": [f"k{i}" for i in range(n)],
        "record": ['{"email": "someone@example.com"}'] * n, "run_id": ["r"] * n, "partition": [day or "all"] * n,
        "quarantined_at": [datetime(2026, 10, 2, tzinfo=UTC)] * n,
    })
    return conform(frame, QUARANTINE_SCHEMA)


def days(start: str, count: int) -> list[str]:
    d0 = date.fromisoformat(start)
    return [(d0 + timedelta(days=i)).isoformat() for i in range(count)]
