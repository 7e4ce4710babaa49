"""The generated shop: determinism, realism of the clean truth, and faults that match their truth.

Everything runs on a 20k-event shop (well under a second to generate); files are re-read from disk
with plain readers, so a wrong row number, a fault that did not reach the file or valid-looking
"broken" UTF-8 fails a test.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from governance.contracts import CONTRACTS
from governance.shop import (
    BROKEN_UTF8,
    DEFAULT_FAULT_RATES,
    ShopConfig,
    fault_rates_observed,
    file_hashes,
    generate_shop,
    land_shop,
)
from governance.shop.util import exact_count

END = dt.date(2024, 5, 14)
N = 20_000
KEYS = {name: c.key[0] for name, c in CONTRACTS.items()}


def _config(seed: int = 7) -> ShopConfig:
    return ShopConfig(n_events=N, end_date=END, seed=seed)


@pytest.fixture(scope="module")
def shop():
    return generate_shop(_config())


@pytest.fixture(scope="module")
def landed(shop, tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    summary = land_shop(shop, root / "landing", root / "truth")
    return root, summary


def read_records(path: Path) -> list[dict]:
    """Records of a landed file as plain Python values (invalid UTF-8 replaced, not fatal)."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path).to_dicts()
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False, encoding="utf8-lossy").to_dicts()
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [json.loads(line) for line in text.splitlines()]


# --- determinism --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_another_seed_does_not(landed, tmp_path):
    root, _ = landed
    again = tmp_path / "again"
    land_shop(generate_shop(_config()), again / "landing", again / "truth")
    first, second = file_hashes(root), file_hashes(again)
    assert first and first == second

    other = tmp_path / "other"
    land_shop(generate_shop(_config(seed=8)), other / "landing", other / "truth")
    third = file_hashes(other)
    same = [p for p in first if third.get(p) == first[p]]
    assert len(same) < len(first) * 0.1, same


# --- scale and clean truth ------------------------------------------------------------------------------


def test_scale_follows_n_events(shop):
    c = shop.clean
    assert c["events"].height == N
    assert c["users"].height == pytest.approx(N / 60, rel=0.05)
    assert c["products"].height == 300  # clamped at the minimum
    assert c["reviews"].height == pytest.approx(N / 50, rel=0.1)
    assert c["queries"].height == pytest.approx(N / 20, rel=0.25)
    assert c["events"]["event_id"].n_unique() == N
    for name in ("events", "products", "users", "reviews", "queries"):
        assert c[name].columns == CONTRACTS[name].column_names


def test_category_tree_and_catalog(shop):
    cats = shop.clean["categories"]
    assert cats["top"].n_unique() == 8
    assert cats.group_by("top").agg(pl.col("sub").n_unique())["sub"].is_between(2, 4).all()
    assert cats.group_by("sub").len()["len"].is_between(2, 3).all()
    p = shop.clean["products"]
    assert p["category_path"].str.count_matches(" > ").eq(2).all()
    assert 40 <= p["brand"].n_unique() <= 60
    assert (p["currency"] == "USD").all() and (p["price"] > 0).all()
    assert p.select((pl.col("brand") + pl.col("title")).n_unique()).item() == p.height


def test_funnel_order_holds_per_session(shop):
    ev = shop.clean["events"]
    per = ev.pivot(on="event_type", index="session_id", values="event_id", aggregate_function="len").fill_null(0)
    for col in ("view", "click", "add_to_cart", "purchase"):
        if col not in per.columns:
            per = per.with_columns(pl.lit(0).alias(col))
    assert (per["purchase"] <= per["add_to_cart"]).all()
    assert (per["add_to_cart"] <= per["click"]).all()
    assert (per["click"] <= per["view"]).all()
    totals = ev["event_type"].value_counts().sort("count", descending=True)
    assert totals["event_type"].cast(pl.String).to_list() == ["view", "click", "add_to_cart", "purchase"]
    priced = ev.filter(pl.col("event_type").is_in(["add_to_cart", "purchase"]))
    assert priced["price"].is_not_null().all() and (priced["quantity"] >= 1).all()
    assert ev.filter(pl.col("event_type").is_in(["view", "click"]))["price"].is_null().all()


def test_item_popularity_is_zipf_like(shop):
    views = shop.clean["events"].filter(pl.col("event_type") == "view")["item_id"].value_counts()
    counts = np.sort(views["count"].to_numpy())[::-1]
    top = counts[: max(1, shop.clean["products"].height // 10)].sum()
    assert top / counts.sum() > 0.45


def test_anonymous_share_devices_and_seasonality(shop):
    ev = shop.clean["events"]
    sessions = ev.group_by("session_id").agg(pl.col("user_id").first(), pl.col("device").first())
    assert 0.05 < sessions["user_id"].is_null().mean() < 0.16
    assert set(sessions["device"].cast(pl.String).unique()) == {"web", "ios", "android"}
    hours = ev["event_time"].dt.hour().value_counts()
    by_hour = dict(zip(hours["event_time"].to_list(), hours["count"].to_list(), strict=True))
    assert by_hour.get(20, 0) > 3 * by_hour.get(4, 0)


def test_signup_precedes_activity_and_reviews_follow_purchases(shop):
    c = shop.clean
    first = (
        c["events"]
        .filter(pl.col("user_id").is_not_null())
        .group_by("user_id")
        .agg(pl.col("event_time").min().alias("first"))
    )
    j = first.join(c["users"], on="user_id")
    assert j.height == first.height
    assert (j["signup_at"] < j["first"]).all()
    assert (c["users"]["signup_at"] < shop.config.window_start - dt.timedelta(days=300)).any()

    t = shop.truth["reviews"].filter(pl.col("purchase_event_id").is_not_null() & ~pl.col("is_near_duplicate"))
    j = t.join(c["reviews"].select("review_id", "review_time"), on="review_id").join(
        c["events"].select(pl.col("event_id").alias("purchase_event_id"), "event_time", "item_id", "event_type"),
        on="purchase_event_id",
    )
    assert j.height > 0
    assert (j["review_time"] > j["event_time"]).all()
    assert (j["item_id"] == j["product_id"]).all() and (j["event_type"] == "purchase").all()


def test_event_prices_follow_the_price_history(shop):
    c = shop.clean
    hist = c["product_prices"].with_columns(pl.col("valid_from").fill_null(dt.datetime(1970, 1, 1, tzinfo=dt.UTC)))
    assert hist.group_by("product_id").len()["len"].max() > 1  # some products were repriced
    priced = (
        c["events"].filter(pl.col("price").is_not_null()).select("item_id", "event_time", "price").sort("event_time")
    )
    j = priced.join_asof(
        hist.sort("valid_from").rename({"price": "catalog_price", "product_id": "item_id"}),
        left_on="event_time",
        right_on="valid_from",
        by="item_id",
        strategy="backward",
        check_sortedness=False,
    )
    assert (j["price"] == j["catalog_price"]).all()


LEX_POS = {
    "love",
    "loved",
    "excellent",
    "amazing",
    "perfect",
    "great",
    "fantastic",
    "happy",
    "wonderful",
    "best",
    "impressed",
    "impressive",
    "delicious",
    "brilliant",
    "lovely",
    "recommend",
    "good",
    "nice",
    "pleased",
}
LEX_NEG = {
    "terrible",
    "awful",
    "worst",
    "poor",
    "poorly",
    "disappointed",
    "disappointing",
    "waste",
    "useless",
    "junk",
    "horrible",
    "bad",
    "broke",
    "stale",
    "avoid",
    "regret",
    "nightmare",
    "overpriced",
    "refund",
    "boring",
    "dull",
    "hated",
    "rash",
    "damaged",
    "uncomfortable",
    "frustrating",
    "unhappy",
}


def lexicon_score(text: str) -> int:
    words = re.findall(r"[a-z']+", text.lower())
    score = sum(w in LEX_POS for w in words) - sum(w in LEX_NEG for w in words)
    return score - 2 * len(re.findall(r"\bnot recommend", text.lower()))


def test_review_text_sentiment_agrees_with_rating_except_contradictions(shop):
    truth = shop.truth["reviews"].filter(~pl.col("is_near_duplicate"))
    landed = shop.landed["reviews"].unique("review_id", keep="first").select("review_id", "rating", "text")
    j = (
        truth.select("review_id", pl.col("rating").alias("true_rating"), "is_contradiction")
        .join(landed, on="review_id")
        .filter(pl.col("text").is_not_null() & pl.col("true_rating").is_in([1, 2, 4, 5]))
    )
    scores = np.array([lexicon_score(t) for t in j["text"]])
    positive = j["true_rating"].to_numpy() >= 4
    agrees = np.where(positive, scores > 0, scores < 0)
    contra = j["is_contradiction"].to_numpy()
    assert contra.sum() >= 1
    assert agrees[~contra].mean() > 0.97
    assert (~agrees[contra]).mean() > 0.9
    # varied wording: far from one template
    texts = shop.clean["reviews"]["text"]
    assert texts.n_unique() > 0.8 * texts.len()
    openers = texts.str.extract(r"^([^.!]*)").n_unique()
    assert openers > 25


def test_queries_have_intents_and_steer_the_session(shop):
    q = shop.truth["queries"]
    assert set(q["true_intent"].unique()) == {"product", "category", "brand", "deal", "support"}
    assert q.filter(pl.col("true_intent") == "support")["true_leaf_category"].is_null().all()
    assert q.filter(pl.col("true_intent") != "support")["true_leaf_category"].is_not_null().all()
    texts = q["query_text"]
    assert texts.n_unique() > 0.3 * texts.len()
    assert (texts.str.to_lowercase() == texts).mean() > 0.8
    assert q["has_typo"].mean() > 0.01

    # the views right after a non-support query are mostly of the query's leaf category
    ev = (
        shop.clean["events"]
        .filter(pl.col("event_type") == "view")
        .join(shop.clean["products"].select(pl.col("product_id").alias("item_id"), "category_path"), on="item_id")
    )
    qs = q.filter(pl.col("true_intent") != "support").join(
        shop.clean["queries"].select("query_id", "query_time"), on="query_id"
    )
    nxt = (
        qs.join(ev.select("session_id", "event_time", "category_path"), on="session_id")
        .filter(pl.col("event_time") > pl.col("query_time"))
        .sort("event_time")
        .group_by("query_id")
        .head(2)
    )
    share = (nxt["category_path"] == nxt["true_leaf_category"]).mean()
    assert share > 0.5


# --- faults ------------------------------------------------------------------------------------------------


def test_fault_rates_match_configuration_and_truth(shop):
    obs = fault_rates_observed(shop)
    assert obs["injected"].sum() == shop.faults.height - 1  # schema drift: 2 truth rows, 1 file
    kinds = set(obs["kind"])
    assert set(DEFAULT_FAULT_RATES) <= kinds and "schema_drift" in kinds
    for r in obs.filter(pl.col("configured_rate").is_not_null()).iter_rows(named=True):
        if r["kind"] == "bot_session":  # whole sessions of at least 200 events
            assert r["injected"] >= exact_count(r["configured_rate"], r["rows"]), r
            continue
        assert r["injected"] == exact_count(r["configured_rate"], r["rows"]), r
        assert abs(r["rate"] - r["configured_rate"]) <= max(0.25 * r["configured_rate"], 1.5 / r["rows"]), r
    big = fault_rates_observed(generate_shop(ShopConfig(n_events=N, end_date=END, fault_rates={"null_optional": 0.05})))
    row = big.filter((pl.col("kind") == "null_optional") & (pl.col("source") == "events")).row(0, named=True)
    assert row["rate"] == pytest.approx(0.05, rel=0.01)


def test_every_truth_row_points_at_its_record(shop, landed):
    root, _ = landed
    landing = root / "landing"
    faults = shop.faults.filter(pl.col("row_number").is_not_null())
    assert faults.height > 500
    for (file,), rows in faults.group_by("file", maintain_order=True):
        records = read_records(landing / file)
        key = KEYS[rows["source"][0]]
        for row_number, expected in zip(rows["row_number"], rows["key"], strict=True):
            assert 1 <= row_number <= len(records)
            assert records[row_number - 1][key] == expected, (file, row_number)


def test_landed_record_counts_match_the_shop(shop, landed):
    root, summary = landed
    for row in shop.files.iter_rows(named=True):
        assert len(read_records(root / "landing" / row["file"])) == row["rows"], row["file"]
    assert summary.rows_by_source["events"] == shop.landed["events"].height > N


def test_faults_are_visible_in_the_files(shop, landed):
    """Independent checks on the files agree with the truth counts."""
    root, _ = landed
    landing = root / "landing"
    f = shop.faults
    count = Counter(zip(f["source"], f["fault"], strict=True))

    events = [r for p in sorted((landing / "events").rglob("*.*")) for r in read_records(p)]
    ids = Counter(r["event_id"] for r in events)
    assert sum(n - 1 for n in ids.values()) == count["events", "exact_duplicate"] + count["events", "key_duplicate"]
    negative = 0
    for r in events:
        try:
            negative += float(r["price"]) < 0
        except (TypeError, ValueError):
            pass
    assert negative == count["events", "negative_price"]
    users = set(shop.clean["users"]["user_id"])
    assert (
        sum(r["user_id"] is not None and r["user_id"] not in users for r in events) == count["events", "unknown_user"]
    )
    assert sum(r.get("currency") in ("EUR", "GBP") for r in events) == count["events", "foreign_currency"]
    # the bot sessions: hundreds of views in a couple of minutes
    bots = {d.split(":")[0].removeprefix("bot session ") for d in f.filter(pl.col("fault") == "bot_session")["detail"]}
    per_session = Counter(r["session_id"] for r in events if r["session_id"] in bots)
    assert per_session and all(n >= 200 for n in per_session.values())

    reviews = [r for p in sorted((landing / "reviews").rglob("*.csv")) for r in read_records(p)]
    bad = sum(
        r["rating"] is not None and re.fullmatch(r"-?\d+", r["rating"]) is not None and not 1 <= int(r["rating"]) <= 5
        for r in reviews
    )
    assert bad == count["reviews", "rating_out_of_range"]
    future = sum(
        r["review_time"] is not None and r["review_time"][:4].isdigit() and r["review_time"] > "2090" for r in reviews
    )
    assert future == count["reviews", "future_timestamp"]
    assert sum(r["review_time"] == "1970-01-01 00:00:00" for r in reviews) == count["reviews", "epoch_zero_timestamp"]

    # numbers as strings and unparsable values: the file holds exactly the text the truth quotes
    for kind in ("number_as_string", "unparsable_value"):
        sample = f.filter(pl.col("fault") == kind)
        for r in sample.iter_rows(named=True):
            record = read_records(landing / r["file"])[r["row_number"] - 1]
            col = r["column"]
            if r["file"] == shop.schema_drift["file"]:
                col = shop.schema_drift["renamed"].get(col, col)
            written = r["detail"].split("'")[1]
            assert str(record[col]) == written or (written == "" and record[col] in ("", None)), r

    products = pl.read_parquet(landing / shop.files.filter(pl.col("source") == "products")["file"][0])
    truth = shop.truth["products"]
    mis = truth.filter(pl.col("is_miscategorised"))
    j = products.join(mis, on="product_id")
    assert j.height > 0
    assert (j["category_path"].str.split(" > ").list.first() != j["true_top_category"]).all()
    dups = truth.filter(pl.col("is_duplicate"))
    assert dups.height == count["products", "near_duplicate_product"] + count["products", "reworded_duplicate_product"]
    titles = products.join(dups, on="product_id").join(
        products.select(
            pl.col("product_id").alias("duplicate_of"),
            pl.col("title").alias("orig_title"),
            pl.col("brand").alias("orig_brand"),
        ),
        on="duplicate_of",
    )
    near = titles.filter(pl.col("duplicate_kind") == "near_duplicate")
    norm = lambda c: pl.col(c).str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")  # noqa: E731
    assert near.height and near.select((norm("title") == norm("orig_title")).all()).item()


def test_pii_lands_in_text(shop):
    pii = shop.faults.filter(pl.col("fault") == "pii_in_text")
    assert pii.height >= 2
    for source, col in (("reviews", "text"), ("queries", "query_text")):
        rows = pii.filter(pl.col("source") == source)
        landed = shop.landed[source].select(pl.col(KEYS[source]).alias("key"), col).unique("key", keep="first")
        j = rows.join(landed, on="key")
        for detail, text in zip(j["detail"], j[col], strict=True):
            value = detail.split(": ", 1)[1]
            assert value in text


def test_broken_utf8_is_really_invalid(shop, landed):
    root, _ = landed
    landing = root / "landing"
    broken = shop.faults.filter(pl.col("fault") == "broken_utf8")
    assert broken.height >= 2
    per_file = Counter(broken["file"])
    for row in shop.files.iter_rows(named=True):
        if row["format"] == "parquet":
            continue
        lines = (landing / row["file"]).read_bytes().split(b"\n")
        offset = 1 if row["format"] == "csv" else 0  # header
        invalid = []
        for i, line in enumerate(lines):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                invalid.append(i + 1 - offset)
        assert len(invalid) == per_file.get(row["file"], 0), row["file"]
        expected = broken.filter(pl.col("file") == row["file"])["row_number"].to_list()
        assert sorted(invalid) == sorted(expected)
    marks = tuple(m.encode() for m in BROKEN_UTF8)
    for p in landing.rglob("*"):
        if p.is_file() and p.suffix != ".parquet":
            data = p.read_bytes()
            assert not any(m in data for m in marks), p


def test_exactly_one_schema_drift_file(shop, landed):
    root, _ = landed
    expected = CONTRACTS["events"].column_names
    drifted = []
    for row in shop.files.filter(pl.col("source") == "events").iter_rows(named=True):
        path = root / "landing" / row["file"]
        cols = list(read_records(path)[0]) if row["format"] != "parquet" else pl.read_parquet_schema(path).names()
        if cols != expected:
            drifted.append((row["file"], cols))
    assert len(drifted) == 1
    file, cols = drifted[0]
    assert "ts" in cols and "event_time" not in cols and "campaign_id" in cols
    assert CONTRACTS["events"].alias_map()["ts"] == "event_time"
    assert shop.schema_drift["file"] == file
    assert set(shop.faults.filter(pl.col("fault") == "schema_drift")["file"]) == {file}


def test_truth_and_manifest_are_written(shop, landed):
    root, summary = landed
    truth = root / "truth"
    faults = pl.read_parquet(truth / "faults.parquet")
    assert faults.columns == ["source", "file", "row_number", "key", "fault", "column", "detail"]
    assert faults.height == shop.faults.height
    for name in ("products", "reviews", "queries"):
        assert pl.read_parquet(truth / f"{name}.parquet").height == shop.truth[name].height
    manifest = json.loads((truth / "manifest.json").read_text())
    assert manifest["config"]["n_events"] == N and manifest["config"]["end_date"] == END.isoformat()
    assert sum(manifest["faults_by_kind"].values()) == faults.height
    assert manifest["schema_drift"]["file"] == summary.schema_drift_file
    layout = re.compile(r"^(events|products|users|reviews|queries)/\d{4}-\d{2}-\d{2}/[a-z0-9-]+\.(csv|jsonl|parquet)$")
    assert all(layout.match(p) for p in shop.files["file"])
    fmts = shop.files.filter(pl.col("source") == "events").group_by("day").agg(pl.col("format").first()).sort("day")
    assert set(fmts["format"]) == {"csv", "jsonl", "parquet"}
