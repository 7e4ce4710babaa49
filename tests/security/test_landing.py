"""Landing-zone hygiene: links and non-regular files refused, records bounded, every file accounted for."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from governance.collection import DEFAULT_MAX_RECORD_BYTES, MAX_JSON_DEPTH, collect, ingest_partition, landed_files
from governance.contracts import EVENTS
from governance.storage import Lake

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = "2026-11-10"
ROW = '{{"event_id":"e{i}","session_id":"s1","item_id":"p1","event_type":"view","event_time":"2026-11-10T10:00:00Z"}}'


def land(root: Path, name: str, content: bytes | str, day: str = DAY) -> Path:
    path = root / "events" / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def run(root: Path, **kw):
    return collect(EVENTS, landed_files(root, "events", DAY), landing_root=root, partition=DAY, run_id="t",
                   ingested_at=NOW, **kw)


def accounted(result) -> None:
    for f in result.files:
        if f.status != "duplicate_skipped":
            assert f.rows_in_file == f.rows_landed + f.rows_quarantined, f
    assert result.rows_read == result.raw.height + result.quarantine.height


def test_a_symlink_is_refused_with_a_quarantine_row_and_its_target_is_never_read(tmp_path):
    landing = tmp_path / "landing"
    secret = tmp_path / "outside" / "secret.jsonl"
    secret.parent.mkdir()
    secret.write_text(ROW.format(i="SECRET-1") + "\n")
    land(landing, "good.jsonl", ROW.format(i=1) + "\n")
    (landing / "events" / DAY / "link.jsonl").symlink_to(secret)
    (landing / "events" / DAY / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    result = run(landing)
    assert result.raw["event_id"].to_list() == ["e1"]
    refused = result.quarantine.filter(pl.col("rule") == "not_a_regular_file")
    assert sorted(refused["file"].to_list()) == ["events/2026-11-10/dangling.csv", "events/2026-11-10/link.jsonl"]
    assert refused["reason"].str.contains("symbolic link").all()
    assert "SECRET" not in json.dumps(result.quarantine.to_dicts(), default=str)
    assert "SECRET" not in json.dumps([f.as_dict() for f in result.files])
    accounted(result)


def test_a_linked_day_folder_fifo_and_subfolder_are_refused(tmp_path):
    landing = tmp_path / "landing"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.jsonl").write_text(ROW.format(i="OUT") + "\n")
    (landing / "events").mkdir(parents=True)
    (landing / "events" / DAY).symlink_to(outside, target_is_directory=True)
    result = run(landing)
    assert result.raw.is_empty() and result.quarantine["rule"].to_list() == ["not_a_regular_file"]
    (landing / "events" / DAY).unlink()
    land(landing, "ok.jsonl", ROW.format(i=1) + "\n")
    os.mkfifo(landing / "events" / DAY / "pipe.csv")  # reading it would block for ever
    (landing / "events" / DAY / "sub").mkdir()
    result = run(landing)
    reasons = dict(zip(result.quarantine["file"], result.quarantine["reason"]))
    assert "named pipe" in reasons["events/2026-11-10/pipe.csv"]
    assert "events/2026-11-10/sub" not in reasons  # a sub-folder is reported skipped by ingest_partition
    assert result.raw.height == 1
    accounted(result)


def test_a_record_over_the_limit_is_quarantined_with_a_valid_json_preview(tmp_path):
    landing = tmp_path / "landing"
    huge = '{"event_id":"big","session_id":"s1","item_id":"p1","event_type":"view","event_time":"2026-11-10T10:00:00Z","x":"' + "A" * 5000 + '"}'
    land(landing, "a.jsonl", "\n".join([ROW.format(i=1), huge, ROW.format(i=3)]) + "\n")
    land(landing, "b.csv", "event_id,session_id,item_id,event_type,event_time\n" + "e7,s,p,view,2026-11-10T10:00:00Z\n"
         + "e8,s,p," + "B" * 5000 + ",2026-11-10T10:00:00Z\n" + "e9,s,p,view,2026-11-10T10:00:00Z\n")
    result = run(landing, max_record_bytes=1000)
    assert sorted(result.raw["event_id"].to_list()) == ["e1", "e3", "e7", "e9"]
    big = result.quarantine.filter(pl.col("rule") == "record_too_large").sort("file")
    assert big["row_number"].to_list() == [2, 2]  # row numbers keep counting past the cut record
    for record in big["record"]:
        preview = json.loads(record)  # valid JSON
        assert preview["truncated"] and preview["bytes"] > 5000 and len(preview["preview"]) <= 1000
    assert big["reason"].str.contains("larger than the maximum of 1,000 bytes").all()
    assert result.raw["_file_hash"].n_unique() == 2 and len(result.raw["_file_hash"][0]) == 64
    accounted(result)
    assert DEFAULT_MAX_RECORD_BYTES == 1 << 20


def test_deeply_nested_json_is_refused_before_the_parser_crashes(tmp_path):
    landing = tmp_path / "landing"
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    land(landing, "deep.jsonl", "\n".join([ROW.format(i=1), deep]) + "\n")
    result = run(landing)
    assert result.raw["event_id"].to_list() == ["e1"]
    row = result.quarantine.row(0, named=True)
    assert row["rule"] == "record_too_deep" and row["row_number"] == 2 and f"more than {MAX_JSON_DEPTH}" in row["reason"]
    json.loads(row["record"])


def test_unparsable_lines_are_kept_as_valid_json_and_unreadable_files_count_one_record(tmp_path):
    landing = tmp_path / "landing"
    land(landing, "a.jsonl", ROW.format(i=1) + "\n" + "{not json " + "x" * 3000 + "\n")
    land(landing, "b.parquet", b"PAR1 this is not parquet")
    land(landing, "c.xml", "<x/>")
    result = run(landing)
    for record in result.quarantine["record"].drop_nulls():
        json.loads(record)
    unreadable = [f for f in result.files if f.status in ("unreadable", "empty")]
    assert len(unreadable) == 2 and all(f.rows_in_file == 1 == f.rows_quarantined for f in unreadable)
    accounted(result)


def test_ingest_partition_applies_the_limit_and_commits_everything(tmp_path):
    landing, lake = tmp_path / "landing", Lake.at(tmp_path / "lake")
    land(landing, "a.jsonl", ROW.format(i=1) + "\n" + '{"event_id":"' + "z" * 3000 + '"}\n')
    result = ingest_partition(lake, EVENTS, landing, DAY, run_id="r", ingested_at=NOW, max_record_bytes=2000)
    assert lake.read("raw", "events", DAY).height == 1
    assert lake.read("quarantine", "events", DAY, part="collection")["rule"].to_list() == ["record_too_large"]
    assert result.rows_read == 2


def test_a_150_mb_line_is_read_in_bounded_memory(tmp_path):
    landing = tmp_path / "landing"
    path = land(landing, "big.jsonl", ROW.format(i=1) + "\n")
    with open(path, "ab") as f:
        f.write(b'{"event_id":"huge","x":"')
        for _ in range(150):
            f.write(b"H" * (1 << 20))
        f.write(b'"}\n' + ROW.format(i=3).encode() + b"\n")
    code = (
        "import sys; from pathlib import Path; from datetime import datetime, UTC;"
        "from governance.collection import collect, landed_files; from governance.contracts import EVENTS;"
        f"root = Path({str(landing)!r});"
        f"r = collect(EVENTS, landed_files(root, 'events', {DAY!r}), landing_root=root, partition={DAY!r}, run_id='t', ingested_at=datetime.now(UTC));"
        "assert sorted(r.raw['event_id'].to_list()) == ['e1', 'e3'], r.raw;"
        "assert r.quarantine['rule'].to_list() == ['record_too_large'];"
        # VmHWM (KiB), not ru_maxrss: Linux carries the forking parent's peak (the test session) into the child
        "print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')).split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    peak_mib = int(out.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 1200, f"peak RSS {peak_mib:.0f} MiB for a 150 MiB line (was 3.9 GB before the limit)"
