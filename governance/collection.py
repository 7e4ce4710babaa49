"""Landed file → raw rows + quarantine rows, with the source contract enforced and lineage added.

For every file the accounting ``rows in file = rows landed + rows quarantined`` holds; a file that
cannot be read at all becomes one quarantine row naming the file and the reason. The same content
landed twice (same SHA-256) is ingested once.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CollectionResult:
    raw: pl.DataFrame
    quarantine: pl.DataFrame
    audit: pl.DataFrame
    files: list[FileReport]

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
        return pl.read_csv(data, separator=delimiter, infer_schema=False, encoding="utf8-lossy")
    except pl.exceptions.ComputeError as exc:
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
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, FileReport]:
    """Split one file's rows into raw rows and quarantine rows; returns (raw, quarantine, audit, report)."""
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

    # each problem: (rule, mask of the rows it hits, reason text for a subset of row indices); reasons
    # are built only for the rejected rows, so a clean file pays for the masks alone
    problems: list[tuple[str, pl.Series, Callable[[pl.Series], pl.Series]]] = []
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
    audits: list[pl.DataFrame] = []
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
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, FileReport]:
    """Read one landed file against its contract: (raw rows, quarantine rows, audit rows, report)."""
    rel = path.relative_to(landing_root).as_posix() if path.is_relative_to(landing_root) else str(path)
    data = path.read_bytes() if data is None else data
    digest = file_hash(data)
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
    try:
        if fmt == "csv":
            frame = _read_csv(data, contract)
        elif fmt == "jsonl":
            frame, bad_lines = _read_jsonl(data)
        else:
            frame = pl.read_parquet(data)
    except Exception as exc:  # noqa: BLE001 - the reader's own message becomes the quarantine reason
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return unreadable("unreadable_file", f"{rel}: cannot be read as {fmt}: {first_line[:300]}")
    if frame.height == 0 and (bad_lines is None or bad_lines.height == 0):
        return unreadable("no_data_rows", f"{rel}: the file has a header but no data rows", status="empty")
    raw, quarantine, audit, report = enforce_contract(
        frame, contract, rel=rel, digest=digest, partition=partition, run_id=run_id,
        ingested_at=ingested_at, bad_lines=bad_lines)
    report.format = fmt
    return raw, quarantine, audit, report


def raw_empty(contract: SourceContract) -> pl.DataFrame:
    return pl.DataFrame(schema=raw_schema(contract))


# ---------------------------------------------------------------------------------------------
# a partition of landed files → the raw layer


def landed_files(landing_root: Path, source: str, partition: str | None) -> list[Path]:
    """The files landed for a source on a day (every day for snapshot sources), in a stable order."""
    base = landing_root / source
    folders = [base / partition] if partition else sorted(p for p in base.glob("*") if p.is_dir())
    files: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            files.extend(sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")))
    return files


def landed_partitions(landing_root: Path, source: str) -> list[str]:
    base = landing_root / source
    return sorted(p.name for p in base.glob("????-??-??") if p.is_dir()) if base.exists() else []


def collect(
    contract: SourceContract,
    files: list[Path],
    *,
    landing_root: Path,
    partition: str | None,
    run_id: str,
    ingested_at: datetime,
    ingested_elsewhere: dict[str, str] | None = None,
) -> CollectionResult:
    """Read a set of landed files; content already ingested (here or in another partition) is skipped."""
    seen = dict(ingested_elsewhere or {})
    raws, quarantines, audits, reports = [], [], [], []
    for path in files:
        data = path.read_bytes()
        digest = file_hash(data)
        rel = path.relative_to(landing_root).as_posix() if path.is_relative_to(landing_root) else str(path)
        if digest in seen:
            reports.append(FileReport(rel, digest, FORMATS.get(path.suffix.lower(), ""), "duplicate_skipped",
                                      note=f"same content as {seen[digest]}, already ingested"))
            continue
        raw, quarantine, audit, report = read_landed_file(
            path, contract, landing_root=landing_root, partition=partition, run_id=run_id,
            ingested_at=ingested_at, data=data)
        seen[digest] = rel
        raws.append(raw)
        quarantines.append(quarantine)
        audits.append(audit)
        reports.append(report)
    return CollectionResult(
        raw=pl.concat(raws) if raws else raw_empty(contract),
        quarantine=pl.concat(quarantines) if quarantines else empty_quarantine(),
        audit=pl.concat(audits) if audits else empty_audit(),
        files=reports,
    )


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
) -> CollectionResult:
    """Collect one partition of a source into the lake: raw table, collection quarantine, audit.

    Re-running a partition replaces its files. A file whose content another partition already
    ingested is skipped and reported. The ledger (hash → file per partition) is written last, so a
    crash before it leaves the previous ledger describing the previous, still complete, files.
    """
    key = partition or "all"
    elsewhere = {
        digest: f"{entry_file} (partition {other})"
        for other, ledger in lake.read_json_dir(ledger_dir(contract.name)).items()
        if other != key
        for digest, entry_file in ledger.get("files", {}).items()
    }
    files = landed_files(landing_root, contract.name, partition)
    result = collect(contract, files, landing_root=landing_root, partition=partition, run_id=run_id,
                     ingested_at=ingested_at, ingested_elsewhere=elsewhere)
    with lake.transaction():  # raw, quarantine and audit of the partition are published together
        lake.write("raw", contract.name, result.raw, partition)
        lake.write("quarantine", contract.name, result.quarantine, partition, part=STAGE)
        lake.write("audit", contract.name, result.audit, partition, part=STAGE)
    lake.write_json(f"{ledger_dir(contract.name)}/{key}.json", {
        "run_id": run_id,
        "files": {f.file_hash: f.file for f in result.files if f.status != "duplicate_skipped"},
    })
    return result
