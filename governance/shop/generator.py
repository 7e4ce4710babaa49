"""`generate_shop`: the true clean shop, its landed (faulty) copy, and the truth that links them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from governance.shop.behaviour import DEVICES, EVENT_TYPES, INTENTS, Behaviour, simulate
from governance.shop.catalog import Catalog, build_catalog, clean_products, price_history
from governance.shop.config import SCHEMA_DRIFT, SOURCES, ShopConfig
from governance.shop.faults import Injector
from governance.shop.ids import make_ids
from governance.shop.inject import inject_events, inject_products, inject_queries, inject_reviews, inject_users
from governance.shop.landing import (
    SCHEMA_DRIFT_EXTRA,
    SCHEMA_DRIFT_RENAME,
    FilePlan,
    LandingSummary,
    write_files,
)
from governance.shop.people import Users, finalize_users, make_users
from governance.shop.texts import query_texts, review_texts, sentiment_of
from governance.shop.util import epoch_us, pick, to_ts
from governance.shop.vocab import COUNTRIES, FX_RATES

EVENT_TYPE = pl.Enum(list(EVENT_TYPES))
DEVICE = pl.Enum(list(DEVICES))
CURRENCY = pl.Enum(["USD", *FX_RATES])
KEYS = {
    "events": "event_id",
    "products": "product_id",
    "users": "user_id",
    "reviews": "review_id",
    "queries": "query_id",
}
FAULT_SCHEMA = {
    "source": pl.String,
    "file": pl.String,
    "row_number": pl.Int64,
    "key": pl.String,
    "fault": pl.String,
    "column": pl.String,
    "detail": pl.String,
}


@dataclass
class Shop:
    """The generated shop.

    clean:     the true tables (contract columns) plus `product_prices` and `categories`.
    landed:    per source, one row per landed record: contract columns (typed; faulty values
               included), `_rid`, `_file` (path relative to the landing root, Enum) and `_row_number`
               (1-based record index in that file). Rows are in `_rid` order (clean rows first, then
               appended bots/duplicates); `landed_in_file_order(source)` gives file order. Cells a file writes as other
               text ("$12.50", "n/a") are in `overrides`; broken UTF-8 is held as placeholder
               characters (see `faults.BROKEN_UTF8`) and becomes invalid bytes only on disk.
    overrides: per source, `_rid`, `column`, `raw`: the literal text written for that cell.
    faults:    one row per injected fault (source, file, row_number, key, fault, column, detail).
    truth:     products (true category, miscategorised/duplicate), reviews (true sentiment),
               queries (true intent and leaf category).
    files:     the landed files (file, source, format, ts_format, day, date, rows).
    eligible:  per (source, kind), how many rows could have got the fault (rate denominators).
    """

    config: ShopConfig
    clean: dict[str, pl.DataFrame]
    landed: dict[str, pl.DataFrame]
    overrides: dict[str, pl.DataFrame]
    faults: pl.DataFrame
    truth: dict[str, pl.DataFrame]
    files: pl.DataFrame
    eligible: pl.DataFrame
    schema_drift: dict | None = None
    stats: dict = field(default_factory=dict)
    #: per source, the permutation of `landed` rows into file order (file, then row number)
    file_order: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def landed_in_file_order(self, source: str) -> pl.DataFrame:
        return self.landed[source][self.file_order[source]]


def _rngs(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _user_col(user_ids: pl.Series, idx: np.ndarray, name: str = "user_id") -> pl.Series:
    return pl.select(
        pl.when(pl.Series(idx >= 0)).then(user_ids.gather(np.maximum(idx, 0))).otherwise(None).alias(name)
    ).to_series()


def _enum(values: tuple[str, ...], codes: np.ndarray, dtype: pl.Enum, name: str) -> pl.Series:
    return pl.Series(name, list(values)).gather(codes).cast(dtype)


def generate_shop(config: ShopConfig | None = None) -> Shop:
    """Generate the clean shop, inject faults into its landed copy, and record the truth."""
    config = config or ShopConfig()
    r_cat, r_users, r_beh, r_signup, r_text, r_query, r_faults = _rngs(config.seed, 7)
    ws, we = epoch_us(config.window_start), epoch_us(config.window_end)

    cat = build_catalog(config, r_cat)
    users = make_users(config, r_users)
    beh = simulate(config, r_beh, cat, users)
    first_activity = np.full(users.n, np.iinfo(np.int64).max)
    logged = beh.session_user >= 0
    np.minimum.at(first_activity, beh.session_user[logged], beh.session_start[logged])
    finalize_users(users, config, r_signup, first_activity)

    clean = _clean_tables(config, cat, users, beh, r_text, r_query)
    plan = FilePlan(config)
    ev_lut = plan.plan_events()
    pr_lut = plan.plan_versions("products", "parquet", "native", "native", cat.versions["day"].to_numpy())
    us_lut = plan.plan_versions("users", "jsonl", "epoch", "iso_offset", users.versions["day"].to_numpy())
    rv_lut = plan.plan_daily("reviews", "reviews", "csv", lambda d: "space")
    qu_lut = plan.plan_daily("queries", "queries", "jsonl", lambda d: "iso_z" if d % 2 == 0 else "epoch")

    rf = _rngs(int(r_faults.integers(0, 2**31)), 5)
    landed, truths, overrides, eligible, extras = {}, {}, {}, [], {}

    # events
    ev = clean["events"]
    t = beh.ev_t
    base = ev.with_columns(
        pl.Series("_rid", np.arange(ev.height)),
        pl.Series("_file", plan.events_file(ev_lut, t)).cast(pl.Int32),
        pl.Series("_order", t),
    )
    inj = Injector("events", config, rf[0], base, "event_id")
    inj.file_format = plan.formats_of(base["_file"].to_numpy())
    inj.text_ok = plan.text_ok(base["_file"].to_numpy())
    inject_events(inj, beh.n_sessions, users.n, users.ids, cat, lambda tt: plan.events_file(ev_lut, tt), (ws, we))
    landed["events"], truths["events"], overrides["events"] = inj.finish()
    eligible.append(inj.eligible)
    del base, inj, t
    # the per-event arrays are in the clean table now; free them before the heavy steps
    beh.ev_session = beh.ev_item = beh.ev_type = beh.ev_t = beh.ev_price = beh.ev_qty = None

    # products
    v = cat.versions
    pidx = v["product_idx"].to_numpy()
    cpr = clean["products"]
    base = pl.DataFrame(
        {
            "product_id": cat.ids.gather(pidx),
            "title": cat.title.gather(pidx),
            "description": cat.description.gather(pidx),
            "brand": cpr["brand"].gather(pidx),
            "category_path": cpr["category_path"].gather(pidx),
            "price": v["price"],
            "currency": pl.Series(["USD"] * v.height).cast(CURRENCY),
            "updated_at": to_ts(v["updated_at_us"].to_numpy()),
            "_rid": np.arange(v.height),
            "_file": pr_lut[v["day"].to_numpy()].astype(np.int32),
            "_order": pidx.astype(np.int64) * 4,
        }
    )
    inj = Injector("products", config, rf[1], base, "product_id")
    inj.file_format = plan.formats_of(base["_file"].to_numpy())
    inj.text_ok = plan.text_ok(base["_file"].to_numpy())
    extras["products"] = inject_products(inj, cat, pidx, cat.n)
    landed["products"], truths["products"], overrides["products"] = inj.finish()
    eligible.append(inj.eligible)

    # users
    uv = users.versions
    uidx = uv["user_idx"].to_numpy()
    cc = pl.Series([c[0] for c in COUNTRIES])
    signup = users.signup_us[uidx]
    base = pl.DataFrame(
        {
            "user_id": users.ids.gather(uidx),
            "email": uv["email"],
            "phone": uv["phone"],
            "name": clean["users"]["name"].gather(uidx),
            "country": cc.gather(uv["country"].to_numpy()),
            "signup_at": to_ts(signup),
            "updated_at": to_ts(uv["updated_at_us"].to_numpy()),
            "_rid": np.arange(uv.height),
            "_file": us_lut[uv["day"].to_numpy()].astype(np.int32),
            "_order": np.where(uv["kind"].to_numpy() == 0, signup, uv["updated_at_us"].to_numpy()),
        }
    )
    inj = Injector("users", config, rf[2], base, "user_id")
    inj.file_format = plan.formats_of(base["_file"].to_numpy())
    inj.text_ok = plan.text_ok(base["_file"].to_numpy())
    inject_users(inj)
    landed["users"], truths["users"], overrides["users"] = inj.finish()
    eligible.append(inj.eligible)

    # reviews
    rv = clean["reviews"]
    base = rv.with_columns(
        pl.Series("_rid", np.arange(rv.height)),
        pl.Series("_file", rv_lut[plan.day_of(beh.rv_t)]).cast(pl.Int32),
        pl.Series("_order", beh.rv_t),
    )
    inj = Injector("reviews", config, rf[3], base, "review_id")
    inj.file_format = plan.formats_of(base["_file"].to_numpy())
    inj.text_ok = plan.text_ok(base["_file"].to_numpy())
    extras["reviews"] = inject_reviews(
        inj, cat, beh.rv_item, clean["users"], rv.height, lambda tt: rv_lut[plan.day_of(tt)], we
    )
    landed["reviews"], truths["reviews"], overrides["reviews"] = inj.finish()
    eligible.append(inj.eligible)

    # queries
    qu = clean["queries"]
    base = qu.with_columns(
        pl.Series("_rid", np.arange(qu.height)),
        pl.Series("_file", qu_lut[plan.day_of(beh.q_t)]).cast(pl.Int32),
        pl.Series("_order", beh.q_t),
    )
    inj = Injector("queries", config, rf[4], base, "query_id")
    inj.file_format = plan.formats_of(base["_file"].to_numpy())
    inj.text_ok = plan.text_ok(base["_file"].to_numpy())
    inject_queries(inj, clean["users"])
    landed["queries"], truths["queries"], overrides["queries"] = inj.finish()
    eligible.append(inj.eligible)
    del base, inj

    files_all = plan.frame()
    paths = pl.Enum(files_all["file"].to_list())
    fault_frames = []
    file_ids = files_all["file_id"].to_list()
    file_order = {}
    for src in SOURCES:
        perm, row_number = _file_order(landed[src])
        file_order[src] = perm
        df = (
            landed[src]
            .drop("_order")
            .with_columns(
                pl.Series("_row_number", row_number),
                pl.col("_file").replace_strict(file_ids, files_all["file"].to_list(), return_dtype=paths),
            )
        )
        landed[src] = df
        rid = truths[src]["_rid"]  # `_rid` is the row position in `landed`
        tr = truths[src].with_columns(
            df["_file"].gather(rid), df["_row_number"].gather(rid), df[KEYS[src]].gather(rid).alias("key")
        )
        tr = _point_to_originals(tr, df, KEYS[src])
        fault_frames.append(
            tr.select(
                pl.lit(src).alias("source"),
                pl.col("_file").cast(pl.String).alias("file"),
                pl.col("_row_number").alias("row_number"),
                pl.col("key").cast(pl.String),
                "fault",
                "column",
                "detail",
            )
        )
    counts = pl.concat(
        [
            landed[s]
            .group_by("_file")
            .agg(pl.len().alias("rows"))
            .with_columns(pl.col("_file").cast(pl.String).alias("file"))
            .drop("_file")
            for s in SOURCES
        ]
    )
    files = files_all.join(counts, on="file", how="inner", maintain_order="left").drop("file_id")
    drift = None
    if plan.schema_drift_file is not None:
        dfile = plan.rows[plan.schema_drift_file]["file"]
        present = files.filter(pl.col("source") == "events")["file"]
        if dfile not in present:  # a tiny shop left the planned file empty: drift the first events file
            dfile = present[0]
        ((old, new),) = SCHEMA_DRIFT_RENAME.items()
        drift = {"file": dfile, "source": "events", "renamed": {old: new}, "extra_columns": [SCHEMA_DRIFT_EXTRA]}
        fault_frames.append(
            pl.DataFrame(
                {
                    "source": ["events", "events"],
                    "file": [dfile, dfile],
                    "row_number": [None, None],
                    "key": [None, None],
                    "fault": [SCHEMA_DRIFT, SCHEMA_DRIFT],
                    "column": [old, SCHEMA_DRIFT_EXTRA],
                    "detail": [
                        f"column {old} landed as '{new}' (file level)",
                        f"unknown extra column '{SCHEMA_DRIFT_EXTRA}' (file level)",
                    ],
                },
                schema=FAULT_SCHEMA,
            )
        )
    faults = pl.concat([f.cast(FAULT_SCHEMA) for f in fault_frames]).sort(
        ["source", "file", "row_number", "fault", "column"], nulls_last=False, maintain_order=True
    )
    elig = pl.DataFrame(
        [
            {"source": s, "kind": k, "rows": n}
            for s, e in zip(SOURCES, eligible, strict=True)
            for k, n in sorted(e.items())
        ],
        schema={"source": pl.String, "kind": pl.String, "rows": pl.Int64},
    )
    truth = _truth_tables(config, cat, users, beh, clean, landed, extras)
    return Shop(
        config=config,
        clean=clean,
        landed=landed,
        overrides=overrides,
        faults=faults,
        truth=truth,
        files=files,
        eligible=elig,
        schema_drift=drift,
        file_order=file_order,
        stats={
            "sessions": beh.n_sessions,
            "bot_sessions": int(
                faults.filter(pl.col("fault") == "bot_session")["detail"].str.split(":").list.first().n_unique()
            ),
        },
    )


DUPLICATE_KINDS = ("exact_duplicate", "key_duplicate")


def _point_to_originals(tr: pl.DataFrame, df: pl.DataFrame, key: str) -> pl.DataFrame:
    """Duplicate rows say where their original is: the first row with the same key in the file."""
    is_dup = pl.col("fault").is_in(DUPLICATE_KINDS)
    dk = tr.filter(is_dup).select("key", "_file").unique()
    if dk.height == 0:
        return tr
    first = (
        df.select(pl.col(key).alias("key"), "_file", "_row_number")
        .join(dk, on=["key", "_file"], how="semi")
        .group_by("key", "_file")
        .agg(pl.col("_row_number").min().alias("_first"))
    )
    return (
        tr.join(first, on=["key", "_file"], how="left")
        .with_columns(
            pl.when(is_dup)
            .then(pl.concat_str("detail", pl.lit("; original at row "), pl.col("_first").cast(pl.String)))
            .otherwise("detail")
            .alias("detail")
        )
        .drop("_first")
    )


def _file_order(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(permutation into file order, 1-based row number in its file) — by file, `_order`, `_rid`.

    One stable argsort of a packed (file, order) key: rows are in `_rid` order, so ties keep it.
    The frame itself is not reordered (a second copy of 10M events would double the memory).
    """
    f = df["_file"].to_numpy().astype(np.int64)
    o = df["_order"].to_numpy()
    o = o - o.min()
    obits = max(1, int(o.max()).bit_length())
    rid = df["_rid"].to_numpy()
    if int(f.max()).bit_length() + obits <= 62 and bool(np.all(np.diff(rid) > 0)):
        perm = np.argsort((f << obits) | o, kind="stable")
    else:  # pragma: no cover - wide key ranges
        perm = np.lexsort((rid, o, f))
    fs = f[perm]
    first = np.concatenate([[True], fs[1:] != fs[:-1]])
    start = np.maximum.accumulate(np.where(first, np.arange(fs.size), 0))
    row_number = np.empty(fs.size, dtype=np.int64)
    row_number[perm] = np.arange(fs.size) - start + 1
    return perm, row_number


def _clean_tables(
    config: ShopConfig, cat: Catalog, users: Users, beh: Behaviour, r_text, r_query
) -> dict[str, pl.DataFrame]:
    sess_ids = make_ids("session", np.arange(beh.n_sessions), config.seed)
    n_ev = beh.ev_t.size
    priced = ~np.isnan(beh.ev_price)
    ev_user = beh.session_user[beh.ev_session]
    events = pl.DataFrame(
        {
            "event_id": make_ids("event", np.arange(n_ev), config.seed),
            "session_id": sess_ids.gather(beh.ev_session),
            "user_id": _user_col(users.ids, ev_user),
            "item_id": cat.ids.gather(beh.ev_item),
            "event_type": _enum(EVENT_TYPES, beh.ev_type, EVENT_TYPE, "event_type"),
            "event_time": to_ts(beh.ev_t),
            "price": pl.Series(beh.ev_price).fill_nan(None),
            "quantity": pl.select(
                pl.when(pl.Series(priced)).then(pl.Series(beh.ev_qty.astype(np.int64))).otherwise(None)
            ).to_series(),
            "currency": pl.select(pl.when(pl.Series(priced)).then(pl.lit("USD")).otherwise(None))
            .to_series()
            .cast(CURRENCY),
            "device": _enum(DEVICES, beh.session_device[beh.ev_session], DEVICE, "device"),
        }
    )
    del ev_user
    title, text = review_texts(r_text, beh.rv_rating, cat, beh.rv_item)
    reviews = pl.DataFrame(
        {
            "review_id": make_ids("review", np.arange(beh.rv_t.size), config.seed),
            "user_id": _user_col(users.ids, beh.rv_user),
            "product_id": cat.ids.gather(beh.rv_item),
            "rating": beh.rv_rating.astype(np.int64),
            "title": title,
            "text": text,
            "review_time": to_ts(beh.rv_t),
        }
    )
    qtext, typo = query_texts(r_query, beh.q_intent, beh.q_leaf, beh.q_product, cat)
    results = np.where(typo & (r_query.random(typo.size) < 0.4), 0, beh.q_results)
    queries = pl.DataFrame(
        {
            "query_id": make_ids("query", np.arange(beh.q_t.size), config.seed),
            "session_id": sess_ids.gather(beh.q_session),
            "user_id": _user_col(users.ids, beh.session_user[beh.q_session]),
            "query_text": qtext,
            "query_time": to_ts(beh.q_t),
            "results_count": results.astype(np.int64),
        }
    )
    beh.q_typo = typo
    cats = cat.leaves.select("leaf_idx", "top", "sub", "leaf", "category_path", "noun", "median_price")
    return {
        "events": events,
        "products": clean_products(cat),
        "users": users.final,
        "reviews": reviews,
        "queries": queries,
        "product_prices": price_history(cat),
        "categories": cats,
    }


def _truth_tables(config, cat: Catalog, users: Users, beh: Behaviour, clean, landed, extras) -> dict[str, pl.DataFrame]:
    # products
    wrong = extras["products"]["wrong_leaf"]
    paths = cat.leaves["category_path"]
    true_path = cat.category_path()
    landed_path = pl.select(
        pl.when(pl.Series(wrong >= 0)).then(paths.gather(np.maximum(wrong, 0))).otherwise(true_path)
    ).to_series()
    prod = pl.DataFrame(
        {
            "product_id": cat.ids,
            "true_category_path": true_path,
            "landed_category_path": landed_path,
            "true_top_category": pick(cat.tops, cat.top),
            "brand": clean["products"]["brand"],
            "is_miscategorised": wrong >= 0,
            "is_duplicate": np.zeros(cat.n, dtype=bool),
            "duplicate_of": pl.Series([None] * cat.n, dtype=pl.String),
            "duplicate_kind": pl.Series([None] * cat.n, dtype=pl.String),
            "launched_in_window": cat.available_from != np.iinfo(np.int64).min,
        }
    )
    dup_frames = []
    for kind, (new_ids, orig) in extras["products"]["dup_of"].items():
        of = prod.join(
            pl.DataFrame({"duplicate_of": orig, "product_id_new": new_ids}),
            left_on="product_id",
            right_on="duplicate_of",
            how="inner",
            maintain_order="right",
        )
        dup_frames.append(
            of.select(
                pl.col("product_id_new").alias("product_id"),
                "true_category_path",
                "landed_category_path",
                "true_top_category",
                "brand",
                "is_miscategorised",
                pl.lit(True).alias("is_duplicate"),
                pl.col("product_id").alias("duplicate_of"),
                pl.lit(kind.removesuffix("_product")).alias("duplicate_kind"),
                "launched_in_window",
            )
        )
    products = pl.concat([prod, *dup_frames]) if dup_frames else prod

    # reviews: originals, then their near-duplicate copies
    rv = clean["reviews"]
    text_rating = extras["reviews"]["text_rating"]
    pev = beh.rv_purchase_event
    ev_ids = clean["events"]["event_id"]
    reviews = pl.DataFrame(
        {
            "review_id": rv["review_id"],
            "product_id": rv["product_id"],
            "user_id": rv["user_id"],
            "rating": rv["rating"],
            "true_sentiment": sentiment_of(beh.rv_rating),
            "text_sentiment": sentiment_of(text_rating),
            "is_contradiction": text_rating != beh.rv_rating,
            "is_near_duplicate": np.zeros(rv.height, dtype=bool),
            "duplicate_of": pl.Series([None] * rv.height, dtype=pl.String),
            "purchase_event_id": pl.select(
                pl.when(pl.Series(pev >= 0)).then(ev_ids.gather(np.maximum(pev, 0))).otherwise(None)
            ).to_series(),
        }
    )
    near = extras["reviews"].get("near")
    if near is not None:
        new_ids, orig = near
        copies = reviews.join(
            pl.DataFrame({"duplicate_of": orig, "copy_id": new_ids}),
            left_on="review_id",
            right_on="duplicate_of",
            how="inner",
            maintain_order="right",
        )
        copies = copies.with_columns(
            pl.col("review_id").alias("duplicate_of"),
            pl.col("copy_id").alias("review_id"),
            pl.lit(True).alias("is_near_duplicate"),
        ).select(reviews.columns)
        reviews = pl.concat([reviews, copies])

    # queries
    qu = clean["queries"]
    has_leaf = beh.q_leaf >= 0
    has_prod = beh.q_product >= 0
    queries = pl.DataFrame(
        {
            "query_id": qu["query_id"],
            "session_id": qu["session_id"],
            "user_id": qu["user_id"],
            "query_text": qu["query_text"],
            "true_intent": pick(INTENTS, beh.q_intent),
            "true_leaf_category": pl.select(
                pl.when(pl.Series(has_leaf)).then(paths.gather(np.maximum(beh.q_leaf, 0))).otherwise(None)
            ).to_series(),
            "true_top_category": pl.select(
                pl.when(pl.Series(has_leaf))
                .then(pick(cat.tops, cat.leaf_top[np.maximum(beh.q_leaf, 0)]))
                .otherwise(None)
            ).to_series(),
            "target_product_id": pl.select(
                pl.when(pl.Series(has_prod)).then(cat.ids.gather(np.maximum(beh.q_product, 0))).otherwise(None)
            ).to_series(),
            "target_brand": pl.select(
                pl.when(pl.Series(beh.q_brand >= 0)).then(pick(cat.brands, np.maximum(beh.q_brand, 0))).otherwise(None)
            ).to_series(),
            "has_typo": beh.q_typo,
        }
    )
    return {"products": products, "reviews": reviews, "queries": queries}


def fault_rates_observed(shop: Shop) -> pl.DataFrame:
    """Per (kind, source): eligible rows, injected faults (from the truth), rate and configured rate."""
    inj = shop.faults.group_by("source", "fault").agg(pl.len().alias("injected")).rename({"fault": "kind"})
    df = shop.eligible.join(inj, on=["source", "kind"], how="full", coalesce=True).with_columns(
        pl.col("injected").fill_null(0).cast(pl.Int64)
    )
    n_files = shop.files.height
    df = df.with_columns(
        pl.when(pl.col("kind") == SCHEMA_DRIFT)
        .then(pl.lit(n_files))
        .otherwise(pl.col("rows"))
        .cast(pl.Int64)
        .alias("rows")
    )
    df = df.with_columns(
        pl.when(pl.col("kind") == SCHEMA_DRIFT).then(1).otherwise(pl.col("injected")).alias("injected")
    )
    conf = [
        shop.config.rate(s, k) if k != SCHEMA_DRIFT else None for s, k in zip(df["source"], df["kind"], strict=True)
    ]
    return (
        df.with_columns(
            (pl.col("injected") / pl.col("rows")).alias("rate"),
            pl.Series("configured_rate", conf, dtype=pl.Float64),
        )
        .select("kind", "source", "rows", "injected", "rate", "configured_rate")
        .sort("kind", "source")
    )


def land_shop(shop: Shop, landing_root: Path, truth_root: Path) -> LandingSummary:
    """Write the landed files and the truth (faults, products, reviews, queries, manifest)."""
    landing_root, truth_root = Path(landing_root), Path(truth_root)
    n_files, n_bytes, rows = write_files(shop, landing_root)
    truth_root.mkdir(parents=True, exist_ok=True)
    shop.faults.write_parquet(truth_root / "faults.parquet", compression="zstd")
    for name, df in shop.truth.items():
        df.write_parquet(truth_root / f"{name}.parquet", compression="zstd")
    obs = fault_rates_observed(shop)
    manifest = {
        "generator": "governance.shop",
        "config": shop.config.as_dict(),
        "window": {"start": shop.config.window_start.isoformat(), "end_exclusive": shop.config.window_end.isoformat()},
        "clean_rows": {k: v.height for k, v in shop.clean.items()},
        "landed_rows": {s: rows.get(s, 0) for s in SOURCES},
        "files": {s: int(shop.files.filter(pl.col("source") == s).height) for s in SOURCES},
        "faults_total": shop.faults.height,
        "faults_by_kind": {k: n for k, n in shop.faults.group_by("fault").len().sort("fault").iter_rows()},
        "faults_by_source_kind": {
            f"{s}.{k}": n
            for s, k, n in shop.faults.group_by("source", "fault").len().sort("source", "fault").iter_rows()
        },
        "fault_rates": [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in obs.iter_rows(named=True)
        ],
        "schema_drift": shop.schema_drift,
        "truth_files": ["faults.parquet", *[f"{n}.parquet" for n in shop.truth], "manifest.json"],
    }
    (truth_root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return LandingSummary(
        landing_root=landing_root,
        truth_root=truth_root,
        files=n_files,
        bytes=n_bytes,
        rows_by_source=rows,
        faults=shop.faults.height,
        schema_drift_file=shop.schema_drift["file"] if shop.schema_drift else None,
        manifest=manifest,
    )
