"""Landed file → raw rows + quarantine rows, with the source contract enforced and lineage added.

For every file the accounting ``rows in file = rows landed + rows quarantined`` holds; a file that
cannot be read at all becomes one quarantine row naming the file and the reason. The same content
landed twice (same SHA-256) is ingested once.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from governance.contracts import LINEAGE_COLUMNS, SourceContract
from governance.parsing import parse_frame
from governance.quarantine import AUDIT_SCHEMA, QUARANTINE_SCHEMA, conform, empty_audit, empty_quarantine, record_json
from governance.storage import Lake

STAGE = "collection"
EXTRA_COLUMN = "_extra_columns"
FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}
_DELIMITERS = (",", ";", "\t", "|")
#: extra trailing fields a CSV row may carry before it is told apart from a well-formed one
_RAGGED_SLOTS = 4


class CollectionError(Exception):
    """A landed file could not be read; the message names the file and the reason."""


@dataclass
class FileReport:
    file: str
    file_hash: str
    format: str
    status: str  # ingested | duplicate_skipped | unreadable | empty
    rows_in_file: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    renamed_columns: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    note: str = ""
    #: how the bytes were decoded (encoding, method, BOM, undecodable bytes): see `decode_landed`
    encoding: dict = field(default_factory=dict)
    #: number columns whose separators were decided from the file's values: column → decision
    number_formats: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CollectionResult:
    #: the landed rows — all of them from :func:`collect`; from :func:`ingest_partition` all of them
    #: too, unless collection was streamed (a file over ``batch_bytes``): then the first
    #: :data:`PREVIEW_ROWS` (``rows_landed`` counts them all, and the lake holds them all)
    raw: pl.DataFrame
    quarantine: pl.DataFrame
    audit: pl.DataFrame
    files: list[FileReport]
    rows_landed: int | None = None

    def __post_init__(self) -> None:
        if self.rows_landed is None:
            self.rows_landed = self.raw.height

    @property
    def raw_complete(self) -> bool:
        """Whether ``raw`` holds every landed row (False after a streamed collection)."""
        return self.raw.height == self.rows_landed

    @property
    def rows_read(self) -> int:
        return sum(f.rows_in_file for f in self.files)

    def quarantine_by_rule(self) -> dict[str, int]:
        if self.quarantine.is_empty():
            return {}
        counts = self.quarantine.group_by("rule").len().sort("len", descending=True)
        return dict(zip(counts["rule"].to_list(), counts["len"].to_list(), strict=True))


def raw_schema(contract: SourceContract) -> dict[str, pl.DataType]:
    return {**contract.raw_schema(), EXTRA_COLUMN: pl.String()}


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# encodings: every file's bytes decided once, the decision recorded, no byte replaced silently

#: an undecodable byte 0xNN travels through reading as the private-use character U+F7NN, so the
#: value keeps its original bytes: a key or id with one is quarantined (column + byte offset), free
#: text is fixed (the byte read as cp1252) and audited with the original bytes
BYTE_MARK = 0xF700
_MARKS = re.compile("[\uf780-\uf7ff]")
_TO_MARK = {0xDC80 + b: BYTE_MARK + 0x80 + b for b in range(128)}


@dataclass
class Decoded:
    """A landed file's bytes as UTF-8 (undecodable bytes marked) and how that was decided."""

    data: bytes
    encoding: str
    method: str
    bom: bool = False
    undecodable_bytes: int = 0
    note: str = ""

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    def as_dict(self) -> dict:
        return {"encoding": self.encoding, "method": self.method, "bom": self.bom,
                "undecodable_bytes": self.undecodable_bytes, "note": self.note}


def _marked(text: str) -> tuple[bytes, int]:
    """Text decoded with surrogateescape → UTF-8 bytes with each undecodable byte marked."""
    bad = len(re.findall("[\udc80-\udcff]", text))
    return (text.translate(_TO_MARK) if bad else text).encode("utf-8"), bad


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text without a BOM: ASCII characters leave NUL in every other byte."""
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


#: the bytes a Western single-byte text uses for letters (cp1252/Latin-1: àáâ…ÿ without ×÷ and ÿ)
_LATIN_LETTERS = frozenset(range(0xC0, 0xFF)) - {0xD7, 0xF7}
#: fewer high bytes than this are not evidence of a single-byte encoding: they are read as damage
#: (free text is then fixed as cp1252 and audited, keys quarantined) — never decided silently
_MIN_SINGLE_BYTE_EVIDENCE = 3


def _looks_single_byte(text: str) -> bool:
    """Undecodable bytes that read as Latin letters inside words (next to ASCII letters), as the
    accented letters of a Latin-1/cp1252 text do — at least `_MIN_SINGLE_BYTE_EVIDENCE` of them and
    90% of all. Broken bytes (0xFF, stray 0x80, a UTF-8 lead byte before '(') and bytes between
    digits are damage."""
    hits = [m.start() for m in re.finditer("[\udc80-\udcff]", text)]
    if len(hits) < _MIN_SINGLE_BYTE_EVIDENCE:
        return False
    sample = hits[:: max(1, len(hits) // 5000)]

    def letter_inside_word(i: int) -> bool:
        if ord(text[i]) - 0xDC00 not in _LATIN_LETTERS:
            return False
        before = i > 0 and (text[i - 1].isalpha() or 0xDC80 <= ord(text[i - 1]) <= 0xDCFF)
        after = i + 1 < len(text) and (text[i + 1].isalpha() or 0xDC80 <= ord(text[i + 1]) <= 0xDCFF)
        return before or after

    return sum(map(letter_inside_word, sample)) >= 0.9 * len(sample)


def decode_landed(data: bytes, declared: str | None = None) -> Decoded:
    """Decide a text file's encoding: BOMs (UTF-8, UTF-16 LE/BE), UTF-16 without BOM, strict UTF-8,
    else a single-byte encoding chosen by charset-normalizer when the undecodable bytes read as
    letters inside words (a Latin-1/cp1252 file), else UTF-8 whose undecodable bytes are damage
    (marked, see `BYTE_MARK`). A ``declared`` encoding (a mapping's) is used as given."""
    if declared:
        text = data.decode(declared, errors="surrogateescape")
        body, bad = _marked(text.removeprefix("\ufeff"))
        return Decoded(body, declared.lower(), "declared", text.startswith("\ufeff"), bad)
    if data.isascii() and b"\x00" not in data[:4096]:
        return Decoded(data, "ascii", "all bytes < 0x80")
    if data.startswith(b"\xef\xbb\xbf"):
        body, bad = _marked(data[3:].decode("utf-8", errors="surrogateescape"))
        return Decoded(body, "utf-8-sig", "byte order mark", True, bad)
    for bom, enc, method in ((b"\xff\xfe", "utf-16-le", "byte order mark"), (b"\xfe\xff", "utf-16-be", "byte order mark"),
                             (b"", _utf16_without_bom(data[:4096]), "NUL bytes in every other position")):
        if enc and data.startswith(bom) and not data.startswith(b"\xff\xfe\x00\x00"):
            text = data[len(bom):].decode(enc, errors="replace")
            broken = text.count("\ufffd")
            return Decoded(text.encode("utf-8"), enc, method, bool(bom), broken,
                           note=f"{broken} undecodable UTF-16 unit(s) shown as U+FFFD" if broken else "")
    try:
        data.decode("utf-8")
        return Decoded(data, "utf-8", "valid UTF-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="surrogateescape")
    multibyte = sum(1 for ch in text[:2_000_000] if ord(ch) > 127 and not 0xDC80 <= ord(ch) <= 0xDCFF)
    if not multibyte and _looks_single_byte(text):
        from charset_normalizer import from_bytes

        results = list(from_bytes(data[:1_000_000]))
        best = results[0] if results else None
        enc = best.encoding if best is not None else "cp1252"
        # equally plausible candidates (short texts read alike in cp1250/cp1252/cp1257): the most
        # widespread Western single-byte encoding wins, and the tie is named in the decision
        tied = [r.encoding for r in results if best is not None and r.chaos <= best.chaos + 0.01
                and r.coherence >= best.coherence - 0.02]
        for preferred in ("cp1252", "latin_1", "iso8859_15"):
            if preferred in tied:
                enc = preferred
                break
        try:
            import codecs

            single = codecs.lookup(enc)
            if single.name.startswith(("utf", "gb", "big5", "shift", "euc", "iso2022", "hz", "johab", "cp9")):
                enc = "cp1252"
        except LookupError:
            enc = "cp1252"
        decoded = data.decode(enc, errors="surrogateescape")
        body, bad = _marked(decoded)
        return Decoded(body, enc, "charset-normalizer (no valid UTF-8 multi-byte sequence; the high bytes read "
                                  "as letters inside words)", False, bad,
                       note=f"equally plausible: {', '.join(tied)}" if len(tied) > 1 else "")
    body, bad = _marked(text)
    return Decoded(body, "utf-8", "UTF-8 with undecodable bytes", False, bad,
                   note=f"{bad} byte(s) are not UTF-8: keys and ids with them are quarantined, text is fixed "
                        "as cp1252 and audited")


def _is_identifier(contract: SourceContract, column: str) -> bool:
    c = contract.column(column)
    return c.type != "string" or column in contract.key or column.endswith("_id")


def _show_bytes(expr: pl.Expr) -> pl.Expr:
    """A marked value with its undecodable bytes written as \\xNN (the original bytes)."""
    for b in range(0x80, 0x100):
        expr = expr.str.replace_all(chr(BYTE_MARK + b), f"\\x{b:02X}", literal=True)
    return expr


def undecodable_values(renamed: pl.DataFrame, contract: SourceContract, keys: pl.Series):
    """Values that carry undecodable bytes: ``(frame with free text fixed, problems, audit rows)``.

    In a key, id or typed column the row is quarantined (rule ``undecodable_bytes``) with the column
    and the byte offset in the value; in free text each byte is read as cp1252, and the fix is
    audited with the original bytes written as \\xNN."""
    problems, audits, fixes = [], [], {}
    for col in contract.columns:
        name = col.name
        if name not in renamed.columns or renamed.schema[name] != pl.String:
            continue
        hit = renamed[name].str.contains("[\uf780-\uf7ff]").fill_null(False)
        if not hit.any():
            continue
        if _is_identifier(contract, name):
            def reason(idx: pl.Series, name=name) -> pl.Series:
                values = renamed[name].gather(idx)
                offset = values.str.find("[\uf780-\uf7ff]")
                prefix_bytes = pl.select(values.str.slice(0, offset).str.len_bytes()).to_series()
                shown = pl.select(_show_bytes(pl.lit(values))).to_series()
                byte = values.str.extract("([\uf780-\uf7ff])").replace_strict(
                    {chr(BYTE_MARK + b): f"0x{b:02X}" for b in range(0x80, 0x100)}, default=None)
                return pl.select(pl.format(f"{name}: undecodable byte {{}} at byte offset {{}} of the value '{{}}' "
                                           "(a damaged identifier cannot be repaired)", byte, prefix_bytes,
                                           shown.str.slice(0, 60))).to_series()
            problems.append(("undecodable_bytes", hit, reason))
            continue
        idx = hit.arg_true()
        damaged = renamed[name].gather(idx)
        repaired = damaged
        for b in range(0x80, 0x100):
            ch = chr(BYTE_MARK + b)
            if damaged.str.contains(ch, literal=True).any():
                repaired = repaired.str.replace_all(ch, bytes([b]).decode("cp1252", errors="replace"), literal=True)
        fixes[name] = renamed[name].scatter(idx, repaired)
        audits.append(pl.DataFrame({
            "rule": "undecodable_bytes_fixed", "column": name,
            "original": pl.select(_show_bytes(pl.lit(damaged))).to_series(),
            "fixed": repaired, "row_number": renamed["_row_number"].gather(idx), "key": keys.gather(idx),
        }))
    if fixes:
        renamed = renamed.with_columns(**fixes)
    return renamed, problems, audits


# ---------------------------------------------------------------------------------------------
# reading one file into text/native columns


def _header_line(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def _sniff_delimiter(header: bytes, contract: SourceContract) -> str:
    """Pick the delimiter under which the header names the most contract columns."""
    text = header.decode("utf-8", errors="replace").lower()
    known = contract.alias_map()

    def score(delim: str) -> tuple[int, int]:
        names = [n.strip().strip('"') for n in text.split(delim)]
        return sum(n in known for n in names), len(names)

    return max(_DELIMITERS, key=score)


def _read_csv(data: bytes, contract: SourceContract) -> pl.DataFrame:
    header = _header_line(data)
    delimiter = _sniff_delimiter(header, contract)
    try:
        # short rows read their missing trailing fields as nulls; a row with more fields than the
        # header makes the reader refuse, and only then is the file read the slower way below
        # the text is valid UTF-8 by now (`decode_landed`), so the reader need not make a lossy copy
        return pl.read_csv(data, separator=delimiter, infer_schema=False, encoding="utf8")
    except pl.exceptions.ComputeError as exc:
        if "utf" in str(exc).lower() and "more fields" not in str(exc):
            return pl.read_csv(data, separator=delimiter, infer_schema=False, encoding="utf8-lossy")
        if "more fields" not in str(exc):
            raise
    names = pl.read_csv(header + b"\n", separator=delimiter, n_rows=0, infer_schema=False,
                        encoding="utf8-lossy").columns
    # spare trailing columns catch the surplus fields instead of truncating them silently
    slots = [f"__ragged_{i}" for i in range(_RAGGED_SLOTS)]
    widened = b"".join([delimiter.join(f'"{name}"' for name in names + slots).encode(), memoryview(data)[len(header):]])
    return pl.read_csv(widened, separator=delimiter, infer_schema=False, encoding="utf8-lossy",
                       truncate_ragged_lines=True)


def _read_jsonl(data: bytes) -> tuple[pl.DataFrame, pl.Series | None]:
    """Read JSON Lines; returns the frame and, when some lines are not JSON, the bad lines' numbers."""
    try:
        return pl.read_ndjson(io.BytesIO(data), infer_schema_length=None), None
    except Exception:  # noqa: BLE001 - any parse error falls back to line-by-line validation below
        pass
    text = data.decode("utf-8", errors="replace")
    lines = pl.DataFrame({"line": text.split("\n")}).filter(pl.col("line").str.strip_chars() != "")
    # record numbers count non-blank lines, as the fast path above does
    lines = lines.with_row_index("line_number", offset=1).with_columns(pl.col("line_number").cast(pl.Int64))
    valid = duckdb.sql("SELECT json_valid(line) AND starts_with(ltrim(line), '{') AS ok FROM lines").pl()["ok"]
    good = lines.filter(valid.fill_null(False))
    bad = lines.filter(~valid.fill_null(False))
    body = "\n".join(good["line"].to_list()).encode()
    frame = pl.read_ndjson(io.BytesIO(body), infer_schema_length=None) if body else pl.DataFrame()
    return frame.with_columns(good["line_number"].alias("_row_number")), bad


def _file_quarantine(contract: SourceContract, rel: str, rule: str, reason: str, **ctx) -> pl.DataFrame:
    return conform(
        pl.DataFrame({"source": [contract.name], "stage": [STAGE], "rule": [rule], "reason": [reason],
                      "file": [rel], "row_number": [None], "record": [None], **{k: [v] for k, v in ctx.items()}}),
        QUARANTINE_SCHEMA,
    )


# ---------------------------------------------------------------------------------------------
# enforcing the contract


def _map_columns(frame: pl.DataFrame, contract: SourceContract) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """landed name → contract name (with the renames among them) and the unknown extra columns."""
    aliases = contract.alias_map()
    mapping: dict[str, str] = {}
    renamed: dict[str, str] = {}
    extras: list[str] = []
    for name in frame.columns:
        if name.startswith("__ragged_") or name == "_row_number":
            continue
        target = aliases.get(name.strip().lower())
        if target is None or target in mapping.values():
            extras.append(name)
            continue
        mapping[name] = target
        if name != target:
            renamed[name] = target
    return mapping, renamed, extras


def enforce_contract(
    frame: pl.DataFrame,
    contract: SourceContract,
    *,
    rel: str,
    digest: str,
    partition: str | None,
    run_id: str,
    ingested_at: datetime,
    bad_lines: pl.DataFrame | None = None,
    marked: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, FileReport]:
    """Split one file's rows into raw rows and quarantine rows; returns (raw, quarantine, audit, report).
    ``marked=False`` says the text was decoded without an undecodable byte (no :data:`BYTE_MARK` to look for)."""
    report = FileReport(file=rel, file_hash=digest, format="", status="ingested")
    if "_row_number" not in frame.columns:
        frame = frame.with_row_index("_row_number", offset=1).with_columns(pl.col("_row_number").cast(pl.Int64))
    mapping, report.renamed_columns, report.extra_columns = _map_columns(frame, contract)
    ragged = [c for c in frame.columns if c.startswith("__ragged_")]
    landed_cols = [c for c in frame.columns if c != "_row_number" and not c.startswith("__ragged_")]
    landed = frame  # as read, with the landed column names: what quarantine keeps
    renamed = frame.rename(mapping)
    report.missing_columns = [c for c in contract.required if c not in renamed.columns]
    n = renamed.height
    key_col = contract.key[0]
    keys = (renamed[key_col].cast(pl.String, strict=False) if key_col in renamed.columns
            else pl.repeat(None, n, dtype=pl.String, eager=True))
    renamed, undecodable, fixed_bytes = (undecodable_values(renamed, contract, keys) if marked
                                         else (renamed, [], []))

    # each problem: (rule, mask of the rows it hits, reason text for a subset of row indices); reasons
    # are built only for the rejected rows, so a clean file pays for the masks alone
    problems: list[tuple[str, pl.Series, Callable[[pl.Series], pl.Series]]] = list(undecodable)
    if report.missing_columns:
        reason = f"file lacks required column(s) {', '.join(report.missing_columns)} (known spellings: " + "; ".join(
            f"{c}: {', '.join((c,) + contract.column(c).aliases)}" for c in report.missing_columns) + ")"
        problems.append(("missing_required_column", pl.repeat(True, n, eager=True),
                         lambda idx, r=reason: pl.repeat(r, len(idx), dtype=pl.String, eager=True)))
    if ragged:
        too_many = renamed.select(pl.any_horizontal([pl.col(c).is_not_null() for c in ragged])).to_series()
        if too_many.any():
            reason = f"row has more fields than the header's {len(landed_cols)}"
            problems.append(("ragged_row", too_many,
                             lambda idx, r=reason: pl.repeat(r, len(idx), dtype=pl.String, eager=True)))

    present = {c.name: c.type for c in contract.columns if c.name in renamed.columns}
    parsed = parse_frame(renamed, present)
    audits: list[pl.DataFrame] = list(fixed_bytes)
    for col in contract.columns:
        if col.name not in parsed:
            continue
        p = parsed[col.name]
        if p.failed.any():
            def unparsable(idx: pl.Series, col=col) -> pl.Series:
                shown = renamed[col.name].gather(idx).cast(pl.String, strict=False).str.slice(0, 60)
                return pl.select(pl.format(f"{col.name}: '{{}}' is not a valid {col.type}",
                                           shown.str.replace_all("'", "’"))).to_series()
            problems.append(("unparsable_value", p.failed, unparsable))
        if p.ambiguous is not None and p.ambiguous.any():
            problems.append(("ambiguous_number", p.ambiguous,
                             lambda idx, p=p, col=col: pl.format(f"{col.name}: {{}}", p.reason.gather(idx)).pipe(
                                 lambda e: pl.select(e).to_series())))
        if p.number_format:
            report.number_formats[col.name] = p.number_format
        if col.required:
            blank = p.values.is_null() & ~p.failed
            if blank.any():
                reason = f"{col.name}: required value is missing"
                problems.append(("missing_required_value", blank,
                                 lambda idx, r=reason: pl.repeat(r, len(idx), dtype=pl.String, eager=True)))
        if p.normalised.any():
            idx = p.normalised.arg_true()
            audits.append(pl.DataFrame({
                "rule": "number_normalised", "column": col.name,
                "original": renamed[col.name].gather(idx).cast(pl.String),
                "fixed": p.values.gather(idx).cast(pl.String),
                "row_number": renamed["_row_number"].gather(idx), "key": keys.gather(idx),
            }))

    typed = pl.DataFrame([
        parsed[c.name].values if c.name in parsed else pl.repeat(None, n, dtype=c.dtype, eager=True).alias(c.name)
        for c in contract.columns
    ]).with_columns(
        (renamed.select(record_json(report.extra_columns)).to_series() if report.extra_columns
         else pl.repeat(None, n, dtype=pl.String, eager=True)).alias(EXTRA_COLUMN),
        pl.lit(rel).alias("_source_file"),
        pl.lit(digest).alias("_file_hash"),
        renamed["_row_number"].alias("_row_number"),
        pl.lit(ingested_at).cast(LINEAGE_COLUMNS["_ingested_at"]).alias("_ingested_at"),
        pl.lit(partition, dtype=pl.String).alias("_partition"),
    )
    ctx = dict(source=pl.lit(contract.name), stage=pl.lit(STAGE), file=pl.lit(rel), run_id=pl.lit(run_id),
               partition=pl.lit(partition, dtype=pl.String), quarantined_at=pl.lit(ingested_at))
    quarantine = empty_quarantine()
    if problems:
        bad = pl.select(pl.any_horizontal([mask for _, mask, _ in problems])).to_series()
        raw = typed.filter(~bad)
        idx = bad.arg_true()
        masks = [mask.gather(idx) for _, mask, _ in problems]
        rule = pl.select(pl.coalesce([pl.when(m).then(pl.lit(name)) for (name, _, _), m in zip(problems, masks)])
                         ).to_series()
        parts = []
        for (_, _, reason_for), m in zip(problems, masks):
            text = pl.repeat(None, len(idx), dtype=pl.String, eager=True)
            hit = m.arg_true()
            if len(hit):
                text = text.scatter(hit, reason_for(idx.gather(hit)))
            parts.append(text)
        reason = pl.select(pl.concat_str(parts, separator="; ", ignore_nulls=True)).to_series()
        rejected = landed.select(landed_cols + ragged).gather(idx)
        quarantine = conform(rejected.select(record=record_json(landed_cols + ragged)).with_columns(
            rule=rule, reason=reason, row_number=landed["_row_number"].gather(idx), key=keys.gather(idx),
            **ctx), QUARANTINE_SCHEMA)
    else:
        raw = typed
    raw = raw.select(list(raw_schema(contract)))
    if bad_lines is not None and bad_lines.height:
        quarantine = pl.concat([quarantine, conform(bad_lines.select(
            rule=pl.lit("unparsable_line"), reason=pl.lit("line is not a JSON object"),
            row_number=pl.col("line_number").cast(pl.Int64), record=pl.col("line").str.slice(0, 2000),
        ).with_columns(**ctx), QUARANTINE_SCHEMA)])

    audit = empty_audit()
    if audits:
        audit = conform(pl.concat(audits).with_columns(
            source=pl.lit(contract.name), stage=pl.lit(STAGE), file=pl.lit(rel), run_id=pl.lit(run_id),
            partition=pl.lit(partition, dtype=pl.String), fixed_at=pl.lit(ingested_at)), AUDIT_SCHEMA)

    report.rows_in_file = n + (bad_lines.height if bad_lines is not None else 0)
    report.rows_landed = raw.height
    report.rows_quarantined = quarantine.height
    return raw, quarantine, audit, report


def read_landed_file(
    path: Path,
    contract: SourceContract,
    *,
    landing_root: Path,
    partition: str | None,
    run_id: str,
    ingested_at: datetime,
    data: bytes | None = None,
    digest: str | None = None,
    row_offset: int = 0,
    encoding: dict | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, FileReport]:
    """Read one landed file against its contract: (raw rows, quarantine rows, audit rows, report).

    A batch of a file collected in batches passes the file's ``digest``, the number of records before
    it (``row_offset``) and the file's ``encoding`` decision (its text is then valid UTF-8 already)."""
    rel = path.relative_to(landing_root).as_posix() if path.is_relative_to(landing_root) else str(path)
    data = path.read_bytes() if data is None else data
    digest = digest or file_hash(data)
    fmt = FORMATS.get(path.suffix.lower())
    ctx = dict(run_id=run_id, partition=partition, quarantined_at=ingested_at)

    def unreadable(rule: str, reason: str, status: str = "unreadable"):
        q = _file_quarantine(contract, rel, rule, reason, **ctx)
        return raw_empty(contract), q, empty_audit(), FileReport(rel, digest, fmt or "", status, rows_quarantined=1, note=reason)

    if fmt is None:
        return unreadable("unknown_format", f"{rel}: unknown file type {path.suffix!r}; expected one of {sorted(FORMATS)}")
    if not data or data.isspace():
        return unreadable("empty_file", f"{rel}: the file is empty", status="empty")
    bad_lines = None
    if encoding is not None and fmt in ("csv", "jsonl"):
        decoded = Decoded(data, encoding["encoding"], encoding["method"], encoding.get("bom", False), 0,
                          encoding.get("note", ""))
    else:
        decoded = decode_landed(data) if fmt in ("csv", "jsonl") else None
    text = decoded.data if decoded is not None else data
    if not text or text.isspace():
        return unreadable("empty_file", f"{rel}: the file is empty (after decoding {decoded.encoding})", status="empty")
    try:
        if fmt == "csv":
            frame = _read_csv(text, contract)
        elif fmt == "jsonl":
            frame, bad_lines = _read_jsonl(text)
        else:
            frame = pl.read_parquet(data)
    except Exception as exc:  # noqa: BLE001 - the reader's own message becomes the quarantine reason
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return unreadable("unreadable_file", f"{rel}: cannot be read as {fmt}: {first_line[:300]}")
    if frame.height == 0 and (bad_lines is None or bad_lines.height == 0):
        return unreadable("no_data_rows", f"{rel}: the file has a header but no data rows", status="empty")
    if row_offset:  # records of the batches before this one
        if "_row_number" in frame.columns:
            frame = frame.with_columns(pl.col("_row_number") + row_offset)
        else:
            frame = frame.with_row_index("_row_number", offset=row_offset + 1).with_columns(
                pl.col("_row_number").cast(pl.Int64))
        if bad_lines is not None:
            bad_lines = bad_lines.with_columns(pl.col("line_number") + row_offset)
    raw, quarantine, audit, report = enforce_contract(
        frame, contract, rel=rel, digest=digest, partition=partition, run_id=run_id,
        ingested_at=ingested_at, bad_lines=bad_lines,
        marked=decoded is None or decoded.undecodable_bytes > 0 or decoded.encoding not in ("ascii", "utf-8", "utf-8-sig"))
    report.format = fmt
    if decoded is not None:
        report.encoding = decoded.as_dict()
    return raw, quarantine, audit, report


def raw_empty(contract: SourceContract) -> pl.DataFrame:
    return pl.DataFrame(schema=raw_schema(contract))


# ---------------------------------------------------------------------------------------------
# a partition of landed files → the raw layer


# ---------------------------------------------------------------------------------------------
# landing-zone hygiene: only regular files are read, and no record may be bigger than the limit

#: the default largest record (one line of a CSV/JSON Lines file, one row of a Parquet file) collected;
#: bigger ones are quarantined with a valid-JSON preview (``Settings.max_record_bytes``)
DEFAULT_MAX_RECORD_BYTES = 1 << 20
#: JSON nested deeper than this is refused before a parser sees it (Polars' reader crashes the
#: process on a few hundred levels)
MAX_JSON_DEPTH = 64
#: characters of a refused record kept in its quarantine preview
PREVIEW_CHARS = 1000
_SENTINEL = "@@governance-refused-record:"
_SENTINEL_RE = r"@@governance-refused-record:(\d+)@@"


def read_regular_file(path: Path) -> bytes | str:
    """The bytes of a landed file, or why it is refused: a symbolic link (never followed, so nothing
    outside the landing zone is read) or anything that is not a regular file. Opened with
    ``O_NOFOLLOW`` and checked on the open descriptor, so a file swapped for a link meanwhile is refused too."""
    opened = _open_regular(path)
    if isinstance(opened, str):
        return opened
    try:
        with os.fdopen(opened, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(opened)


def refused_file(contract: SourceContract, rel: str, why: str, *, run_id: str, partition: str | None,
                 ingested_at: datetime) -> tuple[pl.DataFrame, FileReport]:
    """One quarantine row naming a landing entry that is not read, and its report (1 read = 1 quarantined)."""
    reason = f"{rel}: {why}"
    q = _file_quarantine(contract, rel, "not_a_regular_file", reason, run_id=run_id, partition=partition,
                         quarantined_at=ingested_at)
    return q, FileReport(rel, "", FORMATS.get(Path(rel).suffix.lower(), ""), "refused", rows_in_file=1,
                         rows_quarantined=1, note=reason)


def _line_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of every line (end excludes the newline), found in 16 MiB blocks."""
    view = np.frombuffer(data, dtype=np.uint8)
    ends = [np.flatnonzero(view[i:i + (1 << 24)] == 10) + i for i in range(0, len(view), 1 << 24)]
    ends = np.concatenate(ends + [np.array([len(view)])]) if ends else np.array([len(view)])
    starts = np.concatenate([[0], ends[:-1] + 1])
    return starts.astype(np.int64), ends.astype(np.int64)


def _json_depths(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Bracket nesting depth of each line (brackets inside strings count too: an upper bound), in
    blocks of whole lines of about 16 MiB (lines are at most ``max_record_bytes`` long by now)."""
    view = np.frombuffer(data, dtype=np.uint8)
    depth = np.zeros(len(starts), dtype=np.int64)
    i = 0
    while i < len(starts):
        j = max(int(np.searchsorted(ends, starts[i] + (1 << 24), side="right")), i + 1)
        lo, hi = int(starts[i]), int(ends[j - 1])
        chunk = view[lo:hi]
        running = np.cumsum((chunk == 123).astype(np.int32) + (chunk == 91) - (chunk == 125) - (chunk == 93),
                            dtype=np.int32)
        s, e = starts[i:j] - lo, ends[i:j] - lo
        nonempty = np.flatnonzero(e > s)
        if len(nonempty):
            s, e = s[nonempty], e[nonempty]
            bounds = np.empty(2 * len(s), dtype=np.int64)
            bounds[0::2], bounds[1::2] = s, e
            if bounds[-1] >= len(running):
                bounds = bounds[:-1]
            peak = np.maximum.reduceat(running, bounds)[0::2]  # max over exactly [start, end) of each line
            before = np.where(s > 0, running[np.maximum(s - 1, 0)], 0)
            depth[i + nonempty] = peak - before
        i = j
    return depth


def _cut_lines(data: bytes, refuse: np.ndarray, starts: np.ndarray, ends: np.ndarray, cut: dict[int, dict],
               describe) -> bytes:
    """Replace the refused lines by placeholder lines numbered on from ``len(cut)``; record each in ``cut``."""
    if not refuse.any():
        return data
    pieces, pos = [], 0
    for i in np.flatnonzero(refuse):
        s, e = int(starts[i]), int(ends[i])
        n = len(cut)
        text = data[s:min(e, s + 4 * PREVIEW_CHARS)].decode("utf-8", errors="replace")[:PREVIEW_CHARS]
        rule, reason = describe(i)
        cut[n] = {"rule": rule, "reason": reason, "record": json.dumps({
            "preview": text, "bytes": e - s, "truncated": e - s > len(text.encode()),
            "sha256": hashlib.sha256(data[s:e]).hexdigest()}, ensure_ascii=False)}
        pieces += [data[pos:s], f"{_SENTINEL}{n}@@".encode()]
        pos = e
    pieces.append(data[pos:])
    return b"".join(pieces)


def _has_long_line(data: bytes, limit: int) -> bool:
    """Whether a line (newline excluded) is longer than ``limit`` bytes: one backwards search for a
    newline per window of ``limit + 1`` bytes, instead of locating every line."""
    pos, n = 0, len(data)
    while n - pos > limit:
        nl = data.rfind(b"\n", pos, pos + limit + 1)
        if nl < 0:
            return True
        pos = nl + 1
    return False


def guard_records(data: bytes, fmt: str | None, max_record_bytes: int) -> tuple[bytes, dict[int, dict]]:
    """Cut the lines a reader must not see — longer than ``max_record_bytes``, or JSON nested deeper
    than :data:`MAX_JSON_DEPTH` — each replaced by a short placeholder line, so row numbers keep
    counting; returns the bytes to read and, per placeholder number, what was cut (with a preview)."""
    cut: dict[int, dict] = {}
    if fmt not in ("csv", "jsonl"):
        return data, cut
    if len(data) > max_record_bytes and _has_long_line(data, max_record_bytes):
        starts, ends = _line_spans(data)
        lengths = ends - starts
        data = _cut_lines(data, lengths > max_record_bytes, starts, ends, cut, lambda i: (
            "record_too_large", f"record of {int(lengths[i]):,} bytes is larger than the maximum of "
                                f"{max_record_bytes:,} bytes (max_record_bytes); a preview is kept"))
    if fmt == "jsonl" and data.count(b"{") + data.count(b"[") > MAX_JSON_DEPTH:
        starts, ends = _line_spans(data)
        depths = _json_depths(data, starts, ends)
        data = _cut_lines(data, depths > MAX_JSON_DEPTH, starts, ends, cut, lambda i: (
            "record_too_deep", f"JSON nested {int(depths[i])} levels deep (more than {MAX_JSON_DEPTH}); "
                               "a preview is kept"))
    return data, cut


def _preview_json(text: pl.Expr) -> pl.Expr:
    """A (possibly cut) text as a valid JSON object: preview, length, whether it was cut."""
    return pl.struct(preview=text.str.slice(0, PREVIEW_CHARS), truncated=text.str.len_chars() > PREVIEW_CHARS
                     ).struct.json_encode()


#: magic numbers of compressed streams a reader would inflate (Polars decompresses gzip/zlib/zstd CSV itself)
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
               (b"PK\x03\x04", "zip"), (b"\x78\x01", "zlib"), (b"\x78\x5e", "zlib"), (b"\x78\x9c", "zlib"),
               (b"\x78\xda", "zlib"))


def refuse_before_reading(data: bytes, fmt: str | None, max_record_bytes: int) -> tuple[str, str] | None:
    """Why a file must not reach a reader at all: a compressed stream (a gzip bomb inflates in the
    reader), or a Parquet file whose rows declare more uncompressed bytes than ``max_record_bytes``
    each (a Parquet bomb); None when it may be read."""
    if fmt in ("csv", "jsonl"):
        for magic, kind in _COMPRESSED:
            if data.startswith(magic):
                return ("compressed_file", f"a {kind}-compressed stream: compressed files are not collected "
                        "(decompress before landing; a reader would inflate it in memory)")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - not Parquet: the reader says why
            return None
        rows = max(meta.num_rows, 1)
        inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if inflated / rows > max_record_bytes:
            return ("record_too_large", f"Parquet rows declare {inflated / rows:,.0f} bytes each uncompressed "
                    f"({inflated:,} in all for {meta.num_rows:,} rows), more than the maximum of "
                    f"{max_record_bytes:,} bytes (max_record_bytes)")
    return None


def read_bounded(path: Path, contract: SourceContract, *, landing_root: Path, partition: str | None, run_id: str,
                 ingested_at: datetime, data: bytes, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                 digest: str | None = None, row_offset: int = 0, encoding: dict | None = None,
                 first_batch: bool = True) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, FileReport]:
    """:func:`read_landed_file` behind the record limits (:func:`guard_records`): records cut there become
    quarantine rows (``record_too_large``/``record_too_deep``) with a valid-JSON preview; a line that is
    not JSON is kept as a JSON preview too; and the file accounting ``read = landed + quarantined``
    holds for every file, an unreadable one counting as one record read. ``digest``, ``row_offset`` and
    ``encoding``: see :func:`read_landed_file` (a batch after the first — ``row_offset`` > 0, or
    ``first_batch=False`` for one read before the records ahead of it are counted — is not checked for
    compression)."""
    digest = digest or file_hash(data)
    fmt = FORMATS.get(path.suffix.lower())
    refusal = refuse_before_reading(data, fmt, max_record_bytes) if first_batch and not row_offset else None
    if refusal is not None:  # a reader would inflate it in memory: one quarantine row, nothing read
        rel = path.relative_to(landing_root).as_posix() if path.is_relative_to(landing_root) else str(path)
        rule, why = refusal
        q = _file_quarantine(contract, rel, rule, f"{rel}: {why}", run_id=run_id, partition=partition,
                             quarantined_at=ingested_at)
        return raw_empty(contract), q, empty_audit(), FileReport(rel, digest, fmt or "", "unreadable", rows_in_file=1,
                                                                  rows_quarantined=1, note=f"{rel}: {why}")
    guarded, cut = guard_records(data, fmt, max_record_bytes)
    try:
        raw, quarantine, audit, report = read_landed_file(
            path, contract, landing_root=landing_root, partition=partition, run_id=run_id,
            ingested_at=ingested_at, data=guarded, digest=digest, row_offset=row_offset, encoding=encoding)
    except Exception as exc:  # noqa: BLE001 - one hostile file must not stop the partition: it is quarantined
        rel = path.relative_to(landing_root).as_posix() if path.is_relative_to(landing_root) else str(path)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        why = f"{rel}: cannot be collected ({type(exc).__name__}: {first})"
        q = _file_quarantine(contract, rel, "unreadable_file", why, run_id=run_id, partition=partition,
                             quarantined_at=ingested_at)
        return raw_empty(contract), q, empty_audit(), FileReport(rel, digest, fmt or "", "unreadable", rows_in_file=1,
                                                                  rows_quarantined=1, note=why)
    if cut:
        report.file_hash = digest
        raw = raw.with_columns(pl.lit(digest).alias("_file_hash"))
        strings = [c for c, t in raw.schema.items() if t == pl.String and not c.startswith("_")]
        held = (raw.select(pl.any_horizontal(pl.col(c).str.contains(_SENTINEL, literal=True).fill_null(False)
                                             for c in strings)).to_series() if strings and raw.height
                else pl.repeat(False, raw.height, eager=True))
        if held.any():  # a placeholder that met no required column: quarantined all the same
            moved = raw.filter(held)
            raw = raw.filter(~held)
            quarantine = pl.concat([quarantine, conform(moved.select(
                record=record_json(strings), row_number=pl.col("_row_number"), key=pl.lit(None, pl.String),
                source=pl.lit(contract.name), stage=pl.lit(STAGE), file=pl.col("_source_file"),
                run_id=pl.lit(run_id), partition=pl.lit(partition, dtype=pl.String),
                quarantined_at=pl.lit(ingested_at)), QUARANTINE_SCHEMA)])
        which = quarantine["record"].str.extract(_SENTINEL_RE).cast(pl.Int64)
        table = pl.DataFrame({"n": list(cut), "rule": [c["rule"] for c in cut.values()],
                              "reason": [c["reason"] for c in cut.values()], "record": [c["record"] for c in cut.values()]},
                             schema={"n": pl.Int64, "rule": pl.String, "reason": pl.String, "record": pl.String})
        found = pl.DataFrame({"n": which}).join(table, on="n", how="left", maintain_order="left")
        hit = which.is_not_null()
        quarantine = quarantine.with_columns(
            rule=pl.when(pl.lit(hit)).then(pl.lit(found["rule"])).otherwise(pl.col("rule")),
            reason=pl.when(pl.lit(hit)).then(pl.format("{}: {}", pl.lit(report.file), pl.lit(found["reason"])))
            .otherwise(pl.col("reason")),
            record=pl.when(pl.lit(hit)).then(pl.lit(found["record"])).otherwise(pl.col("record")),
        )
    if quarantine.height and "unparsable_line" in quarantine["rule"]:
        # the line as it was (cut at 2,000 characters by the reader) becomes a valid JSON preview
        is_line = pl.col("rule") == "unparsable_line"
        quarantine = quarantine.with_columns(record=pl.when(is_line).then(_preview_json(pl.col("record")))
                                             .otherwise(pl.col("record")))
    report.rows_landed = raw.height
    report.rows_quarantined = quarantine.height
    if report.rows_in_file < report.rows_landed + report.rows_quarantined:  # an unreadable file: one record
        report.rows_in_file = report.rows_landed + report.rows_quarantined
    return raw, quarantine, audit, report


def landed_files(landing_root: Path, source: str, partition: str | None) -> list[Path]:
    """The entries landed for a source on a day (every day for snapshot sources), in a stable order:
    every entry but hidden ones — symbolic links and anything else that is not a regular file are
    refused by :func:`collect` with a quarantine row naming them, never read or followed."""
    base = landing_root / source
    folders = [base / partition] if partition else sorted(p for p in base.glob("*") if p.is_dir() or p.is_symlink())
    files: list[Path] = [f for f in folders if f.is_symlink()]  # a linked day folder is refused whole
    folders = [f for f in folders if not f.is_symlink()]
    for folder in folders:
        if folder.is_dir():
            files.extend(sorted(p for p in folder.iterdir()
                                if not p.name.startswith(".") and (p.is_symlink() or not p.is_dir())))
    return files


def skipped_files(landing_root: Path, source: str, partition: str | None) -> list[FileReport]:
    """The entries of a source's landing folders that are not collected, each with its reason: hidden
    files (a name starting with '.': an import still writing ``.x.importing``, editor and OS files)
    and sub-folders. Nothing in the landing zone is skipped unrecorded (symbolic links and special files
    are refused by :func:`collect` with a quarantine row naming them)."""
    base = landing_root / source
    folders = [base / partition] if partition else sorted(p for p in base.glob("*") if p.is_dir())
    reports: list[FileReport] = []
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():
            continue
        for p in sorted(folder.iterdir()):
            rel = p.relative_to(landing_root).as_posix()
            if p.name.startswith("."):
                why = ("an import in progress writes this temporary file; it is collected once renamed into place"
                       if p.name.endswith(".importing") else
                       "hidden file (the name starts with '.'): not collected; rename it without the dot to collect it")
            elif p.is_dir() and not p.is_symlink():
                why = "a folder (not a file): not collected"
            else:
                continue
            reports.append(FileReport(rel, "", FORMATS.get(p.suffix.lower(), ""), "skipped", note=why))
    return reports


def landed_partitions(landing_root: Path, source: str) -> list[str]:
    base = landing_root / source
    return sorted(p.name for p in base.glob("????-??-??") if p.is_dir()) if base.exists() else []


#: CSV and JSON Lines files larger than this are collected in batches of about this many bytes (cut at
#: record boundaries), so memory is bounded by the batch, not the file; smaller files are read whole.
#: A batch's peak is about 20 times its bytes, and larger batches were no faster (bench/collect.py:
#: 10M events in 16 MiB batches 12 s and 0.5 GiB peak without the write, in 64 MiB batches 23 s and 1.3 GiB)
DEFAULT_BATCH_BYTES = 16 << 20
#: landed rows a streamed :func:`ingest_partition` keeps in ``CollectionResult.raw`` (the lake has them all)
PREVIEW_ROWS = 1000
_SCAN_BLOCK = 16 << 20


def _open_regular(path: Path) -> int | str:
    """An open descriptor of a landed regular file, or why it is refused (see :func:`read_regular_file`)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if path.is_symlink():
            return "a symbolic link: not followed (only regular files inside the landing zone are collected)"
        return f"cannot be opened: {exc.strerror or type(exc).__name__}"
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a named pipe" if stat.S_ISFIFO(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "not a regular file")
        return f"{kind}: not a regular file, not read"
    return fd


def _pread_full(fd: int, size: int, offset: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = os.pread(fd, size - got, offset + got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def _scan_text(fd: int, size: int) -> tuple[str, dict | None, int]:
    """One pass over a large text file: its SHA-256 and whether it can be read in batches — ASCII, or
    valid UTF-8 (with or without a byte order mark) — as ``(digest, encoding decision or None, start)``;
    ``start`` skips the byte order mark. Anything else (UTF-16, single-byte encodings, damaged bytes)
    needs the whole text for its decision (:func:`decode_landed`) and is read whole."""
    h = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    decision: dict | None = {"encoding": "ascii", "method": "all bytes < 0x80", "bom": False}
    start, pos = 0, 0
    while pos < size:
        block = _pread_full(fd, min(_SCAN_BLOCK, size - pos), pos)
        if not block:
            break
        h.update(block)
        text = block
        if pos == 0:
            if block.startswith(b"\xef\xbb\xbf"):
                start, text = 3, block[3:]
                decision = {"encoding": "utf-8-sig", "method": "byte order mark", "bom": True}
            elif b"\x00" in block[:4096] or block.startswith((b"\xff\xfe", b"\xfe\xff")):
                decision = None
        if decision is not None and not text.isascii():
            try:
                utf8.decode(text)
            except UnicodeDecodeError:
                decision = None
            else:
                if decision["encoding"] == "ascii":
                    decision = {"encoding": "utf-8", "method": "valid UTF-8", "bom": False}
        pos += len(block)
    if decision is not None:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            decision = None
    return h.hexdigest(), decision, start


def _record_end(buf: bytes, csv: bool, batch_bytes: int) -> int:
    """Where the last whole record of ``buf`` (which starts at a record boundary) ends: after its
    newline; 0 when there is none yet. In CSV a newline inside a quoted field is not a boundary (an even
    number of quote characters before it); only when none qualifies in four batches' worth of text (a
    stray quote character) is the last newline taken."""
    end = buf.rfind(b"\n") + 1
    if not csv or end == 0 or buf.count(b'"', 0, end) % 2 == 0:
        return end
    view = np.frombuffer(buf, dtype=np.uint8, count=end)
    quotes = np.flatnonzero(view == 34)
    newlines = np.flatnonzero(view == 10)
    even = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    if len(even):
        return int(even[-1]) + 1
    return end if len(buf) > max(4 * batch_bytes, 1 << 20) else 0


def _record_batches(fd: int, start: int, size: int, batch_bytes: int, csv: bool) -> Iterator[bytes]:
    """The file from ``start`` in pieces of about ``batch_bytes`` that end at record boundaries (a
    record longer than a batch extends it: :func:`guard_records` cuts it afterwards)."""
    pos, carry = start, b""
    while pos < size:
        block = _pread_full(fd, min(batch_bytes, size - pos), pos)
        if not block:
            break
        pos += len(block)
        buf = carry + block if carry else block
        if pos >= size:
            carry = buf
            break
        end = _record_end(buf, csv, batch_bytes)
        if end == 0:
            carry = buf
            continue
        carry = buf[end:]
        yield buf[:end]
        del buf
    if carry:
        yield carry


def _merge_reports(reports: list[FileReport], batches: int) -> FileReport:
    """One file's report from the reports of its batches."""
    first = reports[0]
    merged = FileReport(first.file, first.file_hash, first.format,
                        "ingested" if any(r.status == "ingested" for r in reports) else first.status,
                        renamed_columns=first.renamed_columns, extra_columns=first.extra_columns,
                        missing_columns=first.missing_columns, encoding=first.encoding)
    for r in reports:
        merged.rows_in_file += r.rows_in_file
        merged.rows_landed += r.rows_landed
        merged.rows_quarantined += r.rows_quarantined
        for column, decision in r.number_formats.items():
            seen = merged.number_formats.get(column)
            merged.number_formats[column] = decision if seen in (None, decision) else f"{seen}; {decision}"
    notes = list(dict.fromkeys(r.note for r in reports if r.note))
    merged.note = "; ".join([f"collected in {batches} batch(es)"] + notes[:5])
    for column, decision in merged.number_formats.items():
        if ";" in decision:
            merged.number_formats[column] = f"decided per batch: {decision}"
    return merged


class _Collector:
    """Collects landed files one by one — a large CSV/JSON Lines file batch by batch — yielding raw
    frames (:meth:`raw_frames`) while it accumulates the quarantine, audit and file reports."""

    def __init__(self, contract: SourceContract, files: list[Path], *, landing_root: Path, partition: str | None,
                 run_id: str, ingested_at: datetime, ingested_elsewhere: dict[str, str] | None,
                 max_record_bytes: int, batch_bytes: int, keep_rows: int | None) -> None:
        self.contract, self.files, self.landing_root = contract, files, landing_root
        self.ctx = dict(landing_root=landing_root, partition=partition, run_id=run_id, ingested_at=ingested_at,
                        max_record_bytes=max_record_bytes)
        self.seen = dict(ingested_elsewhere or {})
        self.batch_bytes = max(int(batch_bytes), 1)
        self.keep_rows = keep_rows
        self.kept: list[pl.DataFrame] = []
        self.kept_rows = 0
        self.rows_landed = 0
        self.quarantines: list[pl.DataFrame] = []
        self.audits: list[pl.DataFrame] = []
        self.reports: list[FileReport] = []
        self.finished = False

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.landing_root).as_posix() if path.is_relative_to(self.landing_root) else str(path)

    def _landed(self, raw: pl.DataFrame) -> pl.DataFrame:
        self.rows_landed += raw.height
        if self.keep_rows is None or self.kept_rows < self.keep_rows:
            # a preview is copied out, so it does not hold its whole batch's buffers
            part = raw if self.keep_rows is None else pl.read_ipc(
                raw.head(self.keep_rows - self.kept_rows).write_ipc(None).getvalue())
            self.kept.append(part)
            self.kept_rows += part.height
        return raw

    def raw_frames(self) -> Iterator[pl.DataFrame]:
        for path in self.files:
            rel = self._rel(path)
            opened = _open_regular(path)
            if isinstance(opened, str):
                quarantine, report = refused_file(self.contract, rel, opened, run_id=self.ctx["run_id"],
                                                  partition=self.ctx["partition"], ingested_at=self.ctx["ingested_at"])
                self.quarantines.append(quarantine)
                self.reports.append(report)
                continue
            try:
                size = os.fstat(opened).st_size
                fmt = FORMATS.get(path.suffix.lower())
                if fmt in ("csv", "jsonl") and size > self.batch_bytes:
                    yield from self._batched(path, rel, opened, size, fmt)
                else:
                    data = _pread_full(opened, size, 0) if size else b""
                    raw = self._whole(path, rel, data, file_hash(data))
                    if raw is not None:
                        yield raw
            finally:
                os.close(opened)
        self.finished = True

    def _whole(self, path: Path, rel: str, data: bytes, digest: str) -> pl.DataFrame | None:
        if digest in self.seen:
            self.reports.append(FileReport(rel, digest, FORMATS.get(path.suffix.lower(), ""), "duplicate_skipped",
                                           note=f"same content as {self.seen[digest]}, already ingested"))
            return None
        raw, quarantine, audit, report = read_bounded(path, self.contract, data=data, digest=digest, **self.ctx)
        self.seen[digest] = rel
        self.quarantines.append(quarantine)
        self.audits.append(audit)
        self.reports.append(report)
        return self._landed(raw)

    def _batched(self, path: Path, rel: str, fd: int, size: int, fmt: str) -> Iterator[pl.DataFrame]:
        before = os.fstat(fd)
        digest, encoding, start = _scan_text(fd, size)
        if encoding is None:  # the encoding needs the whole text to be decided: read whole
            raw = self._whole(path, rel, _pread_full(fd, size, 0), digest)
            if raw is not None:
                yield raw
            return
        if digest in self.seen:
            self.reports.append(FileReport(rel, digest, fmt, "duplicate_skipped",
                                           note=f"same content as {self.seen[digest]}, already ingested"))
            return
        self.seen[digest] = rel
        head = _pread_full(fd, 16, start)
        refusal = refuse_before_reading(head, fmt, self.ctx["max_record_bytes"])
        if refusal is not None:
            rule, why = refusal
            self.quarantines.append(_file_quarantine(
                self.contract, rel, rule, f"{rel}: {why}", run_id=self.ctx["run_id"], partition=self.ctx["partition"],
                quarantined_at=self.ctx["ingested_at"]))
            self.reports.append(FileReport(rel, digest, fmt, "unreadable", rows_in_file=1, rows_quarantined=1,
                                           note=f"{rel}: {why}"))
            return
        header = b""
        if fmt == "csv":  # every batch is read under the file's header line
            first = _pread_full(fd, min(size - start, self.ctx["max_record_bytes"] + 1), start)
            if b"\n" not in first:  # a header line over the record limit: as a file read whole
                del self.seen[digest]
                raw = self._whole(path, rel, _pread_full(fd, size, 0), digest)
                if raw is not None:
                    yield raw
                return
            header = _header_line(first)
            start += len(header) + 1
            header += b"\n"
        reports: list[FileReport] = []
        offset = 0
        for body in _record_batches(fd, start, size, self.batch_bytes, csv=fmt == "csv"):
            if body.isspace():
                continue
            raw, quarantine, audit, report = read_bounded(
                path, self.contract, data=header + body if header else body, digest=digest, row_offset=offset,
                encoding={**encoding, "note": ""}, **self.ctx)
            del body
            offset += report.rows_in_file
            self.quarantines.append(quarantine)
            self.audits.append(audit)
            reports.append(report)
            if raw.height:
                yield self._landed(raw)
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise CollectionError(f"{rel}: the file changed while it was collected (still being written?); "
                                  "nothing of this partition was published, collect it again")
        if not reports:  # blank text only: the one "empty_file" row of a file read whole
            _, quarantine, audit, report = read_bounded(path, self.contract, data=b"", digest=digest, **self.ctx)
            self.quarantines.append(quarantine)
            reports = [report]
        self.reports.append(_merge_reports(reports, len(reports)))

    def result(self) -> CollectionResult:
        if not self.finished:
            raise RuntimeError("the collection was not run to the end")
        return CollectionResult(
            raw=pl.concat(self.kept) if self.kept else raw_empty(self.contract),
            quarantine=pl.concat(self.quarantines) if self.quarantines else empty_quarantine(),
            audit=pl.concat(self.audits) if self.audits else empty_audit(),
            files=self.reports,
            rows_landed=self.rows_landed,
        )

    def raw_batches(self) -> Iterator[pl.DataFrame]:
        """The raw rows batch by batch in the raw table's schema, for the lake to write as they come
        (at least one frame, empty when nothing landed); runs the collection (once)."""
        if self.finished:
            raise RuntimeError("a collection's raw rows can be streamed once")
        schema = raw_schema(self.contract)
        yielded = False
        for frame in self.raw_frames():
            yielded = True
            yield frame.select(pl.col(c).cast(t) for c, t in schema.items())
        if not yielded:
            yield raw_empty(self.contract)


def collect(
    contract: SourceContract,
    files: list[Path],
    *,
    landing_root: Path,
    partition: str | None,
    run_id: str,
    ingested_at: datetime,
    ingested_elsewhere: dict[str, str] | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> CollectionResult:
    """Read a set of landed files; content already ingested (here or in another partition) is skipped;
    entries that are not regular files are refused, records over ``max_record_bytes`` quarantined. CSV and
    JSON Lines files over ``batch_bytes`` are read in batches (the rows are all returned all the same:
    :func:`ingest_partition` streams them to the lake instead)."""
    collector = _Collector(contract, files, landing_root=landing_root, partition=partition, run_id=run_id,
                           ingested_at=ingested_at, ingested_elsewhere=ingested_elsewhere,
                           max_record_bytes=max_record_bytes, batch_bytes=batch_bytes, keep_rows=None)
    for _ in collector.raw_frames():
        pass
    return collector.result()


def _size_of(path: Path) -> int:
    try:
        st = path.lstat()
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def ledger_dir(source: str) -> str:
    return f"ledger/raw/{source}"


def ingest_partition(
    lake: Lake,
    contract: SourceContract,
    landing_root: Path,
    partition: str | None,
    *,
    run_id: str,
    ingested_at: datetime,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    make_collector: Callable[..., _Collector] = _Collector,
) -> CollectionResult:
    """Collect one partition of a source into the lake: raw table, collection quarantine, audit.

    When a landed CSV/JSON Lines file is larger than ``batch_bytes`` the raw rows are streamed to the
    lake batch by batch (bounded memory) and ``result.raw`` keeps the first :data:`PREVIEW_ROWS`
    (``result.rows_landed`` counts them all).

    Re-running a partition replaces its files. A file whose content another partition already
    ingested is skipped and reported. The ledger (hash → file per partition) is written last, so a
    crash before it leaves the previous ledger describing the previous, still complete, files.

    ``make_collector`` makes what reads the files (`governance.collection_spark.SparkCollector` reads
    them on Apache Spark).
    """
    key = partition or "all"
    elsewhere = {
        digest: f"{entry_file} (partition {other})"
        for other, ledger in lake.read_json_dir(ledger_dir(contract.name)).items()
        if other != key
        for digest, entry_file in ledger.get("files", {}).items()
    }
    files = landed_files(landing_root, contract.name, partition)
    collector = make_collector(contract, files, landing_root=landing_root, partition=partition, run_id=run_id,
                               ingested_at=ingested_at, ingested_elsewhere=elsewhere,
                               max_record_bytes=max_record_bytes, batch_bytes=batch_bytes, keep_rows=None)
    streamed = any(_size_of(f) > collector.batch_bytes for f in files)
    with lake.transaction():  # raw, quarantine and audit of the partition are published together
        if streamed:  # a large file: raw rows go to the lake batch by batch, a preview stays in memory
            collector.keep_rows = PREVIEW_ROWS
            lake.write("raw", contract.name, collector.raw_batches(), partition)
            result = collector.result()
        else:  # as `collect`: every row kept
            for _ in collector.raw_frames():
                pass
            result = collector.result()
            lake.write("raw", contract.name, result.raw, partition)
        result.files.extend(skipped_files(landing_root, contract.name, partition))
        lake.write("quarantine", contract.name, result.quarantine, partition, part=STAGE)
        lake.write("audit", contract.name, result.audit, partition, part=STAGE)
    lake.write_json(f"{ledger_dir(contract.name)}/{key}.json", {
        "run_id": run_id,
        "files": {f.file_hash: f.file for f in result.files if f.status not in ("duplicate_skipped", "skipped")},
        "skipped": {f.file: f.note for f in result.files if f.status == "skipped"},
    })
    return result


def collect_with_settings(settings, contract: SourceContract, partition: str | None, *, run_id: str,
                          ingested_at: datetime) -> CollectionResult:
    """`ingest_partition` from the settings' landing zone into their lake, with their record limit, on
    the engine they name (``engine``: polars here, spark on the session at ``spark_master``; see
    governance/collection_spark.py)."""
    kwargs = dict(run_id=run_id, ingested_at=ingested_at, max_record_bytes=settings.max_record_bytes)
    if settings.engine == "spark":
        from governance.collection_spark import ingest_partition_on_spark
        from governance.spark import settings_session

        return ingest_partition_on_spark(settings_session(settings), settings.lake(), contract,
                                         settings.landing_root, partition, **kwargs)
    return ingest_partition(settings.lake(), contract, settings.landing_root, partition, **kwargs)
