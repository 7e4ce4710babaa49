"""Duplicates across days: exact and key duplicates re-sent on a later day are found through the key
index within the look-back window; the earliest delivery is kept and the reason says so; cleaning
the same days forwards, backwards and shuffled gives exactly the same tables."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from governance.cleaning import clean_partition
from governance.cleaning.keyindex import partition_index
from governance.collection import ingest_partition, landed_partitions
from governance.contracts import CONTRACTS
from governance.storage import Lake

NOW = datetime(2026, 11, 21, 6, tzinfo=UTC)
HEADER = "event_id,session_id,user_id,item_id,event_type,event_time,device"
PRODUCTS = "product_id,title,brand,category_path,price\np1,Red kettle,Acme,Home > Kitchen,20\np2,Blue mug,Acme,Home > Kitchen,5\n"
USERS = "user_id,email,signup_at\nu1,a@example.com,2026-01-01T00:00:00Z\n"


def ev(i: str, day: str, minute: int, device: str = "web", item: str = "p1") -> str:
    return f"e{i},s{i},u1,{item},view,{day}T10:{minute:02d}:00Z,{device}"


DAYS = {
    "2026-11-01": [ev("1", "2026-11-01", 1), ev("2", "2026-11-01", 2), ev("3", "2026-11-01", 3), ev("4", "2026-11-01", 4)],
    "2026-11-02": [ev("5", "2026-11-02", 1), ev("2", "2026-11-01", 2),  # exact copy of day 1's e2
                   ev("3", "2026-11-01", 3, device="ios"),  # e3 again, changed: a key duplicate
                   ev("5", "2026-11-02", 1)],  # exact duplicate within the day
    "2026-11-03": [ev("6", "2026-11-03", 1), ev("5", "2026-11-02", 1), ev("1", "2026-11-01", 1)],
    "2026-11-14": [ev("7", "2026-11-14", 1), ev("4", "2026-11-01", 4)],  # 13 days after e4: outside 7 days
}
REVIEWS = {
    "2026-11-01": "review_id,user_id,product_id,rating,text,review_time\n"
                  "r1,u1,p1,5,lovely kettle boils fast and looks great,2026-11-01T09:00:00Z\n",
    "2026-11-02": "review_id,user_id,product_id,rating,text,review_time\n"
                  "r2,u1,p1,5,lovely kettle boils fast and looks great!,2026-11-02T09:00:00Z\n"
                  "r3,u1,p2,4,a mug,2026-11-02T09:00:00Z\n",
}


def land(root: Path) -> Path:
    landing = root / "landing"
    for day, rows in DAYS.items():
        (landing / "events" / day).mkdir(parents=True)
        (landing / "events" / day / "a.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    for day, text in REVIEWS.items():
        (landing / "reviews" / day).mkdir(parents=True)
        (landing / "reviews" / day / "r.csv").write_text(text)
    for source, text in (("products", PRODUCTS), ("users", USERS)):
        (landing / source / "2026-11-01").mkdir(parents=True)
        (landing / source / "2026-11-01" / "x.csv").write_text(text)
    return landing


def run(root: Path, order: list[str], lookback_days: int = 7, sources=("events", "reviews")) -> Lake:
    landing, lake = land(root), Lake.at(root / "lake")
    for source in ("products", "users"):
        ingest_partition(lake, CONTRACTS[source], landing, None, run_id="t", ingested_at=NOW)
        clean_partition(lake, source, None, run_id="t", now=NOW)
    for source in sources:
        for day in landed_partitions(landing, source):  # collection first, in landing order
            ingest_partition(lake, CONTRACTS[source], landing, day, run_id="t", ingested_at=NOW)
        for day in order:
            if day in landed_partitions(landing, source):
                assert clean_partition(lake, source, day, run_id="t", now=NOW, lookback_days=lookback_days).conserved
    return lake


def tables(lake: Lake, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    clean = lake.scan("clean", source).collect().drop("_ingested_at").sort("_source_file", "_row_number")
    quarantine = (lake.scan("quarantine", source, part="cleaning").collect()
                  .drop("run_id", "quarantined_at").sort("file", "row_number"))
    return clean, quarantine


def test_duplicates_resent_on_later_days_are_found_and_the_earliest_delivery_is_kept(tmp_path):
    lake = run(tmp_path, sorted(DAYS))
    _, q = tables(lake, "events")
    found = {(r["file"], r["row_number"]): (r["rule"], r["reason"]) for r in q.iter_rows(named=True)}
    assert set(found) == {("events/2026-11-02/a.csv", 2), ("events/2026-11-02/a.csv", 3),
                          ("events/2026-11-02/a.csv", 4), ("events/2026-11-03/a.csv", 2),
                          ("events/2026-11-03/a.csv", 3)}
    rule, reason = found[("events/2026-11-02/a.csv", 2)]
    assert rule == "exact_duplicate"
    assert reason == ("exact duplicate of events/2026-11-01/a.csv row 2, delivered earlier (partition 2026-11-01); "
                      "the earliest delivery is kept")
    rule, reason = found[("events/2026-11-02/a.csv", 3)]
    assert rule == "key_duplicate" and reason == (
        "event_id e3 was already delivered in events/2026-11-01/a.csv row 3 (partition 2026-11-01); this later "
        "copy is quarantined (policy: the earliest delivery wins)")
    assert "delivered earlier in this partition" in found[("events/2026-11-02/a.csv", 4)][1]
    assert "row 1, delivered earlier (partition 2026-11-02)" in found[("events/2026-11-03/a.csv", 2)][1]
    clean = lake.scan("clean", "events").collect()
    # the originals stay clean, e4's copy 13 days later is outside the 7-day window
    assert clean.filter(pl.col("event_id") == "e3")["device"].to_list() == ["web"]
    assert clean.filter(pl.col("event_id") == "e4").height == 2


def test_the_lookback_window_is_configurable(tmp_path):
    lake = run(tmp_path, sorted(DAYS), lookback_days=14, sources=("events",))
    _, q = tables(lake, "events")
    assert ("events/2026-11-14/a.csv", 2) in set(zip(q["file"], q["row_number"], strict=True))


@pytest.mark.parametrize("order", ["backwards", "shuffled"])
def test_cleaning_days_in_any_order_gives_the_same_tables(tmp_path, order):
    forwards = run(tmp_path / "f", sorted(DAYS))
    days = sorted(DAYS, reverse=True) if order == "backwards" else random.Random(5).sample(sorted(DAYS), len(DAYS))
    other = run(tmp_path / "o", days)
    for source in ("events", "reviews"):
        clean_f, q_f = tables(forwards, source)
        clean_o, q_o = tables(other, source)
        assert clean_f.equals(clean_o), source
        assert q_f.equals(q_o), source
    _, q = tables(forwards, "reviews")
    assert q["rule"].to_list() == ["near_duplicate_review"]  # r2 repeats r1 a day later


def test_the_key_index_is_compact_and_cached(tmp_path):
    lake = run(tmp_path, sorted(DAYS), sources=("events",))
    index = partition_index(lake, "events", "2026-11-01")
    assert index.columns == ["k1", "k2", "r1", "r2", "file", "row", "partition"] and index.height == 4
    cached = tmp_path / "lake" / "_meta" / "keys" / "events" / "2026-11-01.parquet"
    assert cached.exists()
