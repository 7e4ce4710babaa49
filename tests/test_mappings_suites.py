"""Suites that fit the shop they run on: the generated shop keeps its suites; another shop keeps the
platform-wide expectations, gets no row checks for sources it does not send, and gets proposals for
its shop-dependent ones from its own profiled history (`suggest`)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from governance.cleaning import clean_frame
from governance.cleaning.engine import Context
from governance.collection import collect, landed_files, landed_partitions
from governance.contracts import CONTRACTS
from governance.importers import import_export
from governance.mappings import land
from governance.quality.profile import profile_frame
from governance.quality.suggest import is_shop_dependent, suggest, suites_for_shop, write_proposals
from governance.quality.suites import load_suite, load_suites
from governance.quality.validation import validate

NOW = datetime(2026, 11, 21, 6, tzinfo=UTC)
EXPECTATIONS = Path(__file__).resolve().parents[1] / "expectations"
EMPTY = {"products": pl.DataFrame(schema={"product_id": pl.String, "price": pl.Float64, "category_path": pl.String}),
         "product_ids": pl.DataFrame(schema={"product_id": pl.String}),
         "users": pl.DataFrame(schema={"user_id": pl.String}), "user_ids": pl.DataFrame(schema={"user_id": pl.String}),
         "product_id_map": pl.DataFrame(schema={"duplicate_id": pl.String, "canonical_id": pl.String})}


@pytest.fixture(scope="module")
def suites():
    return load_suites(EXPECTATIONS, layers=["clean"])


def test_the_generated_shop_keeps_its_suites(suites):
    assert suites_for_shop(suites) == suites
    assert suites_for_shop(suites, "generated") == suites


def test_another_shop_keeps_platform_rules_and_no_row_checks_for_sources_it_does_not_send(suites):
    fitted = suites_for_shop(suites, "tienda", sends=["events"], directory=EXPECTATIONS)
    events = {e.check_name: e for e in fitted["clean.events"].expectations}
    # the contract's rules stay blocking for every shop
    assert any(e.type == "expect_column_values_to_be_unique" for e in events.values())
    assert any(e.type == "expect_column_values_to_be_in_set" and e.column == "event_type" and e.blocking
               for e in events.values())
    # the generated shop's price band and row counts do not
    assert not any(e.type == "expect_column_values_to_be_between" and e.column == "price" for e in events.values())
    for table in ("clean.products", "clean.users", "clean.reviews", "clean.queries", "clean.events"):
        assert not any(e.type == "expect_table_row_count_to_be_between" for e in fitted[table].expectations), table
    assert not any(e.type == "expect_column_values_to_match_regex" and e.column == "category_path"
                   for e in fitted["clean.products"].expectations)
    # the generated shop, told it sends no reviews, is not checked for review rows either
    own = suites_for_shop(suites, None, sends=["events", "products", "users", "queries"])
    assert not any(e.type == "expect_table_row_count_to_be_between" for e in own["clean.reviews"].expectations)
    assert any(e.type == "expect_table_row_count_to_be_between" for e in own["clean.events"].expectations)
    regex = next(e for e in suites["clean.products"].expectations
                 if e.type == "expect_column_values_to_match_regex" and e.column == "category_path")
    assert is_shop_dependent("clean.products", regex)
    unique = next(e for e in suites["clean.events"].expectations if e.type == "expect_column_values_to_be_unique")
    assert not is_shop_dependent("clean.events", unique)


def test_a_real_catalog_fails_the_generated_shops_suite_but_not_its_own(tmp_path, shared_data, suites):
    import_export("instacart", shared_data / "instacart_sample", tmp_path)
    raw = collect(CONTRACTS["products"], landed_files(tmp_path, "products", None), landing_root=tmp_path,
                  partition=None, run_id="t", ingested_at=NOW).raw
    clean = clean_frame("products", raw, Context("products", None, "t", NOW)).clean
    generated = validate(suites["clean.products"], clean)
    assert not generated.success  # three-level category paths: the generated shop's, not Instacart's
    fitted = suites_for_shop(suites, "instacart", sends=["products", "events"], directory=EXPECTATIONS)
    assert validate(fitted["clean.products"], clean).success


def test_suggest_proposes_a_suite_from_the_shops_history_and_a_person_accepts_it(tmp_path, shared_data, suites):
    land("diginetica", shared_data / "diginetica_sample", tmp_path / "landing")
    days = landed_partitions(tmp_path / "landing", "events")[-12:]
    cleaned = {}
    for day in days:
        raw = collect(CONTRACTS["events"], landed_files(tmp_path / "landing", "events", day),
                      landing_root=tmp_path / "landing", partition=day, run_id="t", ingested_at=NOW).raw
        cleaned[day] = clean_frame("events", raw, Context("events", day, "t", NOW, references=dict(EMPTY))).clean
    history = [profile_frame(cleaned[d], "clean.events", d, suites["clean.events"].profile_config) for d in days[:-1]]
    proposal = suggest("clean.events", history, shop="diginetica")
    written = write_proposals({"clean.events": proposal}, tmp_path / "expectations" / "diginetica" / "suggested")
    suite = load_suite(written[0])
    rows = next(e for e in suite.expectations if e.type == "expect_table_row_count_to_be_between")
    counts = [cleaned[d].height for d in days[:-1]]
    assert rows.blocking and rows.kwargs["min_value"] <= min(counts) and rows.kwargs["max_value"] >= max(counts)
    event_types = next(e for e in suite.expectations if e.type == "expect_column_values_to_be_in_set"
                       and e.column == "event_type")
    assert event_types.kwargs["value_set"] == ["view"]
    assert suite.meta["status"] == "proposed"
    # accepted: moved next to the shop's suites; the last day (not in the history) passes them all
    shutil.copytree(EXPECTATIONS, tmp_path / "exp", ignore=shutil.ignore_patterns("*.md"))
    (tmp_path / "exp" / "diginetica").mkdir()
    shutil.move(written[0], tmp_path / "exp" / "diginetica" / "clean.events.json")
    fitted = suites_for_shop(load_suites(tmp_path / "exp", layers=["clean"]), "diginetica", sends=["events"],
                             directory=tmp_path / "exp")
    names = {e.check_name for e in fitted["clean.events"].expectations}
    assert "row_count_between" in names or any("row_count" in n for n in names)
    result = validate(fitted["clean.events"], cleaned[days[-1]], partition=days[-1])
    assert result.success, [r.check_name for r in result.failed("error")]
