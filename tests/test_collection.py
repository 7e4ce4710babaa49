"""The collection stage: contract enforcement, bad files, lineage, accounting, dedup of files."""

import io
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from governance.collection import collect, ingest_partition, landed_files, read_landed_file
from governance.contracts import EVENTS, PRODUCTS
from governance.storage import Lake

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = "2026-11-10"
GOOD_CSV = (
    "event_id,session_id,user_id,item_id,event_type,event_time,price,quantity\n"
    "e1,s1,u1,p1,view,2026-11-10T10:00:00Z,,\n"
    "e2,s1,u1,p1,purchase,2026-11-10 10:05:00,\"$1,299.00\",1\n"
    "e3,s1,,p2,click,1731234567,,\n"
)


def land(root: Path, name: str, content: bytes | str, source: str = "events", day: str = DAY) -> Path:
    path = root / source / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def read(root: Path, path: Path, contract=EVENTS):
    return read_landed_file(path, contract, landing_root=root, partition=DAY, run_id="t", ingested_at=NOW)


def assert_accounted(report) -> None:
    assert report.rows_in_file == report.rows_landed + report.rows_quarantined or report.rows_in_file == 0


def test_good_csv_lands_typed_rows_with_lineage(tmp_path):
    path = land(tmp_path, "a.csv", GOOD_CSV)
    raw, quarantine, audit, report = read(tmp_path, path)
    assert report.rows_in_file == 3 and raw.height == 3 and quarantine.is_empty()
    assert raw.schema["event_time"] == pl.Datetime("us", "UTC")
    assert raw["price"].to_list() == [None, 1299.0, None]
    assert raw["_row_number"].to_list() == [1, 2, 3]
    assert raw["_source_file"].unique().to_list() == ["events/2026-11-10/a.csv"]
    assert raw["_file_hash"].n_unique() == 1 and len(raw["_file_hash"][0]) == 64
    # epoch seconds and the space-separated ISO form are parsed as UTC
    assert raw["event_time"][2] == datetime(2024, 11, 10, 10, 29, 27, tzinfo=UTC)
    # the "$1,299.00" fix is audited with its original
    assert audit.select("column", "original", "fixed").row(0) == ("price", "$1,299.00", "1299.0")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_each_format_parses_to_the_same_rows(tmp_path, fmt):
    frame = pl.read_csv(io.StringIO(GOOD_CSV), infer_schema=False)
    buffer = io.BytesIO()
    {"csv": frame.write_csv, "jsonl": frame.write_ndjson, "parquet": frame.write_parquet}[fmt](buffer)
    path = land(tmp_path, f"a.{fmt}", buffer.getvalue())
    raw, quarantine, _, report = read(tmp_path, path)
    assert report.format == fmt and raw.height == 3 and quarantine.is_empty()
    assert raw["event_id"].to_list() == ["e1", "e2", "e3"]


def test_native_parquet_types_are_kept(tmp_path):
    frame = pl.DataFrame({
        "event_id": ["e1"], "session_id": ["s"], "item_id": ["p"], "event_type": ["view"],
        "event_time": [datetime(2026, 11, 10, 9)], "price": [3], "quantity": [2],
    })
    path = land(tmp_path, "n.parquet", b"")
    frame.write_parquet(path)
    raw, quarantine, _, _ = read(tmp_path, path)
    assert quarantine.is_empty()
    assert raw["event_time"][0] == datetime(2026, 11, 10, 9, tzinfo=UTC) and raw["price"][0] == 3.0


def test_unparsable_and_missing_values_are_quarantined_whole(tmp_path):
    content = GOOD_CSV + "e4,s1,u1,,view,2026-11-10T10:00:00Z,,\ne5,s1,u1,p1,view,not-a-time,abc,\n"
    raw, quarantine, _, report = read(tmp_path, land(tmp_path, "b.csv", content))
    assert report.rows_in_file == 5 and raw.height == 3 and quarantine.height == 2
    assert_accounted(report)
    rows = {r["row_number"]: r for r in quarantine.to_dicts()}
    assert rows[4]["rule"] == "missing_required_value" and "item_id" in rows[4]["reason"]
    assert rows[5]["rule"] == "unparsable_value"
    assert "event_time: 'not-a-time'" in rows[5]["reason"] and "price: 'abc'" in rows[5]["reason"]
    assert '"event_id":"e5"' in rows[5]["record"]  # the row is kept whole
    assert {r["stage"] for r in quarantine.to_dicts()} == {"collection"}


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("empty.csv", b"", "empty_file"),
        ("header.csv", b"event_id,session_id,item_id,event_type,event_time\n", "no_data_rows"),
        ("garbage.parquet", bytes(range(256)) * 4, "unreadable_file"),
        ("notes.xlsx", b"PK\x03\x04", "unknown_format"),
    ],
)
def test_unreadable_files_become_one_quarantine_row_naming_the_file(tmp_path, name, content, rule):
    raw, quarantine, _, report = read(tmp_path, land(tmp_path, name, content))
    assert raw.is_empty() and quarantine.height == 1
    assert quarantine["rule"][0] == rule
    assert name in quarantine["reason"][0] and quarantine["file"][0].endswith(name)


def test_truncated_parquet_is_quarantined(tmp_path):
    buffer = io.BytesIO()
    pl.read_csv(io.StringIO(GOOD_CSV), infer_schema=False).write_parquet(buffer)
    path = land(tmp_path, "cut.parquet", buffer.getvalue()[: len(buffer.getvalue()) // 2])
    _, quarantine, _, report = read(tmp_path, path)
    assert report.status == "unreadable" and quarantine["rule"][0] == "unreadable_file"
    assert "cut.parquet" in quarantine["reason"][0]


def test_wrong_delimiter_is_detected_and_read(tmp_path):
    raw, quarantine, _, report = read(tmp_path, land(tmp_path, "semi.csv", GOOD_CSV.replace(",", ";").replace(
        '"$1;299.00"', '"$1,299.00"')))
    assert raw.height == 3 and quarantine.is_empty() and report.rows_in_file == 3


def test_unrecognised_header_quarantines_every_row_with_the_missing_columns(tmp_path):
    content = "a|b|c\n1|2|3\n4|5|6\n"
    raw, quarantine, _, report = read(tmp_path, land(tmp_path, "odd.csv", content))
    assert raw.is_empty() and quarantine.height == 2 and report.rows_in_file == 2
    assert set(quarantine["rule"]) == {"missing_required_column"}
    assert "event_id" in quarantine["reason"][0] and "event_time" in quarantine["reason"][0]


def test_ragged_rows_are_quarantined_not_truncated(tmp_path):
    content = GOOD_CSV + "e9,s1,u1,p1,view,2026-11-10T10:00:00Z,,,surplus\n"
    raw, quarantine, _, report = read(tmp_path, land(tmp_path, "r.csv", content))
    assert raw.height == 3 and quarantine["rule"].to_list() == ["ragged_row"]
    assert "surplus" in quarantine["record"][0]
    assert_accounted(report)


def test_broken_jsonl_lines_are_quarantined_with_their_line_number(tmp_path):
    content = (b'{"event_id":"j1","session_id":"s","item_id":"p","event_type":"view","event_time":"2026-11-10T01:00:00Z"}\n'
               b"{not json\n"
               b'{"event_id":"j2","session_id":"s","item_id":"p","event_type":"view","event_time":"2026-11-10T02:00:00Z"}\n')
    raw, quarantine, _, report = read(tmp_path, land(tmp_path, "x.jsonl", content))
    assert raw["event_id"].to_list() == ["j1", "j2"] and raw["_row_number"].to_list() == [1, 3]
    assert quarantine.select("rule", "row_number").row(0) == ("unparsable_line", 2)
    assert report.rows_in_file == 3


def test_renamed_alias_is_mapped_and_extra_column_kept_aside(tmp_path):
    content = GOOD_CSV.replace("event_time", "ts").replace("quantity\n", "quantity,campaign\n", 1)
    content = "\n".join(line + (",c1" if i else "") for i, line in enumerate(content.strip().split("\n"))) + "\n"
    content = content.replace("quantity,campaign,c1", "quantity,campaign")
    raw, quarantine, _, report = read(tmp_path, land(tmp_path, "d.csv", content))
    assert quarantine.is_empty() and raw.height == 3
    assert report.renamed_columns == {"ts": "event_time"} and report.extra_columns == ["campaign"]
    assert raw["_extra_columns"].to_list() == ['{"campaign":"c1"}'] * 3


def test_same_content_twice_is_ingested_once(tmp_path):
    land(tmp_path, "a.csv", GOOD_CSV)
    land(tmp_path, "copy-of-a.csv", GOOD_CSV)
    result = collect(EVENTS, landed_files(tmp_path, "events", DAY), landing_root=tmp_path, partition=DAY,
                     run_id="t", ingested_at=NOW)
    assert result.raw.height == 3
    assert [f.status for f in result.files] == ["ingested", "duplicate_skipped"]
    assert "a.csv" in result.files[1].note


def test_ingest_partition_replaces_and_skips_content_seen_in_another_partition(tmp_path):
    landing, lake = tmp_path / "landing", Lake.at(tmp_path / "lake")
    land(landing, "a.csv", GOOD_CSV)
    land(landing, "again.csv", GOOD_CSV, day="2026-11-11")
    first = ingest_partition(lake, EVENTS, landing, DAY, run_id="r1", ingested_at=NOW)
    again = ingest_partition(lake, EVENTS, landing, DAY, run_id="r2", ingested_at=NOW)
    assert first.raw.height == again.raw.height == lake.read("raw", "events", DAY).height == 3
    other = ingest_partition(lake, EVENTS, landing, "2026-11-11", run_id="r3", ingested_at=NOW)
    assert other.raw.height == 0 and other.files[0].status == "duplicate_skipped"
    assert lake.partitions("raw", "events") == [DAY, "2026-11-11"]


def test_snapshot_source_reads_every_landed_day(tmp_path):
    header = "product_id,title,category_path,price\n"
    land(tmp_path, "p1.csv", header + "p1,Lamp,Home > Light > Lamps,10\n", source="products", day="2026-11-01")
    land(tmp_path, "p2.csv", header + "p1,Lamp,Home > Light > Lamps,12\n", source="products", day="2026-11-05")
    result = collect(PRODUCTS, landed_files(tmp_path, "products", None), landing_root=tmp_path, partition=None,
                     run_id="t", ingested_at=NOW)
    assert result.raw["price"].to_list() == [10.0, 12.0]
