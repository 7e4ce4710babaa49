"""Baselines for `bench/clean.py`: the events cleaning rules written in pandas 3 and in DuckDB SQL.

Both implement the SAME rules as `governance.cleaning.rules.EVENTS_RULES`, in the same order, with
the engine's guarantees: a row leaves through the first quarantine rule that matches it (rules that
look at groups — duplicates, sessions, price spreads — see only the rows earlier rules kept), every
quarantined row is kept whole (JSON record) with its rule and reason, and every value a fix changes
is audited with its original. Outputs are the clean table, the quarantine and the audit as Parquet
(zstd level 1, as the lake writes them).

The rule vocabulary (event types, synonyms, currency rates, the shop's opening date, the MAD scale)
is imported from the rules module; the numeric defaults of the rule blocks (bot thresholds, outlier
k / floor / minimum group) are repeated here, and `bench/clean.py` fails loudly when the counts of
the three implementations drift apart.

Three details are needed for the results to agree exactly rather than "almost":
  * medians: Polars interpolates an even-sized median as ``lo + (hi - lo) * 0.5``; pandas and
    DuckDB's ``median`` compute ``(lo + hi) / 2``, which differs in the last bit for ~1/3 of pairs.
    Both baselines compute medians the Polars way (`_median*` / `_sql_median`).
  * logarithms: numpy's SIMD ``log`` differs from libm's in the last bit for ~0.1% of inputs;
    pandas uses ``pyarrow.compute.ln`` (libm, as Polars and DuckDB do).
  * rounding: Polars rounds half to even (like ``numpy.round``, DuckDB ``round_even``); DuckDB's
    ``round`` and Arrow's default rounding differ.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from pathlib import Path

from governance.cleaning.blocks import MAD_SCALE
from governance.cleaning.rules import EVENT_TYPE_SYNONYMS, EVENT_TYPES, SHOP_OPENED, USD_RATES
from governance.contracts import EVENTS, LINEAGE_COLUMNS

CONTRACT = EVENTS.column_names
LINEAGE = list(LINEAGE_COLUMNS)
RECORD = [*CONTRACT, *LINEAGE]
CLEAN = [*CONTRACT, "price_usd_converted", "is_anonymous", *LINEAGE]
CARTED = ("add_to_cart", "purchase")
BROWSING = ("view", "click")  # bot rates count these only
# defaults of the rule blocks used by EVENTS_RULES (governance/cleaning/blocks.py)
FUTURE_TOLERANCE = timedelta(hours=1)
BOT_MIN_EVENTS, BOT_MAX_PER_MINUTE, BOT_BURST_EVENTS, BOT_MIN_MEDIAN_GAP_S = 30, 20.0, 15, 1.0
OUTLIER_K, OUTLIER_MIN_FACTOR, OUTLIER_MIN_GROUP = 6.0, 3.0, 10
#: an item judged by its own observed prices (≥ OUTLIER_MIN_OWN priced events) is allowed this factor
OUTLIER_MIN_OWN, OUTLIER_OWN_FACTOR = 3, 25.0

#: the quarantine and fix rules, in EVENTS_RULES order (ordinal = position + 1)
RULE_ORDER = (
    "exact_duplicate", "normalise_event_type", "normalise_device", "price_usd_converted", "currency_to_usd",
    "key_duplicate", "invalid_event_type", "timestamp_out_of_range", "bot_session", "remap_duplicate_product",
    "unknown_item", "unknown_user", "zero_price_nulled", "price_not_positive", "price_outlier",
    "quantity_not_positive", "impute_price", "impute_quantity", "round_price",
)
Q = {name: i + 1 for i, name in enumerate(RULE_ORDER)}


class _Clock:
    """Seconds per rule, for the per-rule comparison with the Polars engine."""

    def __init__(self, timings: dict | None):
        self.timings = timings if timings is not None else {}
        self.last = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + now - self.last
        self.last = now


# ================================================================================================
# pandas 3 (Arrow-backed dtypes, vectorised: duplicated/groupby/factorize/get_indexer, no row loops)


def _median_sorted(values, starts, counts):
    """Polars' median of groups laid out sorted and contiguous: lo + (hi - lo) * 0.5."""
    lo = values[starts + (counts - 1) // 2]
    hi = values[starts + counts // 2]
    return lo + (hi - lo) * 0.5


def _median(values) -> float | None:
    import numpy as np

    v = np.sort(np.asarray(values, dtype="float64"))
    if v.size == 0:
        return None
    return float(_median_sorted(v, np.array([0]), np.array([v.size]))[0])


def _group_median(codes, values, n_groups: int):
    """Per group code 0..n_groups-1: count and Polars-style median (NaN where the group is empty)."""
    import numpy as np

    order = np.lexsort((values, codes))
    v, c = values[order], codes[order]
    counts = np.bincount(c, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    med = np.full(n_groups, np.nan)
    has = counts > 0
    med[has] = _median_sorted(v, starts[has], counts[has])
    return counts, med


def clean_pandas(raw_path: Path, refs_dir: Path, out_dir: Path, *, now: datetime, run_id: str,
                 timings: dict | None = None) -> dict:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    clock = _Clock(timings)
    refs_dir, out_dir = Path(refs_dir), Path(out_dir)
    df = pd.read_parquet(raw_path, columns=RECORD, dtype_backend="pyarrow")
    products = pd.read_parquet(refs_dir / "products.parquet",
                               columns=["product_id", "price", "category_path", "price_imputed"],
                               dtype_backend="pyarrow")
    product_ids = pd.read_parquet(refs_dir / "product_ids.parquet", dtype_backend="pyarrow")["product_id"]
    user_ids = pd.read_parquet(refs_dir / "user_ids.parquet", dtype_backend="pyarrow")["user_id"]
    id_map = pd.read_parquet(refs_dir / "product_id_map.parquet", dtype_backend="pyarrow")
    rows_in = len(df)
    clock("read")

    quarantined: list[pd.DataFrame] = []
    audits: list[pd.DataFrame] = []
    counts: dict[str, int] = {}

    def b(mask) -> np.ndarray:  # Arrow-backed boolean with NA → numpy bool (NA = False, as fill_null(False))
        return mask.fillna(False).to_numpy(dtype=bool) if hasattr(mask, "fillna") else np.asarray(mask, dtype=bool)

    def s(series) -> pd.Series:  # values as Arrow strings for reasons and the audit
        return series.astype("large_string[pyarrow]")

    def quarantine(rule: str, hit: np.ndarray, reason) -> None:
        nonlocal df
        n = int(hit.sum())
        counts[rule] = n
        if n:
            q = df.take(np.flatnonzero(hit))
            quarantined.append(pd.DataFrame({
                "rule": rule, "reason": reason(q).to_numpy(), "key": q["event_id"].to_numpy(),
                "record": q[RECORD].to_json(orient="records", lines=True, date_format="iso",
                                            date_unit="us").splitlines(),
                "file": q["_source_file"].to_numpy(), "row_number": q["_row_number"].to_numpy(),
                "partition": q["_partition"].to_numpy(),
            }))
            df = df.take(np.flatnonzero(~hit))

    def audit(rule: str, column: str, new: pd.Series) -> int:
        old = df[column]
        changed = b(old.isna() != new.isna()) | b(old != new)
        n = int(changed.sum())
        if n:
            c = df.take(np.flatnonzero(changed))
            audits.append(pd.DataFrame({
                "rule": rule, "column": column, "original": s(old[changed]).to_numpy(),
                "fixed": s(new[changed]).to_numpy(), "key": c["event_id"].to_numpy(),
                "file": c["_source_file"].to_numpy(), "row_number": c["_row_number"].to_numpy(),
                "partition": c["_partition"].to_numpy(),
            }))
        return n

    def fix(rule: str, **columns: pd.Series) -> None:
        nonlocal df
        counts[rule] = sum(audit(rule, c, v) for c, v in columns.items())
        df = df.assign(**columns)

    def lookup(keys: pd.Series, ref_keys: pd.Series, ref_values: np.ndarray, fill=np.nan) -> np.ndarray:
        idx = pd.Index(ref_keys).get_indexer(keys)
        out = np.asarray(ref_values)[np.maximum(idx, 0)]
        return np.where(idx >= 0, out, fill)

    def as_float(series: pd.Series) -> np.ndarray:
        return series.to_numpy(dtype="float64", na_value=np.nan)

    def arrow_float(values: np.ndarray) -> pd.Series:
        return pd.Series(pd.array(values, dtype="double[pyarrow]"), index=df.index).mask(np.isnan(values))

    def ln(values: np.ndarray) -> np.ndarray:  # libm's log, as Polars and DuckDB (numpy's SIMD log differs)
        return pc.ln(pa.array(values)).to_numpy(zero_copy_only=False)

    # 1 exact duplicates: equal in every contract column to an earlier row; the first is kept
    involved = df.duplicated(subset=CONTRACT, keep=False).to_numpy()
    hit = np.zeros(len(df), dtype=bool)
    if involved.any():
        sub = df.loc[involved, [*CONTRACT, "_source_file", "_row_number"]]
        hit[involved] = sub.duplicated(subset=CONTRACT, keep="first").to_numpy()
        g = sub.groupby(CONTRACT, dropna=False, sort=False)
        kept = pd.DataFrame({"file": g["_source_file"].transform("first"), "row": g["_row_number"].transform("first")})
    quarantine("exact_duplicate", hit, lambda q: "exact duplicate of " + kept.loc[q.index, "file"] + " row "
               + s(kept.loc[q.index, "row"]) + " (kept)")
    clock("exact_duplicate")

    # 2–5 fixes and the conversion flag
    fix("normalise_event_type", event_type=df["event_type"].str.strip().str.lower().replace(EVENT_TYPE_SYNONYMS))
    clock("normalise_event_type")
    tidy = df["device"].str.normalize("NFC").str.replace(r"\s+", " ", regex=True).str.strip()
    fix("normalise_device", device=tidy.mask(b(tidy == "")).str.lower())
    clock("normalise_device")
    cur = df["currency"].str.strip().str.upper()
    df = df.assign(price_usd_converted=b(cur.fillna("USD") != "USD"))
    counts["price_usd_converted"] = int(df["price_usd_converted"].sum())
    clock("price_usd_converted")
    rate = lookup(cur, pd.Series(list(USD_RATES), dtype="large_string[pyarrow]"), np.array(list(USD_RATES.values())))
    foreign = ~np.isnan(rate) & b(cur != "USD")
    price = as_float(df["price"])
    fix("currency_to_usd",
        price=arrow_float(np.where(foreign, np.round(price * rate, 2), price)),
        currency=df["currency"].mask(foreign | (b(cur.isna()) & ~np.isnan(price)), "USD"))
    clock("currency_to_usd")

    # 6 key duplicates: the latest delivery's first row is kept
    involved = df["event_id"].duplicated(keep=False).to_numpy()
    hit = np.zeros(len(df), dtype=bool)
    if involved.any():
        sub = df.loc[involved, ["event_id", "_ingested_at", "_source_file", "_row_number"]]
        sub = sub.assign(_ord=np.flatnonzero(involved)).sort_values(["_ingested_at", "_ord"], ascending=[False, True])
        g = sub.groupby("event_id", sort=False)
        sub = sub.assign(rank=g.cumcount(), versions=g["_ord"].transform("size"),
                         kept_file=g["_source_file"].transform("first"), kept_row=g["_row_number"].transform("first"))
        kept = sub.sort_values("_ord")
        hit[involved] = kept["rank"].to_numpy() > 0
        kept = kept.set_index(df.index[involved])
    quarantine("key_duplicate", hit, lambda q: "event_id " + q["event_id"] + " appears "
               + s(kept.loc[q.index, "versions"]) + " times; kept " + kept.loc[q.index, "kept_file"] + " row "
               + s(kept.loc[q.index, "kept_row"]) + " (latest delivery, first in landing order)")
    clock("key_duplicate")

    # 7, 8 invalid values
    et = df["event_type"]
    quarantine("invalid_event_type", b(et.notna() & ~et.isin(EVENT_TYPES)),
               lambda q: "event_type '" + q["event_type"] + f"' is not one of {', '.join(EVENT_TYPES)}")
    clock("invalid_event_type")
    latest = pd.Timestamp(now + FUTURE_TOLERANCE)
    future = b(df["event_time"] > latest)
    quarantine("timestamp_out_of_range", future | b(df["event_time"] < pd.Timestamp(SHOP_OPENED)),
               lambda q: "event_time " + s(q["event_time"]) + np.where(
                   b(q["event_time"] > latest), f" is in the future (run time {now:%Y-%m-%d %H:%M} UTC)",
                   f" is before the shop existed ({SHOP_OPENED:%Y-%m-%d})"))
    clock("timestamp_out_of_range")

    # 9 bot sessions: per session count, span and median gap of its views/clicks (sorted by time);
    #   the whole session (checkout rows too) leaves
    codes, _ = pd.factorize(df["session_id"])
    browsing = b(df["event_type"].isin(BROWSING))
    bc = codes[browsing]
    t_us = df["event_time"].astype("int64[pyarrow]").to_numpy()[browsing]
    order = np.lexsort((t_us, bc))
    c, t = bc[order], t_us[order]
    first = np.r_[True, c[1:] != c[:-1]]
    gap_ms = np.where(first, np.nan, np.r_[0, np.diff(t)] // 1000)
    stats = (pd.DataFrame({"c": c, "t": t, "gap": gap_ms}).groupby("c", sort=False)
             .agg(n=("t", "size"), t0=("t", "min"), t1=("t", "max"), gap=("gap", "median")))
    stats["span_s"] = ((stats["t1"] - stats["t0"]) // 1000) / 1000
    stats["gap_s"] = stats["gap"] / 1000
    stats["rate"] = stats["n"] / np.maximum(stats["span_s"] / 60, 1 / 60)
    bots = stats[((stats["n"] >= BOT_MIN_EVENTS) & (stats["rate"] > BOT_MAX_PER_MINUTE))
                 | ((stats["n"] >= BOT_BURST_EVENTS) & (stats["gap_s"] < BOT_MIN_MEDIAN_GAP_S))]
    is_bot = np.zeros(codes.max() + 1 if len(codes) else 0, dtype=bool)
    is_bot[bots.index.to_numpy()] = True
    hit = is_bot[codes] if len(codes) else np.zeros(0, dtype=bool)

    def bot_reason(q: pd.DataFrame) -> pd.Series:
        st = bots.loc[codes[hit]]

        def col(name: str, digits: int | None = None) -> pd.Series:
            values = st[name] if digits is None else st[name].round(digits)
            return s(pd.Series(values.to_numpy(), index=q.index))

        return ("bot session " + q["session_id"] + ": " + col("n") + " views/clicks in " + col("span_s", 1) + " s ("
                + col("rate", 1) + " per minute, median gap " + col("gap_s", 2)
                + " s) — faster than a person browses")

    quarantine("bot_session", hit, bot_reason)
    clock("bot_session")

    # 10 remap duplicate products to the kept id
    if len(id_map):
        idx = pd.Index(id_map["duplicate_id"]).get_indexer(df["item_id"])
        mapped = pd.Series(id_map["canonical_id"].array.take(np.maximum(idx, 0)), index=df.index)
        fix("remap_duplicate_product", item_id=df["item_id"].where(idx < 0, mapped))
    clock("remap_duplicate_product")

    # 11, 12 unknown references (anti-joins); null ids are not orphans, nor ids of an imported system
    #   ("instacart:123") that delivers no such reference at all
    def namespace(ids: pd.Series) -> pd.Series:
        return ids.str.extract(r"^([^:]*):", expand=False).fillna("")

    def orphan(ids: pd.Series, known: pd.Series) -> np.ndarray:
        out = b(ids.notna() & ~ids.isin(known)).copy()
        out[out] = b(namespace(ids[out]).isin(namespace(known).unique()))
        return out

    quarantine("unknown_item", orphan(df["item_id"], product_ids),
               lambda q: "item_id " + q["item_id"] + " does not exist in the catalog")
    clock("unknown_item")
    quarantine("unknown_user", orphan(df["user_id"], user_ids),
               lambda q: "user_id " + q["user_id"] + " does not exist in the user profiles")
    clock("unknown_user")

    # 13 a view/click at price 0 keeps the event (price nulled, audited); negative prices leave
    zero_view = b((df["price"] == 0) & df["event_type"].isin(["view", "click"]))
    fix("zero_price_nulled", price=df["price"].mask(zero_view))
    clock("zero_price_nulled")
    quarantine("price_not_positive", b(df["price"] < 0), lambda q: "price " + s(q["price"]) + " is negative")
    clock("price_not_positive")

    # 14 price outliers against the item's own observed prices (median of ≥ 3 priced events), else
    #    its catalog price (never an imputed one); category spread of log ratios
    real = b(products["price"] > 0)
    if "price_imputed" in products.columns:
        real &= ~b(products["price_imputed"].fillna(False))
    priced = products[real]
    price = as_float(df["price"])
    pos = pd.Series(np.where(price > 0, price, np.nan), index=df.index)
    own_n = pos.groupby(df["item_id"].to_numpy()).transform("count").to_numpy()
    own_med = pos.groupby(df["item_id"].to_numpy()).transform("median").to_numpy()
    own = np.where(own_n >= OUTLIER_MIN_OWN, own_med, np.nan)
    if len(priced) or (~np.isnan(own)).any():
        k, floor = OUTLIER_K, math.log(OUTLIER_MIN_FACTOR)
        # the item's catalog row (one hash lookup), its price and its category as a code
        idx = pd.Index(priced["product_id"]).get_indexer(df["item_id"])
        known_item = idx >= 0
        listed = np.where(known_item, as_float(priced["price"])[np.maximum(idx, 0)], np.nan)
        cat_price = np.where(np.isnan(own), listed, own)
        product_cat, cats = pd.factorize(priced["category_path"])
        row_cat = np.where(known_item, product_cat[np.maximum(idx, 0)], -1)
        ok = (price > 0) & (cat_price > 0)
        lr = np.full(len(df), np.nan)
        lr[ok] = ln(price[ok] / cat_price[ok])
        has = ~np.isnan(lr)
        # distinct item/price pairs (the item as its catalog row: one-to-one with item_id here)
        pairs = pd.DataFrame({"item": idx[has], "price": price[has], "lr": lr[has], "cat": row_cat[has]}) \
            .drop_duplicates(["item", "price"])
        overall = MAD_SCALE * (_median(np.abs(pairs["lr"].to_numpy())) or 0.0) \
            if len(pairs) >= OUTLIER_MIN_GROUP else 0.0
        in_cat = pairs[pairs["cat"] >= 0]  # items judged by their own prices alone have no category
        n_cat, med_cat = _group_median(in_cat["cat"].to_numpy(), np.abs(in_cat["lr"].to_numpy()), len(cats))
        spread_cat = np.where(n_cat >= OUTLIER_MIN_GROUP, MAD_SCALE * med_cat, overall)
        spread = np.where(row_cat >= 0, spread_cat[np.maximum(row_cat, 0)], overall)
        allowed = np.maximum(k * spread, floor)
        allowed = np.where(np.isnan(own), allowed, np.maximum(allowed, math.log(OUTLIER_OWN_FACTOR)))
        logp = ln(as_float(priced["price"]))
        far = np.zeros(len(df), dtype=bool)
        if len(priced):
            cmed = _median(logp)
            callowed = max(k * MAD_SCALE * _median(np.abs(logp - cmed)), floor)
            nocat = np.isnan(cat_price) & (price > 0)
            far[nocat] = np.abs(ln(price[nocat]) - cmed) > callowed
        else:
            cmed, callowed = float("nan"), floor
        hit = (np.abs(lr) > allowed) | far

        def outlier_reason(q: pd.DataFrame) -> pd.Series:
            def col(values) -> pd.Series:
                return pd.Series(values, index=q.index)

            p, cp = col(price[hit]).round(2), col(cat_price[hit])
            cat = col(np.asarray(cats, dtype=object)[np.maximum(row_cat[hit], 0)]).astype("large_string[pyarrow]")
            which = pd.Series(np.where(np.isnan(own[hit]), "catalog price", "median observed price"), index=q.index)
            known = (s(p) + " is " + s((p / cp).round(2)) + "× the item's " + which + " " + s(cp.round(2))
                     + "; prices in category " + cat + " stay within " + s(col(np.exp(allowed[hit])).round(1))
                     + "× of it")
            unknown = s(p) + (f" is far outside the whole catalog's price range (median {math.exp(cmed):.2f}, "
                              f"allowed within {math.exp(callowed):.1f}× of it); the item has no catalog price")
            return "price " + unknown.where(np.isnan(cp.to_numpy()), known)

        quarantine("price_outlier", hit, outlier_reason)
    clock("price_outlier")

    # 15 non-positive quantities
    quarantine("quantity_not_positive", b(df["quantity"] <= 0),
               lambda q: "quantity " + s(q["quantity"]) + " is not positive")
    clock("quantity_not_positive")

    # 16–18 imputation and rounding
    carted = b(df["event_type"].isin(CARTED))
    latest_price = products[b(products["price"].notna())].drop_duplicates("product_id", keep="last")
    price = as_float(df["price"])
    fill = np.isnan(price) & carted
    price[fill] = lookup(df["item_id"][fill], latest_price["product_id"], as_float(latest_price["price"]))
    fix("impute_price", price=arrow_float(price))
    clock("impute_price")
    fix("impute_quantity", quantity=df["quantity"].mask(b(df["quantity"].isna()) & carted, 1))
    clock("impute_quantity")
    fix("round_price", price=arrow_float(np.round(as_float(df["price"]), 2)))
    clock("round_price")

    # the clean table, the quarantine and the audit
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = df.assign(is_anonymous=df["user_id"].isna())[CLEAN]
    clean.to_parquet(out_dir / "clean.parquet", compression="zstd", compression_level=1, index=False)
    meta = {"source": "events", "stage": "cleaning", "run_id": run_id}
    quarantine_frame = pd.concat(quarantined, ignore_index=True) if quarantined else pd.DataFrame(
        columns=["rule", "reason", "key", "record", "file", "row_number", "partition"])
    quarantine_frame.assign(**meta, quarantined_at=pd.Timestamp(now)).to_parquet(
        out_dir / "quarantine.parquet", compression="zstd", compression_level=1, index=False)
    audit_frame = pd.concat(audits, ignore_index=True) if audits else pd.DataFrame(
        columns=["rule", "column", "original", "fixed", "key", "file", "row_number", "partition"])
    audit_frame.assign(**meta, fixed_at=pd.Timestamp(now)).to_parquet(
        out_dir / "audit.parquet", compression="zstd", compression_level=1, index=False)
    clock("write")
    if rows_in != len(clean) + len(quarantine_frame):
        raise AssertionError(f"pandas: conservation broken: {rows_in} in, {len(clean)} clean, "
                             f"{len(quarantine_frame)} quarantined")
    return {"rows_in": rows_in, "clean": out_dir / "clean.parquet", "quarantine": out_dir / "quarantine.parquet",
            "audit": out_dir / "audit.parquet"}


# ================================================================================================
# DuckDB SQL: one pipeline of CTEs (window functions, aggregates, anti-joins) materialised once,
# then COPY … TO parquet for the clean table, the quarantine and the audit.


def _f(x: float) -> str:
    """A double literal with exactly Python's value (DuckDB would read 1.08 as a DECIMAL)."""
    return f"CAST('{x!r}' AS DOUBLE)"


def _s(x: str) -> str:
    return "'" + x.replace("'", "''") + "'"


def _ts(x: datetime) -> str:
    return f"TIMESTAMPTZ '{x.isoformat()}'"


def _sql_median(x: str) -> str:
    """Polars' median: lower and upper middle values, lo + (hi - lo) * 0.5."""
    lo, hi = f"CAST(quantile_disc({x}, 0.5) AS DOUBLE)", f"CAST(-quantile_disc(-({x}), 0.5) AS DOUBLE)"
    return f"({lo} + ({hi} - {lo}) * CAST(0.5 AS DOUBLE))"


#: Unicode White_Space, as Rust's (Polars') \s and str::trim; RE2's \s is ASCII only
_WS = r"[\t\n\x{0B}\f\r\x{85}\p{Z}]"


def _namespace(x: str) -> str:
    """The source system of an imported id ("instacart:123" → "instacart"; plain ids → "")."""
    return f"CASE WHEN contains({x}, ':') THEN regexp_extract({x}, '^([^:]*):', 1) ELSE '' END"


def _strip(x: str) -> str:
    return f"regexp_replace({x}, '^{_WS}+|{_WS}+$', '', 'g')"


def events_sql(raw: str, refs: dict[str, str], *, now: datetime, by_partition: bool = False) -> str:
    """The statement that builds ``staged``: every raw row with its final values, the ordinal of the
    quarantine rule that removed it (``__q``, null when clean), the reason, and the values before
    each fix (for the audit). With ``by_partition`` every window, aggregate and reference lookup is
    per ``_partition`` (references then carry a ``_partition`` column): one statement cleans many
    daily partitions exactly as cleaning them one by one would."""
    P = "_partition, " if by_partition else ""

    def on(a: str, b: str) -> str:
        return f" AND {a}._partition = {b}._partition" if by_partition else ""

    def q_steps(*steps: tuple[str, str, str]) -> str:
        """Assign the first matching quarantine rule (and its reason) to rows still clean."""
        q = " ".join(f"WHEN {cond} THEN {Q[rule]}" for rule, cond, _ in steps)
        r = " ".join(f"WHEN {cond} THEN {reason}" for _, cond, reason in steps)
        return (f"CASE WHEN __q IS NOT NULL THEN __q {q} END AS __q, "
                f"CASE WHEN __q IS NOT NULL THEN __reason {r} END AS __reason")

    synonyms = " ".join(f"WHEN {_s(k)} THEN {_s(v)}" for k, v in EVENT_TYPE_SYNONYMS.items())
    rates = " ".join(f"WHEN {_s(k)} THEN {_f(v)}" for k, v in USD_RATES.items())
    types = ", ".join(_s(t) for t in EVENT_TYPES)
    carted = ", ".join(_s(t) for t in CARTED)
    browsing = ", ".join(_s(t) for t in BROWSING)
    browsing_zero = ", ".join(_s(t) for t in ("view", "click"))
    latest, earliest = _ts(now + FUTURE_TOLERANCE), _ts(SHOP_OPENED)
    contract = ", ".join(CONTRACT)
    lineage = ", ".join(LINEAGE)
    floor = _f(math.log(OUTLIER_MIN_FACTOR))
    mad, k, k_mad = _f(MAD_SCALE), _f(OUTLIER_K), _f(OUTLIER_K * MAD_SCALE)
    et = "__et1"
    tidy_device = f"nullif(trim(regexp_replace(nfc_normalize(device), '{_WS}+', ' ', 'g')), '')"
    return f"""
CREATE OR REPLACE TEMP TABLE staged AS
WITH
raw AS (
  SELECT {contract}, {lineage}, file_row_number AS __ord FROM read_parquet({raw}, file_row_number = true)
),
s1 AS (  -- exact_duplicate: the first row of each set of equal contract values is kept
  SELECT *, row_number() OVER w AS __dup, first_value(_source_file) OVER w AS __kf,
         first_value(_row_number) OVER w AS __kr
  FROM raw WINDOW w AS (PARTITION BY {P}{contract} ORDER BY __ord)
),
s2 AS (
  SELECT * EXCLUDE (__dup, __kf, __kr),
    CASE WHEN __dup > 1 THEN {Q['exact_duplicate']} END AS __q,
    CASE WHEN __dup > 1 THEN format('exact duplicate of {{}} row {{}} (kept)', __kf, __kr) END AS __reason,
    upper({_strip('currency')}) AS __cur
  FROM s1
),
s3 AS (  -- normalise_event_type, normalise_device, price_usd_converted, currency_to_usd
  SELECT *,
    CASE {_strip('lower(event_type)')} {synonyms} ELSE {_strip('lower(event_type)')} END AS {et},
    CASE __cur {rates} END AS __rate,
    (__rate IS NOT NULL AND coalesce(__cur <> 'USD', false)) AS __foreign
  FROM s2
),
s4 AS (
  SELECT * EXCLUDE (event_type, device, price, currency, {et}, __cur, __rate, __foreign),
    CASE WHEN __q IS NULL THEN {et} ELSE event_type END AS event_type,
    CASE WHEN __q IS NULL THEN lower({tidy_device}) ELSE device END AS device,
    (__q IS NULL AND coalesce(__cur, 'USD') <> 'USD') AS price_usd_converted,
    CASE WHEN __q IS NULL AND __foreign THEN round_even(price * __rate, 2) ELSE price END AS price,
    CASE WHEN __q IS NULL AND (__foreign OR (__cur IS NULL AND price IS NOT NULL)) THEN 'USD' ELSE currency END
      AS currency,
    event_type AS event_type__0, device AS device__0, price AS price__0, currency AS currency__0
  FROM s3
),
s5 AS (  -- key_duplicate among the rows still clean: latest delivery, then landing order
  SELECT *, count(*) OVER k AS __versions,
         row_number() OVER (k ORDER BY _ingested_at DESC, __ord) AS __krank,
         first_value(_source_file) OVER (k ORDER BY _ingested_at DESC, __ord) AS __kf,
         first_value(_row_number) OVER (k ORDER BY _ingested_at DESC, __ord) AS __kr
  FROM s4 WINDOW k AS (PARTITION BY {P}event_id, __q IS NULL)
),
s6 AS (  -- key_duplicate, invalid_event_type, timestamp_out_of_range
  SELECT * EXCLUDE (__q, __reason, __versions, __krank, __kf, __kr),
    {q_steps(
        ("key_duplicate", "__krank > 1",
         "format('event_id {} appears {} times; kept {} row {} (latest delivery, first in landing order)', "
         "event_id, __versions, __kf, __kr)"),
        ("invalid_event_type", f"event_type IS NOT NULL AND event_type NOT IN ({types})",
         f"format('event_type ''{{}}'' is not one of {', '.join(EVENT_TYPES)}', event_type)"),
        ("timestamp_out_of_range", f"event_time > {latest} OR event_time < {earliest}",
         f"CASE WHEN event_time > {latest} THEN format('event_time {{}} is in the future (run time "
         f"{now:%Y-%m-%d %H:%M} UTC)', event_time) ELSE format('event_time {{}} is before the shop existed "
         f"({SHOP_OPENED:%Y-%m-%d})', event_time) END"),
    )}
  FROM s5
),
gaps AS (
  SELECT {P}session_id, event_time,
    (epoch_us(event_time) - lag(epoch_us(event_time)) OVER (PARTITION BY {P}session_id ORDER BY event_time))
      // 1000 AS __gap_ms
  FROM s6 WHERE __q IS NULL AND event_type IN ({browsing})
),
bots AS (  -- bot_session: inhuman browsing rates per session (the whole session leaves)
  SELECT {P}session_id, count(*) AS __n,
    ((epoch_us(max(event_time)) - epoch_us(min(event_time))) // 1000) / 1000 AS __span_s,
    {_sql_median('__gap_ms')} / 1000 AS __gap_s,
    count(*) / greatest(__span_s / 60, {_f(1 / 60)}) AS __rate
  FROM gaps GROUP BY ALL
  HAVING (count(*) >= {BOT_MIN_EVENTS} AND __rate > {_f(BOT_MAX_PER_MINUTE)})
      OR (count(*) >= {BOT_BURST_EVENTS} AND __gap_s < {_f(BOT_MIN_MEDIAN_GAP_S)})
),
s7 AS (  -- bot_session, then remap_duplicate_product
  SELECT s6.* EXCLUDE (__q, __reason, item_id),
    {q_steps(("bot_session", "__n IS NOT NULL",
              "format('bot session {}: {} views/clicks in {} s ({} per minute, median gap {} s) — faster than a "
              "person browses', s6.session_id, __n, round(__span_s, 1), round(__rate, 1), round(__gap_s, 2))"))},
    s6.item_id AS item_id__0,
    CASE WHEN __q IS NULL AND bots.__n IS NULL AND m.duplicate_id IS NOT NULL THEN m.canonical_id ELSE s6.item_id END
      AS item_id
  FROM s6
  LEFT JOIN bots ON s6.session_id = bots.session_id{on('s6', 'bots')}
  LEFT JOIN {refs['product_id_map']} m ON s6.item_id = m.duplicate_id{on('s6', 'm')}
),
catalog AS (SELECT {P}product_id, price AS __catalog, category_path AS __cat FROM {refs['products']}
            WHERE price > 0 AND NOT coalesce(price_imputed, false)),
known_ns AS (  -- id namespaces ("instacart:123" → instacart) that deliver each reference at all
  SELECT {P}list(DISTINCT {_namespace('product_id')}) AS __item_ns FROM {refs['product_ids']}
  {'GROUP BY _partition' if by_partition else ''}
),
known_user_ns AS (
  SELECT {P}list(DISTINCT {_namespace('user_id')}) AS __user_ns FROM {refs['user_ids']}
  {'GROUP BY _partition' if by_partition else ''}
),
s8z AS (  -- unknown_item, unknown_user (anti-joins); zero_price_nulled: a view/click at 0 keeps its event
  SELECT s7.* EXCLUDE (__q, __reason, price),
    {q_steps(
        ("unknown_item", "s7.item_id IS NOT NULL AND pi.product_id IS NULL AND "
         f"coalesce(list_contains(kn.__item_ns, {_namespace('s7.item_id')}), false)",
         "format('item_id {} does not exist in the catalog', s7.item_id)"),
        ("unknown_user", "s7.user_id IS NOT NULL AND ui.user_id IS NULL AND "
         f"coalesce(list_contains(ku.__user_ns, {_namespace('s7.user_id')}), false)",
         "format('user_id {} does not exist in the user profiles', s7.user_id)"),
    )},
    s7.price AS price__z, s7.price AS __price_in
  FROM s7
  LEFT JOIN {refs['product_ids']} pi ON s7.item_id = pi.product_id{on('s7', 'pi')}
  LEFT JOIN {refs['user_ids']} ui ON s7.user_id = ui.user_id{on('s7', 'ui')}
  LEFT JOIN known_ns kn ON true{on('s7', 'kn')}
  LEFT JOIN known_user_ns ku ON true{on('s7', 'ku')}
),
s8p AS (
  SELECT * EXCLUDE (__price_in),
    CASE WHEN __q IS NULL AND __price_in = 0 AND event_type IN ({browsing_zero}) THEN NULL ELSE __price_in END AS price
  FROM s8z
),
own AS (  -- the item's own observed prices: median of its live priced events when it has enough
  SELECT {P}item_id, {_sql_median('price')} AS __own FROM s8p WHERE __q IS NULL AND price > 0
  GROUP BY ALL HAVING count(*) >= {OUTLIER_MIN_OWN}
),
s8 AS (  -- price_not_positive (negative prices); the item's own or catalog price for outliers
  SELECT s8p.* EXCLUDE (__q, __reason),
    {q_steps(("price_not_positive", "s8p.price < 0", "format('price {} is negative', s8p.price)"))},
    coalesce(ow.__own, c.__catalog) AS __catalog, ow.__own, c.__cat,
    CASE WHEN s8p.price > 0 AND coalesce(ow.__own, c.__catalog) > 0
         THEN ln(s8p.price / coalesce(ow.__own, c.__catalog)) END AS __lr
  FROM s8p
  LEFT JOIN catalog c ON s8p.item_id = c.product_id{on('s8p', 'c')}
  LEFT JOIN own ow ON s8p.item_id = ow.item_id{on('s8p', 'ow')}
),
pairs AS (SELECT DISTINCT {P}item_id, price, __lr, __cat FROM s8 WHERE __q IS NULL AND __lr IS NOT NULL),
overall AS (
  SELECT {P}CASE WHEN count(*) >= {OUTLIER_MIN_GROUP} THEN {mad} * {_sql_median('abs(__lr)')} ELSE 0 END AS __overall
  FROM pairs {'GROUP BY _partition' if by_partition else ''}
),
spread AS (
  SELECT {P}__cat, count(*) AS __np, {mad} * {_sql_median('abs(__lr)')} AS __s FROM pairs GROUP BY ALL
),
catalog_log AS (SELECT {P}ln(__catalog) AS __lp FROM catalog),
catalog_median AS (
  SELECT {P}{_sql_median('__lp')} AS __cmed FROM catalog_log {'GROUP BY _partition' if by_partition else ''}
),
catalog_range AS (
  SELECT {'l._partition, ' if by_partition else ''}any_value(__cmed) AS __cmed,
    greatest({k_mad} * {_sql_median('abs(__lp - __cmed)')}, {floor}) AS __callowed
  FROM catalog_log l, catalog_median cm {'WHERE l._partition = cm._partition GROUP BY l._partition' if by_partition
                                          else ''}
),
s9 AS (  -- price_outlier, quantity_not_positive
  SELECT s8.* EXCLUDE (__q, __reason),
    greatest({k} * coalesce(CASE WHEN sp.__np >= {OUTLIER_MIN_GROUP} THEN sp.__s ELSE o.__overall END,
                             coalesce(o.__overall, 0)), {floor},
             CASE WHEN s8.__own IS NOT NULL THEN {_f(math.log(OUTLIER_OWN_FACTOR))} END) AS __allowed,
    CASE WHEN s8.__catalog IS NULL AND s8.price > 0 THEN abs(ln(s8.price) - cr.__cmed) > cr.__callowed END AS __far,
    {q_steps(
        ("price_outlier", "coalesce(abs(__lr) > __allowed, false) OR coalesce(__far, false)",
         "CASE WHEN s8.__catalog IS NULL THEN format('price {} is far outside the whole catalog''s price range "
         "(median {}, allowed within {}× of it); the item has no catalog price', round(s8.price, 2), "
         "round(exp(cr.__cmed), 2), round(exp(cr.__callowed), 1)) ELSE format('price {} is {}× the item''s {} "
         "{}; prices in category {} stay within {}× of it', round(s8.price, 2), "
         "round(s8.price / s8.__catalog, 2), CASE WHEN s8.__own IS NULL THEN 'catalog price' ELSE "
         "'median observed price' END, round(s8.__catalog, 2), coalesce(s8.__cat, '(none)'), "
         "round(exp(__allowed), 1)) END"),
        ("quantity_not_positive", "s8.quantity <= 0", "format('quantity {} is not positive', s8.quantity)"),
    )}
  FROM s8
  LEFT JOIN spread sp ON s8.__cat = sp.__cat{on('s8', 'sp')}
  LEFT JOIN overall o ON true{on('s8', 'o')}
  LEFT JOIN catalog_range cr ON true{on('s8', 'cr')}
),
latest AS (
  SELECT {P}product_id, price AS __ref_price FROM {refs['products']} WHERE price IS NOT NULL
  QUALIFY row_number() OVER (PARTITION BY {P}product_id ORDER BY __ref_ord DESC) = 1
),
s10 AS (  -- impute_price, impute_quantity
  SELECT s9.* EXCLUDE (price, quantity, __catalog, __own, __cat, __lr, __allowed, __far),
    s9.price AS price__1, s9.quantity AS quantity__0,
    CASE WHEN __q IS NULL AND s9.price IS NULL AND event_type IN ({carted}) THEN lp.__ref_price ELSE s9.price END
      AS price__2,
    CASE WHEN __q IS NULL AND s9.quantity IS NULL AND event_type IN ({carted}) THEN 1 ELSE s9.quantity END
      AS quantity
  FROM s9 LEFT JOIN latest lp ON s9.item_id = lp.product_id{on('s9', 'lp')}
)
SELECT * EXCLUDE (price__2), price__2,
  CASE WHEN __q IS NULL THEN round_even(price__2, 2) ELSE price__2 END AS price  -- round_price
FROM s10
"""


def _record_json() -> str:
    return "CAST(to_json(struct_pack(" + ", ".join(f"{c} := {c}" for c in RECORD) + ")) AS VARCHAR)"


def _audit_sql(now: datetime, run_id: str) -> str:
    steps = [("normalise_event_type", "event_type", "event_type__0", "event_type"),
             ("normalise_device", "device", "device__0", "device"),
             ("currency_to_usd", "price", "price__0", "price__z"),
             ("zero_price_nulled", "price", "price__z", "price__1"),
             ("currency_to_usd", "currency", "currency__0", "currency"),
             ("remap_duplicate_product", "item_id", "item_id__0", "item_id"),
             ("impute_price", "price", "price__1", "price__2"),
             ("impute_quantity", "quantity", "quantity__0", "quantity"),
             ("round_price", "price", "price__2", "price")]
    parts = [f"SELECT 'events' AS source, 'cleaning' AS stage, {_s(rule)} AS rule, {_s(col)} AS \"column\", "
             f"CAST({old} AS VARCHAR) AS original, CAST({new} AS VARCHAR) AS fixed, _source_file AS file, "
             f"_row_number AS row_number, event_id AS key, {_s(run_id)} AS run_id, _partition AS partition, "
             f"{_ts(now)} AS fixed_at FROM staged WHERE {old} IS DISTINCT FROM {new}"
             for rule, col, old, new in steps]
    return "\nUNION ALL\n".join(parts)


def clean_duckdb(raw_paths: list[Path], refs: dict[str, Path], out_dir: Path, *, now: datetime, run_id: str,
                 by_partition: bool = False, memory_limit: str | None = None, threads: int | None = None,
                 preserve_insertion_order: bool = True, max_temp: str | None = None,
                 timings: dict | None = None) -> dict:
    """``refs``: parquet files of the reference tables (products, product_ids, user_ids,
    product_id_map), with a ``_partition`` column when ``by_partition``."""
    import duckdb

    clock = _Clock(timings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = {_s(str(out_dir / 'duckdb_tmp'))}")
    if memory_limit:
        con.execute(f"SET memory_limit = {_s(memory_limit)}")
    if threads:
        con.execute(f"SET threads = {threads}")
    if max_temp:  # spilling stops (with an error) here rather than filling a shared disk
        con.execute(f"SET max_temp_directory_size = {_s(max_temp)}")
    if not preserve_insertion_order:  # what DuckDB recommends for larger-than-memory work
        con.execute("SET preserve_insertion_order = false")
    ref_views = {}
    for name, path in refs.items():
        source = (f"SELECT * EXCLUDE (file_row_number), file_row_number AS __ref_ord FROM read_parquet("
                  f"{_s(str(path))}, file_row_number = true)" if name == "products"
                  else f"SELECT * FROM read_parquet({_s(str(path))})")
        con.execute(f"CREATE TEMP VIEW ref_{name} AS {source}")
        ref_views[name] = f"ref_{name}"
    raw = "[" + ", ".join(_s(str(p)) for p in raw_paths) + "]"
    con.execute(events_sql(raw, ref_views, now=now, by_partition=by_partition))
    clock("rules")
    opts = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
    rule_name = "[" + ", ".join(_s(r) for r in RULE_ORDER) + "][__q]"
    con.execute(f"COPY (SELECT {', '.join(CONTRACT)}, price_usd_converted, user_id IS NULL AS is_anonymous, "
                f"{', '.join(LINEAGE)} FROM staged WHERE __q IS NULL) TO {_s(str(out_dir / 'clean.parquet'))} {opts}")
    con.execute(f"COPY (SELECT 'events' AS source, 'cleaning' AS stage, {rule_name} AS rule, __reason AS reason, "
                f"_source_file AS file, _row_number AS row_number, event_id AS key, {_record_json()} AS record, "
                f"{_s(run_id)} AS run_id, _partition AS partition, {_ts(now)} AS quarantined_at "
                f"FROM staged WHERE __q IS NOT NULL) TO {_s(str(out_dir / 'quarantine.parquet'))} {opts}")
    con.execute(f"COPY ({_audit_sql(now, run_id)}) TO {_s(str(out_dir / 'audit.parquet'))} {opts}")
    clock("write")
    rows_in = con.execute("SELECT count(*) FROM staged").fetchone()[0]
    con.close()
    return {"rows_in": rows_in, "clean": out_dir / "clean.parquet", "quarantine": out_dir / "quarantine.parquet",
            "audit": out_dir / "audit.parquet"}
