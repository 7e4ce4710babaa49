"""A corpus of 60+ malformed landed files, generated here: each ends in quarantine rows naming it (or
lands what it validly holds), nothing raises, every file's accounting holds, memory stays bounded."""

import gzip
import io
import json
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path

import polars as pl

DAY = "2026-11-10"
HEADER = "event_id,session_id,user_id,item_id,event_type,event_time,price,quantity"
GOOD = "e{i},s1,u1,p1,view,2026-11-10T10:00:00Z,1.5,1"
JROW = {"event_id": "j{i}", "session_id": "s1", "item_id": "p1", "event_type": "view", "event_time": "2026-11-10T10:00:00Z"}
ROOT = Path(__file__).resolve().parents[2]
#: files that must leave at least one quarantine row naming them (the others may land cleanly: a
#: tolerated variant such as another delimiter or encoding)
MUST_QUARANTINE: set[str] = set()


def _csv(rows: list[str], header: str = HEADER, sep: str = ",") -> str:
    return "\n".join([header.replace(",", sep)] + [r.replace(",", sep) for r in rows]) + "\n"


def _parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def corpus(max_record_bytes: int) -> dict[str, bytes | str | None]:
    """name → content (None: made by the caller: links, pipes); names ending in ! must quarantine."""
    rng = random.Random(17)
    good = [GOOD.format(i=i) for i in range(3)]
    deep = "{" + '"a":{' * 3000 + "}" * 3001
    files: dict[str, bytes | str | None] = {
        # encodings
        "enc_latin1.csv": _csv(good + ["e9,s1,u1,p1,view,2026-11-10T10:00:00Z,1.5,1"]).replace("s1", "sé").encode("latin-1"),
        "enc_cp1252.csv": _csv(good).replace("p1", "p€").encode("cp1252"),
        "enc_utf16_bom.csv": _csv(good).encode("utf-16"),
        "enc_utf16le_nobom.csv": _csv(good).encode("utf-16-le"),
        "enc_utf8_bom.csv": b"\xef\xbb\xbf" + _csv(good).encode(),
        "enc_broken_bytes_in_key!.csv": _csv(good).encode().replace(b"e1,", b"e\xff\xfe1,"),
        "enc_utf32.jsonl": (json.dumps(JROW).replace("{i}", "1") + "\n").encode("utf-32"),
        "enc_shiftjis.csv": _csv(good).replace("u1", "ユーザー").encode("shift_jis"),
        # delimiters
        "delim_semicolon.csv": _csv(good, sep=";"),
        "delim_tab.tsv": _csv(good, sep="\t"),
        "delim_pipe.csv": _csv(good, sep="|"),
        "delim_mixed!.csv": HEADER + "\n" + "e1;s1;u1;p1;view;2026-11-10T10:00:00Z;1;1\n" + good[1] + "\n",
        "delim_none!.csv": "just one column\nvalue\n",
        # quoting
        "quote_unbalanced!.csv": _csv(['e1,"s1,u1,p1,view,2026-11-10T10:00:00Z,1,1'] + good[1:]),
        "quote_inner!.csv": _csv(['e1,s"1,u1,p1,view,not-a-time,1,1']),
        "quote_escaped.csv": _csv(['e1,"s""1",u1,p1,view,2026-11-10T10:00:00Z,1,1']),
        "quote_whole_line!.csv": _csv(['"e1,s1,u1,p1,view,2026-11-10T10:00:00Z,1,1"']),
        # embedded newlines
        "newline_quoted.csv": _csv(['e1,"s\n1",u1,p1,view,2026-11-10T10:00:00Z,1,1'] + good[1:]),
        "newline_crlf.csv": _csv(good).replace("\n", "\r\n"),
        "newline_cr_only!.csv": _csv(good).replace("\n", "\r"),
        "newline_in_json!.jsonl": '{"event_id": "j1", "session_id": "s\n1"}\n' + json.dumps(JROW).replace("{i}", "2") + "\n",
        "newline_none_at_end.csv": _csv(good).rstrip("\n"),
        # huge fields and lines
        "huge_field!.csv": _csv(good + ["e9,s1,u1,p1," + "V" * (max_record_bytes + 10) + ",2026-11-10T10:00:00Z,1,1"]),
        "huge_json_line!.jsonl": json.dumps({**JROW, "event_id": "j1", "x": "X" * (max_record_bytes + 10)}) + "\n",
        "huge_header!.csv": ",".join(f"c{i}" for i in range(max_record_bytes // 4)) + "\n1\n",
        "wide_header!.csv": ",".join(f"col{i}" for i in range(5000)) + "\n" + ",".join("1" for _ in range(5000)) + "\n",
        "long_value!.csv": _csv(["e1,s1,u1,p1,view," + "9" * 5000 + ",1,1"]),
        # deeply nested JSON
        "deep_object!.jsonl": deep + "\n",
        "deep_array!.jsonl": "[" * 5000 + "]" * 5000 + "\n",
        "deep_in_field!.jsonl": json.dumps({**JROW, "event_id": "j1"})[:-1] + ', "x": ' + "[" * 300 + "]" * 300 + "}\n",
        "json_array_not_lines!.json": json.dumps([JROW, JROW]),
        "json_scalars!.jsonl": "1\n\"two\"\nnull\ntrue\n",
        "json_truncated!.jsonl": json.dumps(JROW).replace("{i}", "1")[:40] + "\n",
        "json_duplicate_keys.jsonl": '{"event_id": "a", "event_id": "b", "session_id": "s", "item_id": "p", "event_type": "view", "event_time": "2026-11-10T10:00:00Z"}\n',
        "json_wrong_types!.jsonl": json.dumps({**JROW, "event_id": 5, "event_time": [1, 2], "price": {"a": 1}}) + "\n",
        "json_nan!.jsonl": '{"event_id": "j1", "price": NaN}\n',
        # compressed streams and bombs
        "gzip_bomb!.csv": gzip.compress(b"0" * (64 << 20), 9),
        "gzip_named!.csv.gz": gzip.compress(_csv(good).encode()),
        "zlib_stream!.jsonl": zlib.compress(b'{"a": 1}\n' * 100000, 9),
        "zip_archive!.csv": b"PK\x03\x04" + bytes(rng.getrandbits(8) for _ in range(200)),
        "parquet_bomb!.parquet": _parquet(pl.DataFrame({"event_id": ["b1"], "blob": ["0" * (16 << 20)]})),
        # Parquet with a wrong or changing schema
        "parquet_wrong_columns!.parquet": _parquet(pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})),
        "parquet_types_a.parquet": _parquet(pl.DataFrame({**{k: [v.replace("{i}", "pa")] for k, v in JROW.items()}})),
        "parquet_types_b.parquet": _parquet(pl.DataFrame({"event_id": [1], "session_id": [2], "item_id": [3],
                                                           "event_type": [4], "event_time": [5.5]})),
        "parquet_nested!.parquet": _parquet(pl.DataFrame({"event_id": [["x"]], "session_id": [{"a": 1}]})),
        "parquet_truncated!.parquet": _parquet(pl.DataFrame({"event_id": ["t"] * 100}))[:-40],
        "parquet_magic_only!.parquet": b"PAR1PAR1",
        "parquet_empty!.parquet": _parquet(pl.DataFrame({"event_id": []}, schema={"event_id": pl.String})),
        # empty files
        "empty!.csv": b"",
        "empty!.jsonl": b"\n\n",
        "whitespace_only!.csv": " \n\t\n  ",
        "header_only!.csv": HEADER + "\n",
        "bom_only!.csv": b"\xef\xbb\xbf",
        # binary garbage
        "garbage!.csv": bytes(rng.getrandbits(8) for _ in range(4096)),
        "garbage!.jsonl": bytes(rng.getrandbits(8) for _ in range(4096)),
        "garbage!.parquet": bytes(rng.getrandbits(8) for _ in range(4096)),
        "nul_bytes!.csv": _csv(good).encode().replace(b",", b"\x00"),
        "control_chars.csv": _csv(["e1,s1,u1,p1,\x07view\x1b,2026-11-10T10:00:00Z,1,1"]),
        "elf_binary!.csv": b"\x7fELF\x02\x01\x01" + bytes(rng.getrandbits(8) for _ in range(1000)),
        # content problems
        "ragged_rows!.csv": _csv(good + ["e9,s1,u1,p1,view,2026-11-10T10:00:00Z,1,1,extra,extra2"]),
        "short_rows!.csv": _csv(["e1,s1"]),
        "duplicate_columns.csv": _csv(good, header=HEADER.replace("user_id", "event_id")),
        "unknown_extension!.xml": "<events/>",
        "no_extension!": "event_id\n1\n",
        # what is not a regular file
        "symlink_out!.csv": None,
        "symlink_dangling!.jsonl": None,
        "fifo!.csv": None,
    }
    return files


def land_corpus(root: Path, max_record_bytes: int) -> dict[str, str]:
    """Write the corpus under root/events/DAY; returns name → relative path."""
    folder = root / "events" / DAY
    folder.mkdir(parents=True, exist_ok=True)
    outside = root.parent / "outside.csv"
    outside.write_text(_csv(["SECRET1,s1,u1,p1,view,2026-11-10T10:00:00Z,1,1"]))
    rel = {}
    for name, content in corpus(max_record_bytes).items():
        clean = name.replace("!", "")
        path = folder / clean
        rel[name] = f"events/{DAY}/{clean}"
        if name.startswith("symlink_out"):
            path.symlink_to(outside)
        elif name.startswith("symlink_dangling"):
            path.symlink_to(root / "nowhere.jsonl")
        elif name.startswith("fifo"):
            os.mkfifo(path)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
    return rel


RUN = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from governance.collection import ingest_partition
from governance.contracts import EVENTS
from governance.storage import Lake
root = Path(sys.argv[1])
result = ingest_partition(Lake.at(root / "lake"), EVENTS, root / "landing", sys.argv[2], run_id="corpus",
                          ingested_at=datetime(2026, 11, 20, tzinfo=UTC), max_record_bytes=int(sys.argv[3]))
print(json.dumps({"files": [f.as_dict() for f in result.files],
                  # VmHWM, not ru_maxrss: Linux carries the forking parent's peak (the whole test session) into it
                  "peak_mib": int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) / 1024}))
"""


def test_every_malformed_file_ends_in_a_quarantine_row_or_lands_and_memory_stays_bounded(tmp_path):
    max_record = 64 * 1024
    rel = land_corpus(tmp_path / "landing", max_record)
    assert len(rel) >= 50
    out = subprocess.run([sys.executable, "-c", RUN, str(tmp_path), DAY, str(max_record)], capture_output=True,
                         text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]  # nothing raised
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    reports = {f["file"]: f for f in summary["files"]}
    from governance.storage import Lake

    lake = Lake.at(tmp_path / "lake")
    quarantine = lake.read("quarantine", "events", DAY, part="collection")
    raw = lake.read("raw", "events", DAY)
    by_file = dict(quarantine.group_by("file").len().iter_rows())
    landed = dict(raw.group_by("_source_file").len().iter_rows())
    problems = []
    for name, path in rel.items():
        report = reports.get(path)
        if report is None:
            problems.append(f"{name}: no report")
            continue
        q, r = by_file.get(path, 0), landed.get(path, 0)
        if report["status"] != "duplicate_skipped" and report["rows_in_file"] != r + q:
            problems.append(f"{name}: read {report['rows_in_file']} != landed {r} + quarantined {q}")
        if name.endswith("!") or "!." in name:
            if q == 0:
                problems.append(f"{name}: no quarantine row ({report['status']}, landed {r})")
        elif q + r == 0 and report["status"] != "duplicate_skipped":
            problems.append(f"{name}: neither landed nor quarantined ({report})")
    file_rows = quarantine.filter(pl.col("row_number").is_null())
    assert file_rows.select(pl.col("reason").str.starts_with(pl.col("file")).all()).item()  # reasons name the file
    for record in quarantine["record"].drop_nulls():
        json.loads(record)  # every kept record is valid JSON
    assert "SECRET1" not in json.dumps(quarantine.to_dicts(), default=str) + json.dumps(raw.to_dicts(), default=str)
    assert not problems, "\n".join(problems)
    # a 64 MiB gzip bomb, a 16 MiB Parquet bomb, 64 KiB+ lines and 5,000-level JSON: bounded
    assert summary["peak_mib"] < 1024, summary["peak_mib"]
    print(f"\ncorpus: {len(rel)} files, {quarantine.height} quarantine rows, {raw.height} rows landed, "
          f"peak {summary['peak_mib']:.0f} MiB")
