"""Numbers and locales: the decimal separator is decided per file and column from the column's values;
a value the column does not decide is quarantined with the reason, never multiplied by 100."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from governance.collection import read_landed_file
from governance.contracts import PRODUCTS
from governance.parsing import number_format, parse_column

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def read_prices(tmp_path: Path, prices: list[str], name: str = "p.csv"):
    lines = ["product_id;title;category_path;price"] + [f"p{i};T{i};A > B;{p}" for i, p in enumerate(prices)]
    path = tmp_path / "products" / "2026-11-10" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_landed_file(path, PRODUCTS, landing_root=tmp_path, partition=None, run_id="t", ingested_at=NOW)


def prices_of(raw: pl.DataFrame) -> dict[str, float | None]:
    return dict(zip(raw["product_id"], raw["price"], strict=True))


def test_a_decimal_comma_column_is_read_as_decimals_not_times_100(tmp_path):
    raw, quarantine, audit, report = read_prices(tmp_path, ["35,79", "12,5", "1.299,00", "7", "1.234"])
    assert quarantine.is_empty()
    assert prices_of(raw) == {"p0": 35.79, "p1": 12.5, "p2": 1299.0, "p3": 7.0, "p4": 1234.0}
    assert report.number_formats["price"].startswith("decimal comma")
    assert set(audit["original"]) == {"35,79", "12,5", "1.299,00", "1.234"}


def test_a_decimal_point_column_reads_commas_as_thousands(tmp_path):
    raw, quarantine, _, report = read_prices(tmp_path, ["35.79", "1,299.00", "1,299", "2,500,000"])
    assert quarantine.is_empty()
    assert prices_of(raw) == {"p0": 35.79, "p1": 1299.0, "p2": 1299.0, "p3": 2_500_000.0}
    assert report.number_formats["price"].startswith("decimal point")


def test_a_value_against_the_columns_decision_is_quarantined_with_the_reason(tmp_path):
    raw, quarantine, _, _ = read_prices(tmp_path, ["35.79", "12.50", "9.99", "35,79"])
    assert prices_of(raw) == {"p0": 35.79, "p1": 12.5, "p2": 9.99}
    row = quarantine.row(0, named=True)
    assert row["rule"] == "ambiguous_number" and row["row_number"] == 4
    assert "'35,79'" in row["reason"] and "decide '.'" in row["reason"] and "3 value(s) with a decimal point" in row["reason"]


def test_an_undecided_comma_is_never_guessed(tmp_path):
    raw, quarantine, _, report = read_prices(tmp_path, ["1,299", "15", "20"])
    assert prices_of(raw) == {"p1": 15.0, "p2": 20.0}
    assert quarantine["rule"].to_list() == ["ambiguous_number"]
    assert "do not decide" in quarantine["reason"][0]
    assert report.number_formats["price"].startswith("undecided")


def test_currency_symbols_and_spaces_are_removed_and_audited(tmp_path):
    raw, quarantine, audit, _ = read_prices(tmp_path, ["€ 1.299,00", "1 299,50", "35,79 EUR", "4,00\u00a0€"])
    assert quarantine.is_empty()
    assert prices_of(raw) == {"p0": 1299.0, "p1": 1299.5, "p2": 35.79, "p3": 4.0}
    assert audit.filter(pl.col("original") == "€ 1.299,00")["fixed"].to_list() == ["1299.0"]


def test_each_file_decides_its_own_columns(tmp_path):
    raw_a, qa, _, ra = read_prices(tmp_path, ["35,79", "1,5"], "a.csv")
    raw_b, qb, _, rb = read_prices(tmp_path, ["35.79", "1,500.5"], "b.csv")
    assert prices_of(raw_a) == {"p0": 35.79, "p1": 1.5} and prices_of(raw_b) == {"p0": 35.79, "p1": 1500.5}
    assert qa.is_empty() and qb.is_empty()


@pytest.mark.parametrize("values, decided", [
    (["1,5", "2,25", "1.000,5"], ","), (["1.5", "1,000.25"], "."), (["1,234", "5"], "?"), (["0,500"], ","),
])
def test_number_format_evidence(values, decided):
    assert number_format(pl.Series(values))[0] == decided


def test_integer_columns_follow_the_same_decision():
    parsed = parse_column(pl.Series("quantity", ["1.000", "2,5", "3"]), "int")
    # the column decides ',' (2,5): 1.000 is one thousand; 2,5 is not a whole number
    assert parsed.values.to_list() == [1000, None, 3]
    assert parsed.failed.to_list() == [False, True, False]
