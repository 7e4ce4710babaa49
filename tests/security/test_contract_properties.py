"""Property-based tests (hypothesis) of the contract reader: whatever lands, nothing raises, every row
is landed or quarantined exactly once, kept records are valid JSON, and valid rows land unchanged."""

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.collection import read_bounded
from governance.contracts import EVENTS

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
ROOT = Path("/landing")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ident = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12)
anything = st.one_of(st.none(), ident, st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                     st.booleans())


def read(name: str, data: bytes):
    return read_bounded(ROOT / "events" / "2026-11-10" / name, EVENTS, landing_root=ROOT, partition="2026-11-10",
                        run_id="prop", ingested_at=NOW, data=data, max_record_bytes=4096)


def check(raw: pl.DataFrame, quarantine: pl.DataFrame, report) -> None:
    assert report.rows_in_file == raw.height + quarantine.height == report.rows_landed + report.rows_quarantined
    numbers = pl.concat([raw["_row_number"], quarantine["row_number"].drop_nulls()])
    assert numbers.n_unique() == len(numbers)  # a row is landed or quarantined, never both, never twice
    for record in quarantine["record"].drop_nulls():
        json.loads(record)
    assert set(raw.columns) >= set(EVENTS.column_names)


@SETTINGS
@given(st.lists(st.fixed_dictionaries({c: anything for c in EVENTS.column_names}), min_size=1, max_size=20),
       st.sampled_from([",", ";", "\t", "|"]))
def test_any_values_written_as_csv_are_accounted_for(rows, sep):
    frame = pl.DataFrame([{k: (None if v is None else str(v)) for k, v in r.items()} for r in rows],
                         schema={c: pl.String for c in EVENTS.column_names})
    buf = io.BytesIO()
    frame.write_csv(buf, separator=sep)
    raw, quarantine, _, report = read("p.csv", buf.getvalue())
    check(raw, quarantine, report)


@SETTINGS
@given(st.lists(st.dictionaries(st.sampled_from(EVENTS.column_names + ["extra", "nested"]),
                                st.recursive(anything, lambda c: st.lists(c, max_size=3) | st.dictionaries(ident, c, max_size=3),
                                             max_leaves=6), max_size=10), min_size=1, max_size=15))
def test_any_json_lines_are_accounted_for(rows):
    data = "\n".join(json.dumps(r) for r in rows).encode() + b"\n"
    raw, quarantine, _, report = read("p.jsonl", data)
    check(raw, quarantine, report)


@SETTINGS
@given(st.binary(max_size=3000), st.sampled_from(["g.csv", "g.jsonl", "g.parquet", "g.tsv", "g.bin"]))
def test_arbitrary_bytes_never_raise_and_are_accounted_for(data, name):
    raw, quarantine, _, report = read(name, data)
    check(raw, quarantine, report)
    if quarantine.height:
        assert quarantine["file"].unique().to_list() == ["events/2026-11-10/" + name]


valid_row = st.fixed_dictionaries({
    "event_id": st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=16),
    "session_id": st.text("abcdef0123456789", min_size=1, max_size=8),
    "item_id": st.text("p0123456789", min_size=1, max_size=8),
    "event_type": st.sampled_from(["view", "click", "add_to_cart", "purchase"]),
    "event_time": st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)).map(
        lambda d: d.replace(microsecond=0, tzinfo=UTC)),
    "price": st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=2).map(float)),
    "quantity": st.one_of(st.none(), st.integers(0, 1000)),
})


@SETTINGS
@given(st.lists(valid_row, min_size=1, max_size=25, unique_by=lambda r: r["event_id"]), st.sampled_from(["csv", "jsonl"]))
def test_valid_rows_land_whole_and_unchanged(rows, fmt):
    frame = pl.DataFrame(rows, schema={"event_id": pl.String, "session_id": pl.String, "item_id": pl.String,
                                       "event_type": pl.String, "event_time": pl.Datetime("us", "UTC"),
                                       "price": pl.Float64, "quantity": pl.Int64})
    text = frame.with_columns(pl.col("event_time").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    buf = io.BytesIO()
    text.write_csv(buf) if fmt == "csv" else text.write_ndjson(buf)
    raw, quarantine, _, report = read(f"v.{fmt}", buf.getvalue())
    assert quarantine.is_empty(), quarantine.select("rule", "reason").to_dicts()[:3]
    got = raw.select(frame.columns).sort("event_id")
    assert got.equals(frame.sort("event_id")), (got.head(3), frame.sort("event_id").head(3))
    assert raw["_row_number"].sort().to_list() == list(range(1, len(rows) + 1))
