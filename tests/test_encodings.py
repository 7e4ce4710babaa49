"""Encodings: every landed file's bytes decided once and the decision recorded; no byte replaced
silently (damaged keys quarantined with column and byte offset, damaged free text fixed and audited
with its original bytes); every file in the landing zone collected or recorded as skipped."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from governance.collection import decode_landed, ingest_partition, read_landed_file
from governance.contracts import EVENTS, PRODUCTS
from governance.storage import Lake

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = "2026-11-10"
PRODUCTS_CSV = ("product_id,title,brand,category_path,price\n"
                "p1,Teléfono móvil,Señor,Electrónica > Móviles,199.5\n"
                "p2,Cámara réflex,Canon,Electrónica > Cámaras,549.0\n"
                "p3,Plain kettle,Acme,Home > Kitchen,25.0\n")


def land(root: Path, name: str, content: bytes, source: str = "products", day: str = DAY) -> Path:
    path = root / source / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def read(root: Path, path: Path, contract=PRODUCTS):
    return read_landed_file(path, contract, landing_root=root, partition=DAY, run_id="t", ingested_at=NOW)


@pytest.mark.parametrize("encoding, expected", [
    ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16-le"), ("utf-16-be", "utf-16-be"),
    ("cp1252", None), ("latin-1", None)])
def test_every_encoding_lands_the_same_rows_and_records_its_decision(tmp_path, encoding, expected):
    data = PRODUCTS_CSV.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # with its byte order mark
    raw, quarantine, audit, report = read(tmp_path, land(tmp_path, f"p.{encoding}.csv", data))
    assert quarantine.is_empty(), quarantine["reason"].to_list()
    assert raw.height == 3  # no phantom row, no "lacks required columns"
    assert raw["title"].to_list() == ["Teléfono móvil", "Cámara réflex", "Plain kettle"]
    assert raw["brand"][0] == "Señor" and raw["price"].to_list() == [199.5, 549.0, 25.0]
    assert audit.is_empty()
    decided = report.encoding["encoding"]
    if expected is None:  # a single-byte Western encoding, named by the detector
        assert decided in ("cp1252", "latin_1", "iso8859_15", "iso8859_1", "cp1250", "latin-1"), decided
        assert "charset-normalizer" in report.encoding["method"]
    else:
        assert decided == expected
    assert report.encoding["bom"] == (encoding in ("utf-8-sig", "utf-16", "utf-16-be"))


def test_utf16_without_bom_is_recognised():
    decoded = decode_landed("event_id,x\ne1,y\n".encode("utf-16-le"))
    assert decoded.encoding == "utf-16-le" and decoded.text == "event_id,x\ne1,y\n"


def test_damaged_bytes_in_an_id_are_quarantined_with_column_and_offset(tmp_path):
    csv = ("event_id,session_id,item_id,event_type,event_time,device\n"
           "e1,s1,p1,view,2026-11-10T10:00:00Z,web\n"
           "e2,s1,p2,view,2026-11-10T10:01:00Z,web\n").encode()
    # a session id with one broken byte, in a UTF-8 file that also carries real UTF-8 text
    csv += b"e3,se\xff9,p3,view,2026-11-10T10:02:00Z,m\xc3\xb3vil\n"
    raw, quarantine, audit, report = read(tmp_path, land(tmp_path, "e.csv", csv, "events"), EVENTS)
    assert raw["event_id"].to_list() == ["e1", "e2"]
    assert quarantine.height == 1
    row = quarantine.row(0, named=True)
    assert row["rule"] == "undecodable_bytes" and row["row_number"] == 3
    assert "session_id" in row["reason"] and "0xFF" in row["reason"] and "byte offset 2" in row["reason"]
    assert report.encoding["encoding"] == "utf-8" and report.encoding["undecodable_bytes"] == 1
    assert "\ufffd" not in "".join(raw["session_id"].to_list())


def test_damaged_bytes_in_free_text_are_fixed_and_audited_with_the_original_bytes(tmp_path):
    csv = "product_id,title,category_path\np1,Teléfono,A > B\n".encode() + b"p2,Caf\xe9 cup,A > B\n"
    raw, quarantine, audit, report = read(tmp_path, land(tmp_path, "p.csv", csv))
    assert quarantine.is_empty() and raw["title"].to_list() == ["Teléfono", "Café cup"]
    fix = audit.filter(pl.col("rule") == "undecodable_bytes_fixed")
    assert fix.select("column", "original", "fixed", "key").row(0) == ("title", "Caf\\xE9 cup", "Café cup", "p2")


def test_latin1_text_is_not_mistaken_for_damage_and_damage_in_digits_is_not_mistaken_for_latin1():
    assert decode_landed("title\nmóvil teléfono cámara\n".encode("latin-1")).text == "title\nmóvil teléfono cámara\n"
    # one or two high bytes are no evidence of an encoding: read as damage (text fixed as cp1252, audited)
    assert decode_landed("title\ncafé\n".encode("latin-1")).undecodable_bytes == 1
    damaged = decode_landed(b"id,n\n12\xe934,5\n")
    assert damaged.encoding == "utf-8" and damaged.undecodable_bytes == 1


def test_every_file_is_collected_or_recorded_as_skipped(tmp_path):
    landing = tmp_path / "landing"
    land(landing, "a.csv", PRODUCTS_CSV.encode(), day=DAY)
    land(landing, ".b.csv", PRODUCTS_CSV.encode(), day=DAY)
    land(landing, ".c.parquet.importing", b"half", day=DAY)
    (landing / "products" / DAY / "sub").mkdir()
    result = ingest_partition(Lake.at(tmp_path / "lake"), PRODUCTS, landing, None, run_id="t", ingested_at=NOW)
    status = {f.file: (f.status, f.note) for f in result.files}
    assert status["products/2026-11-10/a.csv"][0] == "ingested"
    assert status["products/2026-11-10/.b.csv"][0] == "skipped" and "hidden" in status["products/2026-11-10/.b.csv"][1]
    assert "import in progress" in status["products/2026-11-10/.c.parquet.importing"][1]
    assert status["products/2026-11-10/sub"][0] == "skipped"
    ledger = Lake.at(tmp_path / "lake").read_json_dir("ledger/raw/products")["all"]
    assert set(ledger["skipped"]) == {"products/2026-11-10/.b.csv", "products/2026-11-10/.c.parquet.importing",
                                      "products/2026-11-10/sub"}
