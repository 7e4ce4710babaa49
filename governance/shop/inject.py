"""Which faults each source gets, and how each is made (the generic mechanics live in `faults`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from governance.shop.catalog import Catalog, title_parts
from governance.shop.faults import Injector, choose_other, fake_contacts, text_faults, text_of
from governance.shop.ids import make_ids
from governance.shop.texts import review_texts
from governance.shop.util import US, concat, exact_count, pick, render, to_ts

DEVICES = ("web", "ios", "android")
BOT_MIN_EVENTS = 200


def _all(inj: Injector) -> np.ndarray:
    return np.ones(inj.n, dtype=bool)


def _not_null(inj: Injector, col: str) -> np.ndarray:
    return inj.cols[col].is_not_null().to_numpy()


def _contacts(inj: Injector, users_final: pl.DataFrame, user_col: str) -> tuple[pl.Series, pl.Series]:
    """Each row's user's email and phone (made-up ones for anonymous or unknown users)."""
    looked = pl.DataFrame({"user_id": inj.cols[user_col]}).join(
        users_final.select("user_id", "email", "phone"), on="user_id", how="left", maintain_order="left"
    )
    fe, fp = fake_contacts(inj.rng, inj.n)
    return (
        pl.select(pl.coalesce(looked["email"], fe)).to_series(),
        pl.select(pl.coalesce(looked["phone"], fp)).to_series(),
    )


# ---------------------------------------------------------------------------------------------------
def inject_events(
    inj: Injector,
    n_sessions: int,
    n_users: int,
    user_ids: pl.Series,
    cat: Catalog,
    file_of: Callable[[np.ndarray], np.ndarray],
    window: tuple[int, int],
) -> None:
    every = _all(inj)
    priced = _not_null(inj, "price")
    inj.nulls("null_required", {"session_id": every, "item_id": every, "event_type": every, "event_time": every})
    inj.nulls("null_optional", {"device": every, "price": priced, "quantity": priced, "currency": priced})
    inj.number_as_string({"price": priced, "quantity": priced})
    inj.unparsable({"price": priced, "quantity": priced, "event_time": every})
    inj.prices(priced)
    inj.timestamps({"event_time": every})
    rows = inj.select("non_positive_quantity", {"quantity": priced}).get("quantity")
    if rows is not None:
        v = inj.get("quantity", rows)
        inj.put("quantity", rows, pl.Series(np.array([0, -1, -2, -5])[inj.rng.integers(0, 4, rows.size)]))
        inj.record("non_positive_quantity", rows, "quantity", concat("true: ", text_of(v)))
    inj.unknown_refs("unknown_user", "user_id", "user", _not_null(inj, "user_id"))
    inj.unknown_refs("unknown_item", "item_id", "product", every)
    _bots(inj, n_sessions, n_users, user_ids, cat, file_of, window)

    def resend(copy: pl.DataFrame) -> tuple[pl.DataFrame, str, pl.Series]:
        k = copy.height
        later = inj.rng.integers(1, 600, k)
        by_time = inj.rng.random(k) < 0.5
        old_dev = copy["device"].cast(pl.String)
        dev_idx = (
            pl.Series(old_dev).replace_strict({d: i for i, d in enumerate(DEVICES)}, return_dtype=pl.Int64).to_numpy()
        )
        new_dev = pick(DEVICES, choose_other(inj.rng, dev_idx, 3))
        copy = copy.with_columns(
            pl.when(pl.Series(by_time))
            .then(pl.col("event_time") + pl.duration(seconds=pl.Series(later)))
            .otherwise(pl.col("event_time"))
            .alias("event_time"),
            pl.when(pl.Series(by_time))
            .then(pl.col("device"))
            .otherwise(new_dev.cast(copy["device"].dtype))
            .alias("device"),
        )
        detail = pl.select(
            pl.when(pl.Series(by_time))
            .then(
                pl.concat_str(
                    pl.lit("re-sent copy of "),
                    copy["event_id"],
                    pl.lit("; event_time +"),
                    pl.Series(later).cast(pl.String),
                    pl.lit("s"),
                )
            )
            .otherwise(
                pl.concat_str(
                    pl.lit("re-sent copy of "), copy["event_id"], pl.lit("; device "), old_dev, pl.lit(" -> "), new_dev
                )
            )
        ).to_series()
        return copy, pick(("device", "event_time"), by_time.astype(np.int64)), detail

    inj.duplicates(lambda k: inj.rng.integers(1, 900, k) * US, resend)


def _bots(
    inj: Injector,
    n_sessions: int,
    n_users: int,
    user_ids: pl.Series,
    cat: Catalog,
    file_of: Callable[[np.ndarray], np.ndarray],
    window: tuple[int, int],
) -> None:
    """Crawler sessions: hundreds of views of consecutive catalog items, a fraction of a second apart."""
    kind = "bot_session"
    target = exact_count(inj.rate(kind), inj.n)
    inj.eligible[kind] = inj.n
    if target == 0:
        return
    n_bots = max(1, target // 250)
    size = np.full(n_bots, max(BOT_MIN_EVENTS, target // n_bots))
    size[: max(0, target - size.sum())] += 1
    total = int(size.sum())
    rng = inj.rng
    ws, we = window
    gaps_ms = np.maximum(1, rng.exponential(350, total)).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    sess = np.repeat(np.arange(n_bots), size)
    csum = np.cumsum(gaps_ms)
    offset_ms = csum - np.repeat(csum[starts], size)
    dur_ms = offset_ms[np.cumsum(size) - 1]
    t0 = ws + (rng.random(n_bots) * (we - ws - (dur_ms + 60_000) * 1000)).astype(np.int64) // 1000 * 1000
    t = t0[sess] + offset_ms * 1000
    first_item = rng.integers(0, cat.n, n_bots)
    item = (first_item[sess] + np.arange(total) - np.repeat(starts, size)) % cat.n
    logged = rng.random(n_bots) < 0.3
    bot_user = np.where(logged, rng.integers(0, n_users, n_bots), -1)
    sid = make_ids("session", n_sessions + np.arange(n_bots), inj.config.seed)
    schema = inj.base.schema
    users = pl.select(
        pl.when(pl.Series(bot_user[sess] >= 0)).then(user_ids.gather(np.maximum(bot_user[sess], 0))).otherwise(None)
    ).to_series()
    frame = pl.DataFrame(
        {
            "event_id": make_ids("event", inj.base.height + np.arange(total), inj.config.seed),
            "session_id": sid.gather(sess),
            "user_id": users,
            "item_id": cat.ids.gather(item),
            "event_type": pl.Series(["view"] * total).cast(schema["event_type"]),
            "event_time": to_ts(t),
            "price": pl.Series([None] * total, dtype=pl.Float64),
            "quantity": pl.Series([None] * total, dtype=pl.Int64),
            "currency": pl.Series([None] * total, dtype=schema["currency"]),
            "device": pl.Series(["web"] * total).cast(schema["device"]),
            "_rid": np.zeros(total, dtype=np.int64),
            "_file": file_of(t).astype(np.int32),
            "_order": t,
        }
    )
    secs = pl.Series(np.round(dur_ms / 1000).astype(np.int64)).cast(pl.String)
    detail = concat(
        "bot session ",
        sid.gather(sess),
        ": ",
        pl.Series(size[sess]).cast(pl.String),
        " views in ",
        secs.gather(sess),
        "s",
    )
    inj.append(kind, frame, detail, column=None)


# ---------------------------------------------------------------------------------------------------
def inject_reviews(
    inj: Injector,
    cat: Catalog,
    items: np.ndarray,
    users_final: pl.DataFrame,
    n_reviews: int,
    file_of: Callable[[np.ndarray], np.ndarray],
    window_end: int,
) -> dict[str, np.ndarray]:
    """Returns per-row truth extras: text rating, contradiction and near-duplicate source."""
    every = _all(inj)
    rating = inj.cols["rating"].to_numpy()
    text_rating = rating.copy()
    rows = inj.select("rating_text_contradiction", {"text": rating != 3}, joint=("title",)).get("text")
    if rows is not None:
        opposite = np.where(rating[rows] >= 4, 1, 5)
        opposite = np.where((rating[rows] == 2) & (inj.rng.random(rows.size) < 0.5), 4, opposite)
        title, text = review_texts(inj.rng, opposite, cat, items[rows])
        inj.put("text", rows, text)
        inj.put("title", rows, title)
        text_rating[rows] = opposite
        inj.record(
            "rating_text_contradiction",
            rows,
            "text",
            concat(
                "rating ",
                pl.Series(rating[rows]).cast(pl.String),
                ", text written for ",
                pl.Series(opposite).cast(pl.String),
                " stars",
            ),
        )
    inj.nulls("null_required", {"product_id": every, "rating": every, "review_time": every})
    inj.nulls("null_optional", {"user_id": every, "title": every, "text": every})
    inj.number_as_string({"rating": every})
    inj.unparsable({"rating": every, "review_time": every})
    inj.timestamps({"review_time": every})
    rows = inj.select("rating_out_of_range", {"rating": every}).get("rating")
    if rows is not None:
        v = inj.get("rating", rows)
        bad = np.array([0, 6, 7, 10, -1, 11, 50])[inj.rng.integers(0, 7, rows.size)]
        inj.put("rating", rows, pl.Series(bad))
        inj.record("rating_out_of_range", rows, "rating", concat("true: ", text_of(v)))
    inj.unknown_refs("unknown_user", "user_id", "user", _not_null(inj, "user_id"))
    inj.unknown_refs("unknown_item", "product_id", "product", every)
    emails, phones = _contacts(inj, users_final, "user_id")
    text_faults(inj, "text", emails, phones, query=False)

    # near duplicates: the same user and product again, near-identical text, another review_id
    kind = "near_duplicate_review"
    inj.eligible[kind] = inj.n
    free = np.flatnonzero(~inj.faulty)
    k = min(exact_count(inj.rate(kind), inj.n), free.size)
    near = None
    if k:
        rows = np.sort(inj.rng.choice(free, k, replace=False))
        inj.faulty[rows] = True
        copy = inj.current(rows)
        t = copy["review_time"].dt.epoch("us").to_numpy()
        new_t = np.minimum(t + inj.rng.integers(60, 2 * 86_400, k) * US, window_end - US) // US * US
        new_t = np.maximum(new_t, t)
        style = inj.rng.integers(0, 4, k)
        txt = copy["text"]
        new_text = pl.select(
            pl.when(pl.Series(style == 0))
            .then(txt.str.to_lowercase())
            .when(pl.Series(style == 1))
            .then(txt.str.replace_all(". ", ".  ", literal=True))
            .when(pl.Series(style == 2))
            .then(pl.concat_str(txt.str.strip_chars_end(".!"), pl.lit("!!")))
            .otherwise(pl.concat_str(pl.lit("UPDATE: "), txt))
        ).to_series()
        copy = copy.with_columns(
            make_ids("review", n_reviews + np.arange(k), inj.config.seed).alias("review_id"),
            new_text.alias("text"),
            to_ts(new_t).alias("review_time"),
            pl.Series("_file", file_of(new_t)).cast(pl.Int32),
            pl.Series("_order", new_t),
        )
        orig = inj.get("review_id", rows)
        inj.append(kind, copy, concat("near duplicate of ", orig), column="text")
        near = (copy["review_id"], orig)

    def resend(copy: pl.DataFrame) -> tuple[pl.DataFrame, str, pl.Series]:
        k = copy.height
        later = inj.rng.integers(60, 6 * 3600, k)
        by_time = inj.rng.random(k) < 0.5
        old_title = copy["title"]
        new_title = pl.select(
            pl.when(pl.Series(inj.rng.random(k) < 0.5))
            .then(old_title.str.to_uppercase())
            .otherwise(pl.concat_str(old_title, pl.lit("!!")))
        ).to_series()
        copy = copy.with_columns(
            pl.when(pl.Series(by_time))
            .then(pl.col("review_time") + pl.duration(seconds=pl.Series(later)))
            .otherwise(pl.col("review_time"))
            .alias("review_time"),
            pl.when(pl.Series(by_time)).then(pl.col("title")).otherwise(new_title).alias("title"),
        )
        detail = pl.select(
            pl.when(pl.Series(by_time))
            .then(
                pl.concat_str(
                    pl.lit("re-sent copy of "),
                    copy["review_id"],
                    pl.lit("; review_time +"),
                    pl.Series(later).cast(pl.String),
                    pl.lit("s"),
                )
            )
            .otherwise(
                pl.concat_str(
                    pl.lit("re-sent copy of "),
                    copy["review_id"],
                    pl.lit("; title '"),
                    old_title,
                    pl.lit("' -> '"),
                    new_title,
                    pl.lit("'"),
                )
            )
        ).to_series()
        return copy, pick(("title", "review_time"), by_time.astype(np.int64)), detail

    inj.duplicates(lambda k: inj.rng.integers(60, 3 * 3600, k) * US, resend)
    return {"text_rating": text_rating, "near": near}


# ---------------------------------------------------------------------------------------------------
def inject_queries(inj: Injector, users_final: pl.DataFrame) -> None:
    every = _all(inj)
    inj.nulls("null_required", {"session_id": every, "query_text": every, "query_time": every})
    inj.nulls("null_optional", {"results_count": every})
    inj.number_as_string({"results_count": every})
    inj.unparsable({"results_count": every, "query_time": every})
    inj.timestamps({"query_time": every})
    inj.unknown_refs("unknown_user", "user_id", "user", _not_null(inj, "user_id"))
    emails, phones = _contacts(inj, users_final, "user_id")
    text_faults(inj, "query_text", emails, phones, query=True)

    def resend(copy: pl.DataFrame) -> tuple[pl.DataFrame, str, pl.Series]:
        k = copy.height
        later = inj.rng.integers(1, 30, k)
        by_time = inj.rng.random(k) < 0.5
        old = copy["results_count"]
        new = old + pl.Series(inj.rng.integers(1, 50, k))
        copy = copy.with_columns(
            pl.when(pl.Series(by_time))
            .then(pl.col("query_time") + pl.duration(seconds=pl.Series(later)))
            .otherwise(pl.col("query_time"))
            .alias("query_time"),
            pl.when(pl.Series(by_time)).then(pl.col("results_count")).otherwise(new).alias("results_count"),
        )
        detail = pl.select(
            pl.when(pl.Series(by_time))
            .then(
                pl.concat_str(
                    pl.lit("re-sent copy of "),
                    copy["query_id"],
                    pl.lit("; query_time +"),
                    pl.Series(later).cast(pl.String),
                    pl.lit("s"),
                )
            )
            .otherwise(
                pl.concat_str(
                    pl.lit("re-sent copy of "),
                    copy["query_id"],
                    pl.lit("; results_count "),
                    old.cast(pl.String),
                    pl.lit(" -> "),
                    new.cast(pl.String),
                )
            )
        ).to_series()
        return copy, pick(("results_count", "query_time"), by_time.astype(np.int64)), detail

    inj.duplicates(lambda k: inj.rng.integers(1, 60, k) * US, resend)


# ---------------------------------------------------------------------------------------------------
def inject_users(inj: Injector) -> None:
    every = _all(inj)
    inj.nulls("null_required", {"signup_at": every})
    inj.nulls("null_optional", {"email": every, "phone": every, "name": every, "country": every, "updated_at": every})
    inj.unparsable({"signup_at": every, "updated_at": every})
    inj.timestamps({"signup_at": every})

    def resend(copy: pl.DataFrame) -> tuple[pl.DataFrame, str, pl.Series]:
        k = copy.height
        later = inj.rng.integers(60, 86_400, k)
        by_email = inj.rng.random(k) < 0.5
        new_email = copy["email"].str.to_uppercase()
        new_phone = copy["phone"].str.replace_all(" ", "", literal=True)
        copy = copy.with_columns(
            (pl.col("updated_at") + pl.duration(seconds=pl.Series(later))).alias("updated_at"),
            pl.when(pl.Series(by_email)).then(new_email).otherwise(pl.col("email")).alias("email"),
            pl.when(pl.Series(by_email)).then(pl.col("phone")).otherwise(new_phone).alias("phone"),
        )
        detail = pl.select(
            pl.when(pl.Series(by_email))
            .then(
                pl.concat_str(
                    pl.lit("second row for "),
                    copy["user_id"],
                    pl.lit("; updated_at +"),
                    pl.Series(later).cast(pl.String),
                    pl.lit("s; email upper-cased"),
                )
            )
            .otherwise(
                pl.concat_str(
                    pl.lit("second row for "),
                    copy["user_id"],
                    pl.lit("; updated_at +"),
                    pl.Series(later).cast(pl.String),
                    pl.lit("s; phone without spaces"),
                )
            )
        ).to_series()
        return copy, pick(("phone", "email"), by_email.astype(np.int64)), detail

    inj.duplicates(lambda k: np.ones(k, dtype=np.int64), resend, kinds=("key_duplicate",))


# ---------------------------------------------------------------------------------------------------
CATEGORY_STYLES = 6
BRAND_STYLES = 5
REWORD_TEMPLATES = (
    "{adj} {noun} by {brand}, {attr}, {variant}",
    "{brand} {noun} - {adj} - {attr} - {variant}",
    "{brand} {attr} {adj} {noun} {variant}",
    "{noun} {attr} {variant} | {brand}",
)


def non_canonical_category(path: pl.Series, style: np.ndarray) -> pl.Series:
    st = pl.Series(style)
    return pl.select(
        pl.when(st == 0)
        .then(path.str.to_lowercase().str.replace_all(" > ", ">", literal=True))
        .when(st == 1)
        .then(path.str.replace_all(" > ", " / ", literal=True))
        .when(st == 2)
        .then(pl.concat_str(path.str.replace_all(" > ", "  >  ", literal=True), pl.lit(" ")))
        .when(st == 3)
        .then(path.str.to_uppercase())
        .when(st == 4)
        .then(pl.concat_str(path, pl.lit(" >")))
        .otherwise(path.str.replace_all(" > ", "|", literal=True))
    ).to_series()


def non_canonical_brand(brand: pl.Series, style: np.ndarray) -> pl.Series:
    st = pl.Series(style)
    return pl.select(
        pl.when(st == 0)
        .then(pl.concat_str(brand.str.to_uppercase(), pl.lit(" ")))
        .when(st == 1)
        .then(brand.str.to_lowercase())
        .when(st == 2)
        .then(pl.concat_str(pl.lit(" "), brand))
        .when(st == 3)
        .then(pl.concat_str(brand, pl.lit(" Inc.")))
        .otherwise(brand.str.to_uppercase())
    ).to_series()


def near_title(title: pl.Series, style: np.ndarray) -> pl.Series:
    """The same title up to case, whitespace and punctuation."""
    st = pl.Series(style)
    return pl.select(
        pl.when(st == 0)
        .then(title.str.to_uppercase())
        .when(st == 1)
        .then(title.str.to_lowercase())
        .when(st == 2)
        .then(title.str.replace_all(" ", "  ", literal=True))
        .when(st == 3)
        .then(title.str.replace_all(r"[-,()]", "").str.replace_all(r"\s+", " "))
        .when(st == 4)
        .then(pl.concat_str(title, pl.lit(".")))
        .otherwise(pl.concat_str(pl.lit(" "), title, pl.lit(" ")))
    ).to_series()


def inject_products(inj: Injector, cat: Catalog, pidx: np.ndarray, n_products: int) -> dict:
    """Returns truth extras: miscategorised products and duplicate listings."""
    every = _all(inj)
    rng = inj.rng
    # miscategorised: the product's text is of one top category, its category_path of another
    kind = "miscategorised_product"
    inj.eligible[kind] = inj.n
    # whole products (all their landed rows), picked so that the number of rows hits the rate exactly
    target = exact_count(inj.rate(kind), inj.n)
    per_product = np.bincount(pidx, minlength=cat.n)
    perm = rng.permutation(cat.n)
    perm = perm[per_product[perm] > 0]
    take = np.cumsum(per_product[perm]) <= target
    chosen = perm[take]
    singles = perm[~take][per_product[perm[~take]] == 1]
    mis_products = np.sort(np.concatenate([chosen, singles[: max(0, target - int(per_product[chosen].sum()))]]))
    n_mis = mis_products.size
    wrong_leaf = np.full(cat.n, -1)
    if n_mis:
        n_leaves = len(cat.leaf_top)
        cand = rng.integers(0, n_leaves, (n_mis, 16))
        ok = cat.leaf_top[cand] != cat.top[mis_products][:, None]
        wrong_leaf[mis_products] = cand[np.arange(n_mis), ok.argmax(axis=1)]
        rows = np.flatnonzero(np.isin(pidx, mis_products))
        inj.taken["category_path"][rows] = True
        inj.faulty[rows] = True
        true_path = inj.get("category_path", rows)
        inj.put("category_path", rows, cat.leaves["category_path"].gather(wrong_leaf[pidx[rows]]))
        inj.record(kind, rows, "category_path", concat("true: ", true_path))

    inj.nulls("null_required", {"title": every, "category_path": every})
    inj.nulls("null_optional", {"description": every, "brand": every, "price": every, "updated_at": every})
    inj.number_as_string({"price": every})
    inj.unparsable({"price": every, "updated_at": every})
    inj.prices(every)
    inj.timestamps({"updated_at": every})
    for kind, col, fn, styles in (
        ("non_canonical_brand", "brand", non_canonical_brand, BRAND_STYLES),
        ("non_canonical_category", "category_path", non_canonical_category, CATEGORY_STYLES),
    ):
        rows = inj.select(kind, {col: every}).get(col)
        if rows is not None:
            v = inj.get(col, rows)
            inj.put(col, rows, fn(v, rng.integers(0, styles, rows.size)))
            inj.record(kind, rows, col, concat("true: ", v))

    # duplicate listings under new product ids, next to the original row
    dup_of = {}
    next_id = n_products
    first_row = np.zeros(inj.n, dtype=bool)
    first_row[np.unique(pidx, return_index=True)[1]] = True
    for kind in ("near_duplicate_product", "reworded_duplicate_product"):
        inj.eligible[kind] = inj.n
        free = np.flatnonzero(~inj.faulty & first_row)
        k = min(exact_count(inj.rate(kind), inj.n), free.size)
        if k == 0:
            continue
        rows = np.sort(rng.choice(free, k, replace=False))
        inj.faulty[rows] = True
        copy = inj.current(rows)
        new_ids = make_ids("product", next_id + np.arange(k), inj.config.seed)
        next_id += k
        if kind == "near_duplicate_product":
            title = near_title(copy["title"], rng.integers(0, 6, k))
            desc = copy["description"]
        else:
            parts = title_parts(cat, pidx[rows])
            title = render(REWORD_TEMPLATES, rng.integers(0, len(REWORD_TEMPLATES), k), **parts)
            d = copy["description"]
            desc = pl.select(
                pl.concat_str(
                    d.str.replace("Ideal for", "Great for", literal=True)
                    .str.replace("comes with", "ships with", literal=True)
                    .str.replace("features", "offers", literal=True),
                    pl.lit(" Free returns within 30 days."),
                )
            ).to_series()
        copy = copy.with_columns(
            new_ids.alias("product_id"), title.alias("title"), desc.alias("description"), pl.col("_order") + 1
        )
        orig = inj.get("product_id", rows)
        inj.append(kind, copy, concat("duplicate of ", orig, ": '", text_of(copy["title"], 50), "'"), column="title")
        dup_of[kind] = (new_ids, orig)

    def resend(copy: pl.DataFrame) -> tuple[pl.DataFrame, str, pl.Series]:
        k = copy.height
        later = rng.integers(60, 6 * 3600, k)
        new_title = copy["title"].str.replace_all(" ", "  ", literal=True)
        copy = copy.with_columns(
            (pl.col("updated_at") + pl.duration(seconds=pl.Series(later))).alias("updated_at"), new_title.alias("title")
        )
        detail = concat(
            "second row for ",
            copy["product_id"],
            "; updated_at +",
            pl.Series(later).cast(pl.String),
            "s; title re-spaced",
        )
        return copy, "title", detail

    inj.duplicates(lambda k: np.full(k, 2, dtype=np.int64), resend, kinds=("key_duplicate",))
    return {"wrong_leaf": wrong_leaf, "dup_of": dup_of}
