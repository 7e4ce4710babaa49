"""Onboarding by declaration: a mapping file says how one shop's export becomes landed rows.

A mapping is a TOML file (see ``governance/mappings/builtin/*.toml`` and the README's "Onboarding a
shop" section). It names the shop, the sources the shop sends at all, how to read the export file
(format, delimiter, header, encoding) and, per contract source, where each contract column comes from:

* ``from = "Col"``      a column of the export (renamed), optionally with a ``format``
* ``const = "view"``    a constant
* ``concat = [...]``    export columns joined with ``:`` (a readable derived key)
* ``hash = [...]``      a deterministic id: the MD5 of the listed export columns' text, 16 hex digits
                        (an export without event ids gets one from the row's content: identical rows
                        get identical ids, so re-sent rows are still found as duplicates; two genuinely
                        different events with identical content are indistinguishable and count as one)
* ``session = "Col"``   a session per value of ``Col``, split by ``gap_minutes`` of inactivity
* ``absent = true``     the export has no such value (landed as null; collection judges it)

Column options: ``format`` (timestamps: a strftime pattern, ``epoch_s``, ``epoch_ms``, ``epoch_us`` or
``auto``), ``timezone`` (of naive timestamps; default UTC), ``add_ms`` (a column of milliseconds
added to the timestamp), ``decimal`` / ``thousands`` (``"."``, ``","``, ``" "``, ``"'"`` or
``"auto"``: numbers are then decided per file and column by the collection stage), ``true`` /
``false`` (boolean spellings), ``values`` (a value map, with ``unmapped = "reject" | "keep"``),
``null_values`` and ``id = true`` (prefix the shop's ``namespace``).

`load_mapping` validates the whole file and raises one `MappingError` listing every problem with its
place in the file. `land` reads an export through a mapping into the landing zone (Parquet, contract
column names, text values in a canonical spelling; the collection stage types and judges them). Values
the mapping cannot express (an unmapped event type declared ``reject``) go to
``_rejected/<shop>/<day>/rejected.parquet`` with a reason: nothing is dropped silently.
"""

from __future__ import annotations

import difflib
import io
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from governance.contracts import CONTRACTS, contract

BUILTIN = Path(__file__).parent / "builtin"
KINDS = ("from", "const", "concat", "hash", "session", "absent")
OPTIONS = {"format", "timezone", "add_ms", "decimal", "thousands", "true", "false", "values", "unmapped",
           "null_values", "id", "gap_minutes", "time", "separator", "per"}
READ_KEYS = {"format", "delimiter", "header", "columns", "encoding", "null_values", "glob", "quote"}
TOP_KEYS = {"version", "shop", "namespace", "sends", "description", "read", "as_of"}
FORMATS = ("csv", "jsonl", "parquet", "whitespace")
EPOCHS = {"epoch_s": 1_000_000, "epoch_ms": 1_000, "epoch_us": 1}
SEPARATORS = (".", ",", " ", "'", "auto", "")
ISO_OUT = "%Y-%m-%dT%H:%M:%S%.6fZ"


class MappingError(ValueError):
    """A mapping file is not valid; the message lists every problem with its place in the file."""


@dataclass(frozen=True)
class ColumnSpec:
    target: str
    kind: str
    source: str | tuple[str, ...] | None = None
    value: object = None
    format: str = "auto"
    timezone: str = "UTC"
    add_ms: str | None = None
    decimal: str = "auto"
    thousands: str = "auto"
    true: tuple[str, ...] = ()
    false: tuple[str, ...] = ()
    values: dict[str, str] | None = None
    unmapped: str = "reject"
    null_values: tuple[str, ...] = ()
    id: bool = False
    gap_minutes: float = 30.0
    time: str | None = None
    separator: str = ":"
    #: the export's number is a total over this quantity column: the value landed is value / quantity,
    #: rounded to cents
    per: str | None = None

    @property
    def inputs(self) -> list[str]:
        """The export columns this column reads."""
        cols: list[str] = []
        if isinstance(self.source, str):
            cols.append(self.source)
        elif self.source:
            cols.extend(self.source)
        cols += [c for c in (self.add_ms, self.time, self.per) if c]
        return cols


@dataclass(frozen=True)
class OutputSpec:
    source: str
    columns: dict[str, ColumnSpec]
    #: derived snapshot rows: one row per distinct value of these contract columns (e.g. the items of
    #: an event log as products); None: one landed row per export row
    distinct: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ReadSpec:
    format: str = "csv"
    delimiter: str = "auto"
    header: bool = True
    columns: tuple[str, ...] = ()
    encoding: str = "auto"
    null_values: tuple[str, ...] = ()
    glob: str = "*"
    quote: str = '"'


@dataclass(frozen=True)
class Mapping:
    path: str
    shop: str
    sends: tuple[str, ...]
    read: ReadSpec
    outputs: dict[str, OutputSpec]
    namespace: str | None = None
    description: str = ""
    as_of: date | None = None

    def sends_source(self, source: str) -> bool:
        return source in self.sends


# ------------------------------------------------------------------------------------------------
# loading and validation


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _strs(value, where: str, errors: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    errors.append(f"{where}: expected a string or a list of strings, got {value!r}")
    return ()


def _column(source: str, target: str, spec, errors: list[str]) -> ColumnSpec | None:
    where = f"[{source}].{target}"
    if isinstance(spec, str):  # shorthand: target = "ExportColumn"
        spec = {"from": spec}
    if not isinstance(spec, dict):
        errors.append(f"{where}: expected a table such as {{ from = \"Column\" }}, got {spec!r}")
        return None
    c = contract(source)
    if target not in c.column_names:
        errors.append(f"{where}: {source} has no column {target!r}{_suggest(target, c.column_names)}; "
                      f"its columns are {', '.join(c.column_names)}")
        return None
    kinds = [k for k in KINDS if k in spec]
    unknown = [k for k in spec if k not in KINDS and k not in OPTIONS]
    for k in unknown:
        errors.append(f"{where}: unknown key {k!r}{_suggest(k, [*KINDS, *OPTIONS])}")
    if len(kinds) != 1:
        errors.append(f"{where}: say where the value comes from with exactly one of {', '.join(KINDS)} "
                      f"(found {', '.join(kinds) or 'none'})")
        return None
    kind = kinds[0]
    logical = c.column(target).type
    kw: dict = {}
    raw = spec[kind]
    if kind == "from":
        if not isinstance(raw, str):
            errors.append(f"{where}.from: expected an export column name (\"\" for an unnamed one), got {raw!r}")
        kw["source"] = raw
    elif kind in ("concat", "hash"):
        cols = _strs(raw, f"{where}.{kind}", errors)
        if not cols:
            errors.append(f"{where}.{kind}: name at least one export column")
        kw["source"] = cols
    elif kind == "session":
        if not isinstance(raw, str):
            errors.append(f"{where}.session: expected the export column that identifies the visitor")
        kw["source"] = raw
        if "time" not in spec:
            errors.append(f"{where}: a session needs time = \"<export time column>\" to split on gaps")
    elif kind == "const":
        if not isinstance(raw, str | int | float | bool):
            errors.append(f"{where}.const: expected a string, number or boolean, got {raw!r}")
        kw["value"] = raw
    elif kind == "absent":
        if raw is not True:
            errors.append(f"{where}.absent: only `absent = true` is meaningful")
    fmt = spec.get("format", "auto")
    if not isinstance(fmt, str):
        errors.append(f"{where}.format: expected a string")
    elif logical in ("timestamp", "date") and fmt != "auto" and fmt not in EPOCHS and "%" not in fmt:
        errors.append(f"{where}.format: {fmt!r} is not a timestamp format; use a strftime pattern such as "
                      f"'%Y-%m-%d %H:%M:%S', or one of auto, {', '.join(EPOCHS)}")
    elif "format" in spec and logical not in ("timestamp", "date"):
        errors.append(f"{where}.format: only timestamp and date columns take a format ({target} is {logical})")
    kw["format"] = fmt if isinstance(fmt, str) else "auto"
    for sep in ("decimal", "thousands"):
        if sep in spec:
            if logical not in ("float", "int"):
                errors.append(f"{where}.{sep}: only number columns take separators ({target} is {logical})")
            elif spec[sep] not in SEPARATORS:
                errors.append(f"{where}.{sep}: {spec[sep]!r} is not one of {', '.join(map(repr, SEPARATORS))}")
            else:
                kw[sep] = spec[sep]
    if kw.get("decimal") not in (None, "auto") and kw.get("decimal") == kw.get("thousands"):
        errors.append(f"{where}: decimal and thousands separators must differ")
    for opt in ("true", "false", "null_values"):
        if opt in spec:
            kw[opt] = _strs(spec[opt], f"{where}.{opt}", errors)
    if ("true" in spec or "false" in spec) and logical != "bool":
        errors.append(f"{where}: true/false spellings apply to boolean columns only ({target} is {logical})")
    if "values" in spec:
        v = spec["values"]
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            errors.append(f"{where}.values: expected a table of export value = \"contract value\"")
        else:
            kw["values"] = {str(k): x for k, x in v.items()}
    if "unmapped" in spec:
        if spec["unmapped"] not in ("reject", "keep"):
            errors.append(f"{where}.unmapped: expected \"reject\" or \"keep\"")
        kw["unmapped"] = spec["unmapped"]
    for opt, typ in (("timezone", str), ("add_ms", str), ("time", str), ("id", bool), ("gap_minutes", int | float),
                     ("separator", str), ("per", str)):
        if opt in spec:
            if not isinstance(spec[opt], typ):
                errors.append(f"{where}.{opt}: expected {getattr(typ, '__name__', 'a number')}, got {spec[opt]!r}")
            else:
                kw[opt] = spec[opt]
    if "per" in spec and logical != "float":
        errors.append(f"{where}.per: only a float column can be divided by a quantity")
    if "add_ms" in spec and logical != "timestamp":
        errors.append(f"{where}.add_ms: only timestamps take an offset")
    return ColumnSpec(target=target, kind=kind, **kw)


def parse_mapping(text: str, path: str = "<mapping>") -> Mapping:
    """Validate a mapping's TOML text; raises `MappingError` listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from None
    errors: list[str] = []
    for k in doc:
        if k not in TOP_KEYS and k not in CONTRACTS:
            errors.append(f"unknown top-level key or source {k!r}{_suggest(k, [*TOP_KEYS, *CONTRACTS])}; sources "
                          f"are {', '.join(CONTRACTS)}")
    if doc.get("version", 1) != 1:
        errors.append(f"version: only version 1 exists, got {doc.get('version')!r}")
    shop = doc.get("shop")
    if not isinstance(shop, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", shop or ""):
        errors.append("shop: required, a name of letters, digits, '_' or '-' (it names the landed files)")
        shop = "shop"
    namespace = doc.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or ":" in namespace or not namespace):
        errors.append("namespace: a non-empty string without ':' (ids become '<namespace>:<id>')")
    outputs_declared = [k for k in doc if k in CONTRACTS]
    sends = doc.get("sends", outputs_declared)
    sends = _strs(sends, "sends", errors)
    for s in sends:
        if s not in CONTRACTS:
            errors.append(f"sends: {s!r} is not a source{_suggest(s, list(CONTRACTS))}")
    if not outputs_declared:
        errors.append(f"declare at least one source table, e.g. [events]; sources are {', '.join(CONTRACTS)}")
    for s in outputs_declared:
        if s not in sends:
            errors.append(f"[{s}] is mapped but `sends` does not list it")
    read_doc = doc.get("read", {})
    if not isinstance(read_doc, dict):
        errors.append("[read]: expected a table")
        read_doc = {}
    for k in read_doc:
        if k not in READ_KEYS:
            errors.append(f"[read].{k}: unknown key{_suggest(k, list(READ_KEYS))}; known: {', '.join(sorted(READ_KEYS))}")
    fmt = read_doc.get("format", "csv")
    if fmt not in FORMATS:
        errors.append(f"[read].format: {fmt!r} is not one of {', '.join(FORMATS)}")
    header = read_doc.get("header", True)
    if not isinstance(header, bool):
        errors.append("[read].header: true or false")
        header = True
    columns = _strs(read_doc.get("columns", []), "[read].columns", errors) if "columns" in read_doc else ()
    if fmt in ("csv", "whitespace") and not header and not columns:
        errors.append("[read]: a file without a header needs columns = [\"...\", ...] naming its fields in order")
    delimiter = read_doc.get("delimiter", "auto")
    if not isinstance(delimiter, str) or (delimiter != "auto" and len(delimiter) != 1):
        errors.append(f"[read].delimiter: one character or \"auto\", got {delimiter!r}")
    read = ReadSpec(format=fmt, delimiter=delimiter if isinstance(delimiter, str) else "auto", header=header,
                    columns=columns, encoding=str(read_doc.get("encoding", "auto")),
                    null_values=_strs(read_doc.get("null_values", []), "[read].null_values", errors)
                    if "null_values" in read_doc else (),
                    glob=str(read_doc.get("glob", "*")), quote=str(read_doc.get("quote", '"')))
    as_of = doc.get("as_of")
    if as_of is not None and not isinstance(as_of, date):
        errors.append("as_of: a TOML date such as 2017-01-01 (the day of snapshot files)")
        as_of = None

    outputs: dict[str, OutputSpec] = {}
    for source in outputs_declared:
        table = doc[source]
        if not isinstance(table, dict):
            errors.append(f"[{source}]: expected a table of contract column = {{ ... }}")
            continue
        distinct = table.get("distinct")
        specs = {}
        for target, spec in table.items():
            if target == "distinct":
                continue
            col = _column(source, target, spec, errors)
            if col is not None:
                specs[target] = col
        c = contract(source)
        missing = [r for r in c.required if r not in specs]
        if missing:
            errors.append(f"[{source}]: required column(s) {', '.join(missing)} not mapped; map each from the "
                          "export, derive it (const, concat, hash, session), or write `absent = true` when the "
                          "export has no such value (collection then quarantines rows without it)")
        dist = None
        if distinct is not None:
            dist = _strs(distinct, f"[{source}].distinct", errors)
            for d in dist:
                if d not in specs:
                    errors.append(f"[{source}].distinct: {d!r} is not one of the mapped columns")
        if namespace is None and any(s.id for s in specs.values()):
            errors.append(f"[{source}]: `id = true` needs a top-level namespace = \"...\"")
        outputs[source] = OutputSpec(source, specs, dist)
    if errors:
        raise MappingError(f"{path}: {len(errors)} problem(s) in the mapping:\n  - " + "\n  - ".join(errors))
    return Mapping(path=path, shop=shop, sends=sends, read=read, outputs=outputs, namespace=namespace,
                   description=str(doc.get("description", "")), as_of=as_of)


def load_mapping(path: str | Path) -> Mapping:
    """A mapping file by path, or a built-in mapping by name (``yoochoose`` → builtin/yoochoose.toml)."""
    p = Path(path)
    if not p.exists() and (BUILTIN / f"{path}.toml").exists():
        p = BUILTIN / f"{path}.toml"
    if not p.exists():
        raise FileNotFoundError(f"mapping {path} not found (built-in mappings: {', '.join(builtin_mappings())})")
    return parse_mapping(p.read_text(encoding="utf-8"), str(p))


def builtin_mappings() -> list[str]:
    return sorted(p.stem for p in BUILTIN.glob("*.toml"))


# ------------------------------------------------------------------------------------------------
# reading an export


def _sniff(text: str) -> str:
    head = text[:20_000].splitlines()[:20]
    best, score = ",", -1.0
    for d in (",", ";", "\t", "|"):
        counts = [line.count(d) for line in head if line.strip()]
        if counts and min(counts) > 0:
            s = min(counts) + (1.0 if len(set(counts)) == 1 else 0.0)
            if s > score:
                best, score = d, s
    return best


def read_export(data: bytes, read: ReadSpec, name: str = "<export>") -> tuple[pl.DataFrame, dict]:
    """An export's bytes → a frame of text columns (``_row``: 1-based record number) and the
    encoding decision. Decoding is the collection stage's (`governance.collection.decode_landed`)."""
    from governance.collection import decode_landed

    if read.format == "parquet":
        frame = pl.read_parquet(io.BytesIO(data))
        frame = frame.select(pl.col(c).cast(pl.String) for c in frame.columns)
        return frame.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64)), {"encoding": "parquet"}
    decoded = decode_landed(data, declared=None if read.encoding == "auto" else read.encoding)
    text = decoded.text
    info = decoded.as_dict()
    nulls = list(read.null_values)
    if read.format == "jsonl":
        frame = pl.read_ndjson(io.BytesIO(text.encode("utf-8")), infer_schema_length=None)
        frame = frame.select(pl.col(c).cast(pl.String) for c in frame.columns)
    elif read.format == "whitespace":
        lines = pl.Series("l", text.splitlines()).str.strip_chars()
        lines = lines.filter(lines != "")
        if read.header:
            names = lines[0].split()
            lines = lines.slice(1)
        else:
            names = list(read.columns)
        split = lines.str.replace_all(r"\s+", " ").str.split(" ")
        frame = pl.DataFrame({n: split.list.get(i, null_on_oob=True) for i, n in enumerate(names)})
    else:
        delim = _sniff(text) if read.delimiter == "auto" else read.delimiter
        frame = pl.read_csv(io.BytesIO(text.encode("utf-8")), separator=delim, has_header=read.header,
                            new_columns=list(read.columns) or None, infer_schema=False,
                            quote_char=read.quote or None, null_values=nulls or None)
        info["delimiter"] = delim
    if nulls and read.format != "csv":
        frame = frame.with_columns(pl.when(pl.col(c).is_in(nulls)).then(None).otherwise(pl.col(c)).alias(c)
                                   for c in frame.columns)
    return frame.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64)), info


# ------------------------------------------------------------------------------------------------
# mapping one export frame onto a source


def _text(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.String)


def _number(spec: ColumnSpec, expr: pl.Expr) -> pl.Expr:
    """A declared number format → canonical text ('1234.5'); values that do not fit the declared
    format pass through unchanged so the collection stage quarantines them with their text."""
    if spec.decimal in ("auto", "") and spec.thousands in ("auto", ""):
        return expr
    dec = "." if spec.decimal in ("auto", "") else spec.decimal
    tho = spec.thousands if spec.thousands not in ("auto", "") else ("," if dec == "." else ".")
    body = expr.str.replace_all(r"[\s\u00a0\u202f$€£¥]|USD|EUR|GBP", "")
    body = body.str.replace_all(re.escape(tho), "", literal=False) if tho.strip() else body
    body = body.str.replace(re.escape(dec), ".", literal=False) if dec != "." else body
    ok = body.cast(pl.Float64, strict=False).is_not_null()
    return pl.when(ok).then(body).otherwise(expr)


def _timestamp_us(spec: ColumnSpec) -> pl.Expr | None:
    """Microseconds since the epoch from the declared format (None for ``auto``: collection parses)."""
    src = _text(spec.source).str.strip_chars()
    if spec.format in EPOCHS:
        us = (src.cast(pl.Float64, strict=False) * EPOCHS[spec.format]).round(0)
        us = pl.when(us.abs() < 9e18).then(us).cast(pl.Int64)
    elif spec.format == "auto":
        if not spec.add_ms and spec.timezone == "UTC":
            return None
        us = src.str.to_datetime(strict=False, time_unit="us", time_zone=None).dt.epoch("us")
    else:
        us = src.str.to_datetime(spec.format, strict=False, time_unit="us").dt.replace_time_zone(None).dt.epoch("us")
    if spec.timezone != "UTC" and spec.format not in EPOCHS:
        us = (pl.from_epoch(us, time_unit="us").dt.replace_time_zone(spec.timezone, ambiguous="earliest",
                                                                       non_existent="null")
              .dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.epoch("us"))
    if spec.add_ms:
        us = us + (_text(spec.add_ms).str.strip_chars().cast(pl.Float64, strict=False) * 1000).round(0).cast(pl.Int64)
    return us


def _iso(us: pl.Expr) -> pl.Expr:
    return pl.from_epoch(us, time_unit="us").dt.to_string(ISO_OUT)


def _hash_ids(frame: pl.DataFrame, cols: Sequence[str]) -> pl.Series:
    """MD5 (first 16 hex digits) of the columns' text joined by U+001F: stable across versions."""
    joined = frame.select(pl.concat_str([_text(c).fill_null("\u2400") for c in cols], separator="\u001f").alias("k"))
    con = duckdb.connect()
    try:
        con.register("j", joined)
        return con.sql("SELECT substr(md5(k), 1, 16) AS h FROM j").pl()["h"]
    finally:
        con.close()


def _sessions(frame: pl.DataFrame, spec: ColumnSpec, time_us: pl.Series) -> pl.Series:
    """visitor + start second of each run of actions with gaps ≤ gap_minutes (in the export's order
    of time, then record)."""
    gap = int(spec.gap_minutes * 60 * 1_000_000)
    df = pl.DataFrame({"v": frame[spec.source].cast(pl.String), "t": time_us, "r": frame["_row"]})
    s = (df.sort("v", "t", "r")
         .with_columns(new=((pl.col("t") - pl.col("t").shift(1).over("v")) > gap).fill_null(True))
         .with_columns(start=pl.when("new").then(pl.col("t")).forward_fill().over("v"))
         .select("r", sid=pl.when(pl.col("v").is_not_null() & pl.col("t").is_not_null())
                 .then(pl.concat_str([pl.col("v"), (pl.col("start") // 1_000_000).cast(pl.String)], separator=":"))))
    return frame.select("_row").join(s, left_on="_row", right_on="r", how="left", maintain_order="left")["sid"]


@dataclass
class Mapped:
    source: str
    #: contract columns as canonical text, plus ``_row`` and ``_day`` (the UTC day when known)
    frame: pl.DataFrame
    rejected: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def map_frame(mapping: Mapping, source: str, frame: pl.DataFrame, file: str = "<export>") -> Mapped:
    """Apply one output of ``mapping`` to an export frame (text columns + ``_row``)."""
    out = mapping.outputs[source]
    missing = sorted({c for s in out.columns.values() for c in s.inputs if c not in frame.columns})
    if missing:
        have = [c for c in frame.columns if c != "_row"]
        hints = "; ".join(f"{m!r}{_suggest(m, have)}" for m in missing)
        raise MappingError(f"{mapping.path}: [{source}] reads column(s) the export {file} does not have: {hints}. "
                           f"The export's columns are {', '.join(have)}")
    c = contract(source)
    prefix = f"{mapping.namespace}:" if mapping.namespace else ""
    exprs: dict[str, pl.Expr] = {}
    reject_rules: list[tuple[str, pl.Expr, pl.Expr]] = []
    time_us: dict[str, pl.Expr] = {}
    for target, spec in out.columns.items():
        logical = c.column(target).type
        if spec.kind == "absent":
            e = pl.lit(None, pl.String)
        elif spec.kind == "const":
            v = spec.value
            e = pl.lit(("true" if v else "false") if isinstance(v, bool) else str(v), pl.String)
        elif spec.kind == "concat":
            e = pl.concat_str([_text(s).str.strip_chars() for s in spec.source], separator=spec.separator)
        elif spec.kind == "hash":
            e = pl.lit(_hash_ids(frame, spec.source))
        elif spec.kind == "session":
            # the session's time is read as the column mapped from the same export column reads it
            same = [s2 for s2 in out.columns.values() if s2.kind == "from" and s2.source == spec.time]
            tspec = ColumnSpec(target="t", kind="from", source=spec.time, format=same[0].format if same else "auto")
            us = _timestamp_us(tspec)
            if us is None:
                us = _text(spec.time).str.to_datetime(strict=False, time_unit="us", time_zone="UTC").dt.epoch("us")
            e = pl.lit(_sessions(frame, spec, frame.select(us.alias("t"))["t"]))
        else:
            e = _text(spec.source)
            if logical != "string" or spec.values is None:
                e = e.str.strip_chars() if logical != "string" else e
        if spec.null_values:
            e = pl.when(e.is_in(list(spec.null_values))).then(None).otherwise(e)
        if spec.values is not None:
            known = e.is_in(list(spec.values))
            if spec.unmapped == "reject":
                shown = spec.source if isinstance(spec.source, str) else target
                reject_rules.append((f"unmapped_{target}", e.is_not_null() & ~known,
                                     pl.format(f"{shown} {{}} has no {target} in the mapping "
                                               f"(known: {', '.join(spec.values)})", e)))
            e = pl.when(known).then(e.replace_strict(spec.values, default=None, return_dtype=pl.String)).otherwise(e)
        if logical in ("float", "int"):
            e = _number(spec, e)
            if spec.per:
                # a total over a quantity → the unit value; text that does not parse passes unchanged
                total, qty = e.cast(pl.Float64, strict=False), _text(spec.per).str.strip_chars().cast(pl.Float64, strict=False)
                e = pl.when(total.is_not_null() & (qty > 0)).then((total / qty).round(2).cast(pl.String)).otherwise(e)
        elif logical == "bool" and (spec.true or spec.false):
            low = e.str.strip_chars().str.to_lowercase()
            e = (pl.when(low.is_in([t.lower() for t in spec.true])).then(pl.lit("true"))
                 .when(low.is_in([f.lower() for f in spec.false])).then(pl.lit("false")).otherwise(e))
        elif logical in ("timestamp", "date") and spec.kind == "from":
            us = _timestamp_us(spec)
            if us is not None:
                time_us[target] = us
                e = pl.when(us.is_not_null()).then(_iso(us)).otherwise(e)
        if spec.id and mapping.namespace:
            e = pl.when(e.is_not_null()).then(pl.concat_str([pl.lit(prefix), e]))
        exprs[target] = e.alias(target)

    mapped = frame.select(pl.col("_row"), *exprs.values())
    if c.time_column and c.time_column in mapped.columns:
        t = c.time_column
        day = (pl.when(pl.col(t).str.contains(r"^\d{4}-\d{2}-\d{2}T")).then(pl.col(t).str.slice(0, 10))
               if t in time_us else
               pl.col(t).str.strip_chars().str.to_datetime(strict=False, time_unit="us", time_zone="UTC")
               .dt.date().cast(pl.String))
        mapped = mapped.with_columns(day.alias("_day"))
    rejected = pl.DataFrame(schema={"importer": pl.String, "source_file": pl.String, "row_number": pl.Int64,
                                    "rule": pl.String, "reason": pl.String, "record": pl.String})
    if reject_rules:
        rule = pl.when(reject_rules[0][1]).then(pl.lit(reject_rules[0][0]))
        reason = pl.when(reject_rules[0][1]).then(reject_rules[0][2])
        for name, cond, why in reject_rules[1:]:
            rule = rule.when(cond).then(pl.lit(name))
            reason = reason.when(cond).then(why)
        judged = frame.with_columns(rule.alias("__rule"), reason.alias("__reason"))
        bad = judged.filter(pl.col("__rule").is_not_null())
        originals = [x for x in frame.columns if x != "_row"]
        rejected = bad.select(importer=pl.lit(mapping.shop), source_file=pl.lit(file),
                              row_number=pl.col("_row"), rule=pl.col("__rule"), reason=pl.col("__reason"),
                              record=pl.struct(originals).struct.json_encode())
        mapped = mapped.filter(judged["__rule"].is_null())
    if out.distinct:
        mapped = mapped.filter(pl.all_horizontal(pl.col(d).is_not_null() for d in out.distinct)).unique(
            list(out.distinct), keep="first", maintain_order=True)
    return Mapped(source, mapped, rejected)


# ------------------------------------------------------------------------------------------------
# landing


def _files(path: Path, glob: str, skipped: list[str] | None = None) -> list[Path]:
    if path.is_dir():
        if skipped is not None:
            skipped += [p.name for p in sorted(path.glob(glob)) if p.name.startswith(".") or not p.is_file()]
        files = sorted(p for p in path.glob(glob) if p.is_file() and not p.name.startswith("."))
        if not files:
            raise FileNotFoundError(f"no file matching {glob!r} in {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(path)
    return [path]


def land(mapping: Mapping | str | Path, path: str | Path, landing_root: str | Path, *,
         as_of: date | None = None):
    """Land an export through a mapping; returns the importers' `ImportReport`.

    Time-partitioned sources go to ``<source>/<UTC day>/<shop>__<file>.parquet`` by the day of each
    row's time (rows whose time the mapping could not read go to the latest day, where collection
    quarantines them with their text); snapshot sources to the ``as_of`` day (default: the latest
    day of the landed events, else the mapping's ``as_of``). Every column is text in a canonical
    spelling: the collection stage types it under the contract and quarantines what does not fit.
    """
    from governance.importers import REJECTED_SCHEMA, ImportReport, TableAccount, _slug, _write

    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    path, landing_root = Path(path), Path(landing_root)
    export_root = path if path.is_dir() else path.parent
    results: list[tuple[str, Mapped]] = []
    tables: list[TableAccount] = []
    notes: list[str] = []
    skipped: list[str] = []
    files = _files(path, mapping.read.glob, skipped)
    notes += [f"{name}: skipped (hidden file or not a regular file)" for name in skipped]
    for f in files:
        rel = f.relative_to(export_root).as_posix() if f.is_relative_to(export_root) else f.name
        frame, info = read_export(f.read_bytes(), mapping.read, rel)
        notes.append(f"{rel}: read as {mapping.read.format}, {info.get('encoding')}"
                     + (f" ({info['note']})" if info.get("note") else ""))
        for source in mapping.outputs:
            m = map_frame(mapping, source, frame, rel)
            results.append((rel, m))
            if mapping.outputs[source].distinct is None:
                tables.append(TableAccount(rel, source, "record", frame.height))
    days = [d for _, m in results if "_day" in m.frame.columns for d in m.frame["_day"].drop_nulls().unique()]
    day = as_of or (date.fromisoformat(max(days)) if days else None) or mapping.as_of or date(2017, 1, 1)

    rows_written: dict[tuple[str, str], int] = {}
    written_by_table: dict[str, int] = {}
    distinct_frames: dict[str, list[pl.DataFrame]] = {}
    lineage: list[pl.DataFrame] = []
    for rel, m in results:
        out = mapping.outputs[m.source]
        c = contract(m.source)
        cols = [x for x in c.column_names if x in m.frame.columns]
        if out.distinct is not None:
            distinct_frames.setdefault(m.source, []).append(m.frame.select(cols))
            continue
        name = f"{mapping.shop}__{_slug(Path(rel).stem)}.parquet"
        if c.partitioned:
            framed = m.frame.with_columns(pl.col("_day").fill_null(day.isoformat()))
            pieces = sorted(framed.partition_by("_day", as_dict=True, maintain_order=True).items())
            pieces = [(k[0], v) for k, v in pieces]
        else:
            pieces = [(day.isoformat(), m.frame)]
        for d, piece in pieces:
            if piece.height == 0:
                continue
            target = Path(m.source) / d / name
            piece = piece.sort("_row")
            _write(piece.select(cols), landing_root / target)
            rows_written[(m.source, target.as_posix())] = piece.height
            lineage.append(piece.select(export_file=pl.lit(rel), export_row=pl.col("_row"), source=pl.lit(m.source),
                                        landed_file=pl.lit(target.as_posix()),
                                        landed_row=pl.int_range(1, piece.height + 1, dtype=pl.Int64)))
        written_by_table[rel] = written_by_table.get(rel, 0) + m.frame.height
    for source, frames in distinct_frames.items():
        out = mapping.outputs[source]
        df = pl.concat(frames).unique(list(out.distinct), keep="first", maintain_order=True)
        target = Path(source) / day.isoformat() / f"{mapping.shop}__{source}.parquet"
        _write(df, landing_root / target)
        rows_written[(source, target.as_posix())] = df.height
        notes.append(f"{source}: {df.height} distinct rows derived (many-to-one) by {', '.join(out.distinct)}")

    rejected = pl.concat([m.rejected for _, m in results] or [pl.DataFrame(schema=REJECTED_SCHEMA)])
    rejected = rejected.select([pl.col(k).cast(v) for k, v in REJECTED_SCHEMA.items()]).sort(
        "source_file", "row_number", "rule")
    rejected_file = None
    if rejected.height:
        target = Path("_rejected") / mapping.shop / day.isoformat() / "rejected.parquet"
        _write(rejected, landing_root / target)
        rejected_file = target.as_posix()
    per_table: dict[str, dict[str, int]] = {}
    for f, r, n in rejected.group_by("source_file", "rule").len().iter_rows():
        per_table.setdefault(f, {})[r] = n
    for t in tables:
        t.rows_written = written_by_table.get(t.input_file, 0)
        t.rows_rejected = per_table.get(t.input_file, {})
    report = ImportReport(kind=mapping.shop, export_path=str(path), as_of=day,
                          input_files=[t.input_file for t in tables],
                          rows_read={t.input_file: t.rows_read for t in tables}, rows_written=rows_written,
                          rows_rejected=dict(sorted(rejected.group_by("rule").len().iter_rows())),
                          tables=tables, rejected_file=rejected_file, notes=notes,
                          lineage=pl.concat(lineage) if lineage else None)
    report.check()
    return report


def sources_not_sent(mapping: Mapping | str | Path | None) -> set[str]:
    """Sources the shop does not send at all: their suites must not check for rows."""
    if mapping is None:
        return set()
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    return set(CONTRACTS) - set(mapping.sends)
