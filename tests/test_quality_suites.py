"""Suites as files: every clean.* suite loads, is GX's own format, and bad files fail loudly at load time."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from governance.cleaning.schema import clean_schema
from governance.contracts import CONTRACTS
from governance.quality.suites import SEVERITIES, SuiteError, condition_columns, load_suite, load_suites
from governance.quality.validation import gx_type_name
from test_quality_support import SUITES


def test_every_clean_table_has_a_suite_that_loads():
    suites = load_suites(SUITES, layers=["clean"])
    assert set(suites) == {f"clean.{s}" for s in CONTRACTS}
    for table, suite in suites.items():
        assert len(suite.expectations) >= 15, table
        assert suite.key and all(k in clean_schema(table.split(".")[1]) for k in suite.key)
        for e in suite.expectations:
            assert e.severity in SEVERITIES and e.notes and "\n" not in e.notes


def test_suites_cover_what_the_issue_asks_for():
    events = load_suite(SUITES / "clean.events.json")
    types = {e.type for e in events.expectations}
    assert {"expect_table_columns_to_match_ordered_list", "expect_column_values_to_be_of_type",
            "expect_column_values_to_not_be_null", "expect_column_values_to_be_unique",
            "expect_column_values_to_be_in_set", "expect_column_values_to_be_between",
            "expect_table_row_count_to_be_between", "expect_column_mean_to_be_between",
            "expect_column_quantile_values_to_be_between"} <= types
    assert {r.table_name for r in events.references} == {"clean.products", "clean.users"}
    reviews = load_suite(SUITES / "clean.reviews.json")
    rating = [e for e in reviews.expectations if e.column == "rating" and e.type == "expect_column_values_to_be_in_set"]
    assert rating and rating[0].kwargs["value_set"] == [1, 2, 3, 4, 5]
    products = load_suite(SUITES / "clean.products.json")
    per_category = [e for e in products.expectations if e.kwargs.get("row_condition", "").startswith("category_l1")]
    assert len(per_category) >= 8  # price ranges per top category


def test_type_expectations_match_the_clean_schema():
    """A suite's GX type names must be what our pandas conversion produces for the clean schema."""
    for table, suite in load_suites(SUITES, layers=["clean"]).items():
        schema = clean_schema(table.split(".")[1])
        for e in suite.expectations:
            if e.type == "expect_column_values_to_be_of_type":
                assert e.kwargs["type_"] == gx_type_name(schema[e.column]), (table, e.column)
            if e.type == "expect_table_columns_to_match_ordered_list":
                assert e.kwargs["column_list"] == list(schema), table


def test_suite_files_are_gx_suites_gx_can_read():
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuiteSchema

    for path in sorted(SUITES.glob("clean.*.json")):
        doc = json.loads(path.read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = ExpectationSuiteSchema().load(doc)
            suite = gx.ExpectationSuite(**loaded)
        assert suite.name == path.stem
        assert len(suite.expectations) == len(doc["expectations"])
        assert all(e.meta["severity"] in SEVERITIES for e in suite.expectations)


def _write(tmp_path: Path, name: str, expectations, **extra) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "expectations": expectations,
                                "meta": {"table": name, "key": ["event_id"], **extra}}))
    return path


def _ok(**kw):
    entry = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "event_id"},
             "meta": {"severity": "error"}, "notes": "Every event has an id."}
    entry.update(kw)
    return entry


def test_malformed_json_names_file_and_position(tmp_path):
    path = tmp_path / "clean.events.json"
    path.write_text('{"name": "clean.events", "expectations": [\n  {"type": "x",}\n]}')
    with pytest.raises(SuiteError, match=r"clean\.events\.json: not valid JSON at line 2"):
        load_suite(path)


@pytest.mark.parametrize(("entry", "message"), [
    (_ok(kwargs={"column": "evnt_id"}), r"expectations\[1\] \(expect_column_values_to_not_be_null\): unknown column"
                                        r"\(s\) \['evnt_id'\]"),
    (_ok(type="expect_column_values_to_be_spotless"), r"expectations\[1\] \(expect_column_values_to_be_spotless\): "
                                                      r"GX rejects it"),
    (_ok(meta={"severity": "fatal"}), r"expectations\[1\].*meta.severity must be one of \['error', 'warn'\]"),
    (_ok(meta={}), r"expectations\[1\].*meta.severity"),
    (_ok(notes=""), r"expectations\[1\].*'notes' must be a one-line explanation"),
    (_ok(notes="two\nlines"), r"expectations\[1\].*'notes' must be one line"),
    (_ok(severity="critical", meta={"severity": "warn"}), r"GX severity 'critical' contradicts meta.severity 'warn'"),
    (_ok(type="expect_column_values_to_be_between", kwargs={"column": "price", "min_value": "a", "max_value": 5,
                                                            "mostly": 7}), r"GX rejects it"),
    (_ok(type="expect_column_values_to_be_in_set", kwargs={"column": "item_id",
                                                           "value_set": {"$PARAMETER": "ref__clean__products__sku"}}),
     r"unknown column 'sku' of clean.products"),
    (_ok(type="expect_column_values_to_be_in_set", kwargs={"column": "item_id",
                                                           "value_set": {"$PARAMETER": "todays_items"}}),
     r"unknown suite parameter 'todays_items'"),
    (_ok(kwargs={"column": "price", "row_condition": 'categry == "Books"', "condition_parser": "pandas"}),
     r"unknown column\(s\) \['categry'\]"),
    (_ok(kwargs={"column": "price", "row_condition": 'event_type ==', "condition_parser": "pandas"}),
     r"not a valid pandas query expression"),
    ({"type": "expect_column_values_to_not_be_null"}, r"expectations\[1\].*missing 'kwargs'"),
    (["not", "an", "object"], r"expectations\[1\] \(\?\): must be a JSON object"),
])
def test_bad_entries_are_clear_errors_naming_file_and_entry(tmp_path, entry, message):
    path = _write(tmp_path, "clean.events", [_ok(), entry])
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(path) in str(err.value)
    assert err.match(message)


def test_suite_level_errors(tmp_path):
    path = tmp_path / "clean.events.json"
    path.write_text(json.dumps({"name": "clean.event", "expectations": [_ok()]}))
    with pytest.raises(SuiteError, match="must equal the file name"):
        load_suite(path)
    with pytest.raises(SuiteError, match="check name 'event_id_not_null' is already used by expectations\\[0\\]"):
        load_suite(_write(tmp_path, "clean.events", [_ok(), _ok()]))
    with pytest.raises(SuiteError, match="meta.key must list columns"):
        load_suite(_write(tmp_path, "clean.events", [_ok()], key=["nope"]))
    with pytest.raises(SuiteError, match="schema of integrated.nowhere is unknown"):
        load_suite(_write(tmp_path, "integrated.nowhere", [_ok()], key=[]))


def test_unregistered_table_takes_its_columns_from_its_column_list(tmp_path):
    cols = {"type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": ["a", "b"]},
            "meta": {"severity": "error"}, "notes": "Columns."}
    good = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"severity": "warn"},
            "notes": "a is set."}
    suite = load_suite(_write(tmp_path, "labelled.things", [cols, good], key=["a"]))
    assert [e.check_name for e in suite.expectations] == ["columns", "a_not_null"]
    bad = dict(good, kwargs={"column": "c"})
    with pytest.raises(SuiteError, match=r"expectations\[1\].*unknown column\(s\) \['c'\]"):
        load_suite(_write(tmp_path, "labelled.things", [cols, bad], key=["a"]))


def test_condition_columns():
    assert condition_columns('category_l1 == "Books" and price > 3') == {"category_l1", "price"}
    assert condition_columns("user_unknown == False") == {"user_unknown"}


def test_check_names_depend_only_on_the_expectation():
    from governance.quality.suites import derive_check_name, table_schema

    pair = "expect_column_pair_values_a_to_be_greater_than_b"
    assert derive_check_name(pair, {"column_A": "session_end", "column_B": "session_start",
                                    "or_equal": True}) == "session_end_ge_session_start"
    assert derive_check_name(pair, {"column_A": "valid_to", "column_B": "valid_from"}) == "valid_to_gt_valid_from"
    assert derive_check_name("expect_column_values_to_be_unique", {"column": "event_id"}) == "event_id_unique"
    # the integrated tables' columns come from the integration stage's declared schemas, asked on demand
    from governance.integration.schemas import SCHEMAS

    assert table_schema("integrated.sessions") == dict(SCHEMAS["sessions"])
    assert table_schema("integrated.nowhere") is None and table_schema("labelled.things") is None


def test_no_shipped_check_name_is_a_running_count():
    import re

    suites = load_suites(SUITES)
    assert {"clean.events", "integrated.users", "integrated.sessions"} <= set(suites)
    names = {t: [e.check_name for e in s.expectations] for t, s in suites.items()}
    counted = [(t, n) for t, ns in names.items() for n in ns if re.search(r"_\d+$", n)]
    assert not counted, counted
    assert {"last_seen_at_ge_first_seen_at", "sessions_ge_orders"} <= set(names["integrated.users"])


def test_integrated_suite_generator_refuses_colliding_names(monkeypatch):
    from governance.integration import suites as gen

    twice = gen._e("expect_column_values_to_be_between", "x.", column="events", min_value=1)
    monkeypatch.setattr(gen, "_specific", lambda table: [twice, dict(twice, meta=dict(twice["meta"]))])
    with pytest.raises(ValueError, match="'events_in_range'.*give one a check_name"):
        gen.build_suite("interactions")
