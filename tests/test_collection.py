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


# ---------------------------------------------------------------------------------------------
# large files in batches: the same rows, quarantine rows, audit and accounting as a file read whole


def _mixed_csv(rows: int = 60) -> str:
    """Good rows, unparsable values, a missing required value, a ragged row, a quoted field holding a
    newline and commas (an extra column), a record over the limit, non-ASCII text: about 6 KB."""
    lines = ["event_id,session_id,user_id,item_id,event_type,event_time,price,quantity,device,note"]
    for i in range(rows):
        time = "n/a" if i % 11 == 3 else f"2026-11-10T10:{i % 60:02d}:00Z"
        price = "abc" if i % 13 == 5 else ("" if i % 2 else f"{i}.5")
        session = "" if i % 17 == 7 else f"s{i // 4}"
        note = f'"line one, Zoë\nline two ""{i}"""' if i % 7 == 2 else "plain"
        lines.append(f"e{i},{session},u{i % 9},p{i % 5},view,{time},{price},{i % 3 or ''},web,{note}")
        if i == 30:
            lines.append("e-ragged,s1,u1,p1,view,2026-11-10T10:00:00Z,1.5,1,web,plain,surplus")
        if i == 41:
            lines.append("e-long,s1,u1,p1,view,2026-11-10T10:00:00Z,1.5,1,web," + "x" * 900)
    return "\n".join(lines) + "\n"


def _mixed_jsonl(rows: int = 60) -> str:
    import json as _json

    lines = []
    for i in range(rows):
        record = {"event_id": f"e{i}", "session_id": None if i % 17 == 7 else f"s{i // 4}", "item_id": f"p{i % 5}",
                  "event_type": "view", "event_time": "n/a" if i % 11 == 3 else f"2026-11-10T10:{i % 60:02d}:00Z",
                  "price": "abc" if i % 13 == 5 else i + 0.5, "note": "Zoë"}
        lines.append(_json.dumps(record, ensure_ascii=False))
        if i % 19 == 4:
            lines.append("this line is not JSON")
        if i % 23 == 6:
            lines.append("")
        if i == 41:
            lines.append('{"event_id": "deep", "x": ' + "[" * 80 + "]" * 80 + "}")
        if i == 50:
            lines.append('{"event_id": "long", "x": "' + "y" * 900 + '"}')
    return "\n".join(lines) + "\n"


def _run(root, files, **kw):
    return collect(EVENTS, files, landing_root=root, partition=DAY, run_id="t", ingested_at=NOW,
                   max_record_bytes=600, **kw)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("batch_bytes", [1, 97, 700])
def test_a_file_collected_in_batches_gives_what_reading_it_whole_gives(tmp_path, fmt, bom, batch_bytes):
    text = _mixed_csv() if fmt == "csv" else _mixed_jsonl()
    path = land(tmp_path, f"big.{fmt}", (b"\xef\xbb\xbf" if bom else b"") + text.encode())
    whole = _run(tmp_path, [path])
    batched = _run(tmp_path, [path], batch_bytes=batch_bytes)
    assert "batch" in batched.files[0].note and "batch" not in whole.files[0].note
    report = batched.files[0]
    assert report.note.startswith("collected in ") and int(report.note.split()[2]) > 1  # really in batches
    # the rejected record as read differs in two spellings, not in content: a ragged row makes the CSV
    # reader add spare columns, which every rejected record then names (null) — read whole, all of
    # them; in batches, those of the ragged row's batch; and a JSON value's type is inferred per batch
    # (3.5 in a batch where the column holds only numbers, "3.5" where it is mixed). JSON Lines read
    # whole list the lines that are not JSON last; in batches, after their batch's rows.
    same = pl.col("record").str.replace_all(r',"__ragged_\d":null', "").str.replace_all(r'"(-?\d+(\.\d+)?)"', "$1")
    assert batched.raw.equals(whole.raw) and batched.audit.equals(whole.audit)
    order = ["row_number", "rule"]
    assert batched.quarantine.with_columns(same).sort(order).equals(whole.quarantine.with_columns(same).sort(order))
    if fmt == "csv":
        assert batched.quarantine.with_columns(same).equals(whole.quarantine.with_columns(same))
    assert whole.quarantine.height >= 8 and whole.raw.height >= 40  # the fixture has both
    rules = set(whole.quarantine["rule"])
    assert {"unparsable_value", "missing_required_value", "record_too_large"} <= rules
    assert ("ragged_row" if fmt == "csv" else "unparsable_line") in rules
    for key in ("rows_in_file", "rows_landed", "rows_quarantined", "file_hash", "status", "extra_columns", "encoding"):
        assert getattr(report, key) == getattr(whole.files[0], key), key
    assert report.rows_in_file == report.rows_landed + report.rows_quarantined
    assert report.encoding["encoding"] == ("utf-8-sig" if bom else "utf-8")


def test_a_large_file_that_is_not_utf8_is_read_whole_with_its_encoding_decided(tmp_path):
    text = _mixed_csv().replace("Zoë", "Zoë Müller Çelik Øre")
    path = land(tmp_path, "latin.csv", text.encode("cp1252"))
    batched = _run(tmp_path, [path], batch_bytes=97)
    whole = _run(tmp_path, [path])
    assert "batch" not in batched.files[0].note
    assert batched.files[0].encoding["encoding"] == whole.files[0].encoding["encoding"] != "utf-8"
    assert batched.raw.equals(whole.raw) and batched.quarantine.equals(whole.quarantine)


def test_duplicate_large_files_are_ingested_once(tmp_path):
    a = land(tmp_path, "a.csv", _mixed_csv())
    b = land(tmp_path, "b.csv", _mixed_csv())
    result = _run(tmp_path, [a, b], batch_bytes=500)
    assert [f.status for f in result.files] == ["ingested", "duplicate_skipped"]
    assert result.raw.height == _run(tmp_path, [a]).raw.height


def test_ingest_partition_streams_a_large_file_to_the_lake(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    land(landing, "big.csv", _mixed_csv(400))
    land(landing, "small.jsonl", _mixed_jsonl(10))
    streamed_lake, whole_lake = Lake.at(tmp_path / "s"), Lake.at(tmp_path / "w")
    monkeypatch.setattr("governance.collection.PREVIEW_ROWS", 50)
    streamed = ingest_partition(streamed_lake, EVENTS, landing, DAY, run_id="r", ingested_at=NOW,
                                max_record_bytes=600, batch_bytes=2000)
    whole = ingest_partition(whole_lake, EVENTS, landing, DAY, run_id="r", ingested_at=NOW, max_record_bytes=600)
    assert whole.raw_complete and not streamed.raw_complete
    assert streamed.rows_landed == whole.rows_landed == whole.raw.height > 300
    assert streamed.raw.equals(whole.raw.head(50))
    assert streamed_lake.read("raw", "events", DAY).equals(whole_lake.read("raw", "events", DAY))
    assert streamed_lake.read("audit", "events", DAY, part="collection").equals(
        whole_lake.read("audit", "events", DAY, part="collection"))
    unragged = pl.col("record").str.replace_all(r',"__ragged_\d":null', "")  # see the test above
    assert streamed_lake.read("quarantine", "events", DAY, part="collection").with_columns(unragged).equals(
        whole_lake.read("quarantine", "events", DAY, part="collection").with_columns(unragged))
    assert streamed_lake.manifest("raw", "events", DAY)["parts"]["data"]["rows"] == streamed.rows_landed
    assert streamed.rows_read == streamed.rows_landed + streamed.quarantine.height


def test_a_failure_in_the_middle_of_a_streamed_file_publishes_nothing(tmp_path, monkeypatch):
    import governance.collection as collection

    landing, lake = tmp_path / "landing", Lake.at(tmp_path / "lake")
    land(landing, "big.csv", _mixed_csv(400))
    before = ingest_partition(lake, EVENTS, landing, DAY, run_id="r1", ingested_at=NOW, max_record_bytes=600)
    calls = {"n": 0}
    real = collection.read_bounded

    def failing(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk went away")
        return real(*args, **kw)

    monkeypatch.setattr(collection, "read_bounded", failing)
    with pytest.raises(OSError, match="disk went away"):
        ingest_partition(lake, EVENTS, landing, DAY, run_id="r2", ingested_at=NOW, max_record_bytes=600,
                         batch_bytes=2000)
    assert calls["n"] == 3
    # the partition is the first run's, whole, in every layer; no version folder of the failed run left
    assert lake.read("raw", "events", DAY).equals(lake.read("raw", "events", DAY))
    assert lake.read("raw", "events", DAY).height == before.rows_landed
    assert set(lake.read("raw", "events", DAY)["_ingested_at"].dt.replace_time_zone(None).cast(pl.String)) == {
        "2026-11-20 12:00:00.000000"}
    assert set(lake.read("quarantine", "events", DAY, part="collection")["run_id"]) == {"r1"}
    versions = [p.name for p in (tmp_path / "lake" / "raw" / "events" / f"date={DAY}").iterdir() if p.name.startswith("v-")]
    assert len(versions) == 1


def test_a_file_that_changes_while_it_is_streamed_is_refused_whole(tmp_path, monkeypatch):
    import governance.collection as collection

    landing, lake = tmp_path / "landing", Lake.at(tmp_path / "lake")
    path = land(landing, "big.csv", _mixed_csv(400))
    real = collection._record_batches

    def growing(*args, **kw):
        for i, body in enumerate(real(*args, **kw)):
            if i == 1:
                with open(path, "a") as f:
                    f.write("e-late,s1,u1,p1,view,2026-11-10T10:00:00Z,,,web,plain\n")
            yield body

    monkeypatch.setattr(collection, "_record_batches", growing)
    with pytest.raises(collection.CollectionError, match="changed while it was collected"):
        ingest_partition(lake, EVENTS, landing, DAY, run_id="r", ingested_at=NOW, batch_bytes=2000)
    assert lake.partitions("raw", "events") == [] and lake.partitions("quarantine", "events") == []
