"""Importers: land real shops' exports in the landing zone, in the shape the contracts expect.

An importer reads one export as published (Taobao UserBehavior, OTTO sessions, YOOCHOOSE clicks, the
Women's Clothing reviews, the Instacart basket files) and writes Parquet files whose columns are
contract column names, typed with the contract's logical types, into

    <landing_root>/<source>/<YYYY-MM-DD>/<kind>__<input stem>.parquet

so that the ordinary collection stage ingests them like any other landed file. Time-partitioned
sources (events, reviews) are split by the UTC day of their time column; snapshot sources (products)
go to one folder, the ``as_of`` day.

Principles
----------
* Nothing is dropped silently. A row that cannot be expressed in the contract (an event type with no
  contract equivalent, a value that does not parse, a missing required value, an order line whose
  order is unknown, ...) is written to ``<landing_root>/_rejected/<kind>/<as_of>/rejected.parquet``
  with ``importer, source_file, row_number, rule, reason, record`` and counted by rule.
* The importer maps formats; it does not judge quality. Values that parse but look wrong (the Taobao
  timestamp outside the official window, the "Initmates" typo, a duplicated row, a product in the
  literal "missing" aisle) are landed unchanged, so the data-quality stage sees - and reports - them.
* Only columns the export really provides are written, plus the contract's required columns (null
  where the export has no value, e.g. product titles that no export of a behaviour log contains).
  Nothing is invented: no "item 123" titles, no prices, no users for anonymous sessions.
* Identifiers are namespaced with ``"<kind>:"`` by default (``namespace=False`` turns it off), so
  exports of different shops landed side by side cannot merge unrelated users, items or sessions
  (OTTO session 0 and YOOCHOOSE session 0 are different sessions). Strip the prefix to get the
  export's raw value back.
* Re-importing the same export gives byte-identical files at identical paths (names derive from the
  kind and the input file; rows keep the export's order; Parquet output is deterministic for a given
  polars version), so the collection stage's content-hash dedup recognises a re-import.

Row accounting (``ImportReport``): every input table that maps one row to one output row satisfies
``rows_read == rows_written + rows_rejected``. Lookup tables (Instacart aisles, departments, orders)
are read and counted but map to no output row of their own. Derived snapshot rows (products derived
as the distinct items of an event log or a review file) are many-to-one and are reported as written
files, outside the balance. For OTTO, a "row" is one event inside a session line (862 in the
fixture); a line that is not valid JSON counts as one rejected row.

Use ``import_export(kind, path, landing_root)``, or ``IMPORTERS[kind](path, landing_root)``, or the
CLI ``python -m governance.importers --help``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from governance.contracts import contract

#: Placeholder as-of day for exports that carry no date at all (Women's reviews, Instacart). It is
#: a stated convention, not a fact about the data; pass ``as_of`` to choose another day.
UNDATED_AS_OF = date(2017, 1, 1)

#: Inactivity gap that closes a derived session (Taobao has users and times, but no sessions).
SESSION_GAP_SECONDS = 30 * 60

REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "importer": pl.String(),
    "source_file": pl.String(),
    "row_number": pl.Int64(),
    "rule": pl.String(),
    "reason": pl.String(),
    "record": pl.String(),
}

#: Largest magnitude of epoch values accepted per unit (keeps microseconds inside Int64).
_EPOCH_LIMIT = {"s": 9_000_000_000_000, "ms": 9_000_000_000_000_000}

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


@dataclass
class TableAccount:
    """Row accounting of one input table."""

    input_file: str
    #: the contract source its rows map to one-to-one, or "lookup" for reference tables
    target: str
    #: what one counted row is (e.g. "line", "event inside a session line")
    unit: str
    rows_read: int
    rows_written: int = 0
    rows_rejected: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        if self.target == "lookup":
            return True
        return self.rows_read == self.rows_written + sum(self.rows_rejected.values())


@dataclass
class ImportReport:
    kind: str
    export_path: str
    as_of: date
    #: input files, relative to the export path (as in ``source_file`` of rejected rows)
    input_files: list[str]
    #: rows read per input file
    rows_read: dict[str, int]
    #: rows written per (source, landed file path relative to the landing root)
    rows_written: dict[tuple[str, str], int]
    #: rows rejected per rule, over all input files
    rows_rejected: dict[str, int]
    #: per-input-table accounting (rows_read == rows_written + rows_rejected for non-lookup tables)
    tables: list[TableAccount]
    #: the rejected-rows file relative to the landing root, or None when nothing was rejected
    rejected_file: str | None
    notes: list[str] = field(default_factory=list)
    #: mapping imports: export file and record → landed file and row (``export_file``, ``export_row``,
    #: ``source``, ``landed_file``, ``landed_row``), so a landed row can be traced to the export
    lineage: pl.DataFrame | None = None

    @property
    def total_read(self) -> int:
        return sum(t.rows_read for t in self.tables if t.target != "lookup")

    @property
    def total_written(self) -> int:
        return sum(t.rows_written for t in self.tables if t.target != "lookup")

    @property
    def total_rejected(self) -> int:
        return sum(self.rows_rejected.values())

    def written_to(self, source: str) -> int:
        """Rows written to one contract source (derived snapshot rows included)."""
        return sum(n for (s, _), n in self.rows_written.items() if s == source)

    @property
    def balanced(self) -> bool:
        return all(t.balanced for t in self.tables)

    def check(self) -> None:
        bad = [t for t in self.tables if not t.balanced]
        if bad:
            detail = "; ".join(
                f"{t.input_file}: read {t.rows_read} != written {t.rows_written} + rejected "
                f"{sum(t.rows_rejected.values())}" for t in bad)
            raise RuntimeError(f"{self.kind}: row accounting does not balance: {detail}")

    def summary(self) -> str:
        lines = [f"import {self.kind} from {self.export_path} (as of {self.as_of.isoformat()})"]
        for t in self.tables:
            rej = ", ".join(f"{r}={n}" for r, n in sorted(t.rows_rejected.items())) or "none"
            if t.target == "lookup":
                lines.append(f"  {t.input_file}: {t.rows_read} rows read (lookup)")
            else:
                lines.append(f"  {t.input_file}: {t.rows_read} read (one row = {t.unit}) -> "
                             f"{t.rows_written} {t.target} written, rejected: {rej}")
        per_source: dict[str, tuple[int, int]] = {}
        for (source, _), n in self.rows_written.items():
            files, rows = per_source.get(source, (0, 0))
            per_source[source] = (files + 1, rows + n)
        for source, (files, rows) in sorted(per_source.items()):
            lines.append(f"  landed {source}: {rows} rows in {files} file(s)")
        if self.rejected_file:
            lines.append(f"  rejected: {self.total_rejected} rows -> {self.rejected_file}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Shared machinery
# --------------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    kind: str
    export_root: Path
    as_of: date | None
    namespace: bool

    def ident(self, *parts: pl.Expr | str) -> pl.Expr:
        """An identifier built from export values, prefixed with the kind when namespacing."""
        exprs = [pl.col(p) if isinstance(p, str) else p for p in parts]
        body = exprs[0] if len(exprs) == 1 else pl.concat_str(exprs, separator=":")
        return pl.concat_str([pl.lit(f"{self.kind}:"), body]) if self.namespace else body

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.export_root).as_posix()
        except ValueError:
            return path.name


@dataclass
class _Output:
    source: str
    #: file stem of the landed file (prefixed with the kind when written)
    stem: str
    df: pl.DataFrame
    #: the input table whose one-to-one accounting this output feeds; None for derived rows
    table: str | None


@dataclass
class _Result:
    outputs: list[_Output]
    rejected: list[pl.DataFrame]
    tables: list[TableAccount]
    notes: list[str]
    #: as-of day the importer settled on when the caller gave none (None: derive from events)
    as_of: date | None = None


def _rule_chain(rules: Sequence[tuple[str, pl.Expr, pl.Expr]]) -> tuple[pl.Expr, pl.Expr]:
    """The first failing rule of each row, and its reason (null when every rule passes)."""
    name, cond, reason = rules[0]
    rule_expr = pl.when(cond).then(pl.lit(name))
    reason_expr = pl.when(cond).then(reason)
    for name, cond, reason in rules[1:]:
        rule_expr = rule_expr.when(cond).then(pl.lit(name))
        reason_expr = reason_expr.when(cond).then(reason)
    return rule_expr.otherwise(pl.lit(None, pl.String)), reason_expr.otherwise(pl.lit(None, pl.String))


def _split_rejects(df: pl.DataFrame, rules: Sequence[tuple[str, pl.Expr, pl.Expr]], ctx: _Ctx,
                   source_file: str | pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``df`` (with ``_row`` and ``_record``) into passing rows and rejected rows."""
    rule_expr, reason_expr = _rule_chain(rules)
    df = df.with_columns(rule_expr.alias("_rule"), reason_expr.alias("_reason"))
    ok = df.filter(pl.col("_rule").is_null()).drop("_rule", "_reason")
    file_expr = pl.lit(source_file) if isinstance(source_file, str) else source_file
    bad = df.filter(pl.col("_rule").is_not_null()).select(
        pl.lit(ctx.kind).alias("importer"),
        file_expr.alias("source_file"),
        pl.col("_row").cast(pl.Int64).alias("row_number"),
        pl.col("_rule").alias("rule"),
        pl.col("_reason").fill_null("").alias("reason"),
        pl.col("_record").alias("record"),
    )
    return ok, bad


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def _missing_rule(cols: dict[str, str]) -> tuple[str, pl.Expr, pl.Expr]:
    """Reject rows where any of ``cols`` (export column → name shown) is null or blank."""
    cond = pl.any_horizontal([_blank(c) for c in cols])
    reason = pl.concat_str(
        [pl.lit("missing required value(s): "),
         pl.concat_str([pl.when(_blank(c)).then(pl.lit(shown)) for c, shown in cols.items()],
                       separator=", ", ignore_nulls=True)])
    return "missing_value", cond, reason


def _int(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().cast(pl.Int64, strict=False)


def _float(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().cast(pl.Float64, strict=False)


def _epoch_us(col: str, unit: str) -> pl.Expr:
    """Microseconds since the epoch from an integer epoch text column (null when unparsable)."""
    v = _int(col)
    factor = {"s": 1_000_000, "ms": 1_000}[unit]
    return pl.when(v.abs() < _EPOCH_LIMIT[unit]).then(v * factor)


def _ts_from_us(expr: pl.Expr) -> pl.Expr:
    return pl.from_epoch(expr, time_unit="us").dt.replace_time_zone("UTC")


def _record(cols: Sequence[str]) -> pl.Expr:
    return pl.struct([pl.col(c) for c in cols]).struct.json_encode()


def _files(path: Path, pattern: str) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.glob(pattern) if p.is_file())
        if not files:
            raise FileNotFoundError(f"no {pattern} file in {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(path)
    return [path]


def _read_lines(path: Path) -> pl.DataFrame:
    """Non-blank lines of a text file with their 1-based record index ``_row``."""
    text = path.read_text(encoding="utf-8")
    lines = pl.Series("_line", text.split("\n"), dtype=pl.String).str.strip_suffix("\r")
    return (lines.to_frame().filter(pl.col("_line").str.strip_chars() != "")
            .with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64)))


def _split_fields(df: pl.DataFrame, sep: str, names: Sequence[str]) -> pl.DataFrame:
    """Split ``_line`` into ``names``; ``_fields_ok`` says whether the field count matched."""
    parts = pl.col("_line").str.split(sep)
    df = df.with_columns(parts.list.len().alias("_nfields"))
    df = df.with_columns(
        (pl.col("_nfields") == len(names)).alias("_fields_ok"),
        *[pl.when(pl.col("_nfields") == len(names)).then(parts.list.get(i, null_on_oob=True)).alias(n)
          for i, n in enumerate(names)],
    )
    record = (pl.when(pl.col("_fields_ok")).then(_record(names))
              .otherwise(pl.struct(pl.col("_line").alias("line")).struct.json_encode()))
    return df.with_columns(record.alias("_record"))


def _malformed_rule(n: int, sep_name: str) -> tuple[str, pl.Expr, pl.Expr]:
    return ("malformed_row", ~pl.col("_fields_ok"),
            pl.format(f"expected {n} {sep_name}-separated fields, found {{}}", pl.col("_nfields")))


def _read_csv_text(path: Path, required: Sequence[str]) -> pl.DataFrame:
    df = pl.read_csv(path, infer_schema=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {df.columns}")
    return df.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64))


# --------------------------------------------------------------------------------------------------
# Taobao UserBehavior
# --------------------------------------------------------------------------------------------------

_TAOBAO_COLUMNS = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")
_TAOBAO_TYPES = {"pv": "view", "cart": "add_to_cart", "buy": "purchase"}


def _import_taobao(path: Path, ctx: _Ctx) -> _Result:
    frames, tables = [], []
    for f in _files(path, "*.csv"):
        df = _split_fields(_read_lines(f), ",", _TAOBAO_COLUMNS)
        frames.append(df.with_columns(pl.lit(ctx.rel(f)).alias("_file")))
        tables.append(TableAccount(ctx.rel(f), "events", "line", df.height))
    raw = pl.concat(frames, how="vertical")
    raw = raw.with_columns(*[pl.col(c).str.strip_chars() for c in _TAOBAO_COLUMNS],
                           _epoch_us("timestamp", "s").alias("_us"))

    # Sessions: per user, a gap of more than 30 minutes since the user's previous action opens a new
    # session. Every action with a user and a valid time counts as activity (fav included, although
    # fav rows are rejected as events below).
    active = raw.filter(pl.col("_fields_ok") & ~_blank("user_id") & pl.col("_us").is_not_null())
    active = active.sort("user_id", "_us", "_file", "_row").with_columns(
        ((pl.col("_us") - pl.col("_us").shift(1).over("user_id")) > SESSION_GAP_SECONDS * 1_000_000)
        .fill_null(True).alias("_new"))
    active = active.with_columns(
        pl.when(pl.col("_new")).then(pl.col("_us")).otherwise(None).forward_fill().alias("_start"))
    raw = raw.join(active.select("_file", "_row", "_start"), on=["_file", "_row"], how="left")

    behaviour = pl.col("behavior_type")
    rules = [
        _malformed_rule(len(_TAOBAO_COLUMNS), "comma"),
        _missing_rule({"user_id": "user_id", "item_id": "item_id", "behavior_type": "behavior_type",
                       "timestamp": "timestamp"}),
        ("unparsable_timestamp", pl.col("_us").is_null(),
         pl.format("timestamp {} is not unix seconds", pl.col("timestamp"))),
        ("unmapped_event_type", behaviour == "fav",
         pl.lit("fav (add to favourites) has no event type in the events contract "
                "(view|click|add_to_cart|purchase); mapping it would overstate or misstate intent")),
        ("unknown_event_type", ~behaviour.is_in(list(_TAOBAO_TYPES)),
         pl.format("behavior_type {} is not one of pv, cart, buy, fav", behaviour)),
    ]
    ok, rejected = _split_rejects(raw, rules, ctx, pl.col("_file"))
    ok = ok.sort("_file", "_row")
    events = ok.select(
        "_file",
        ctx.ident("user_id", "item_id", "behavior_type", "timestamp").alias("event_id"),
        ctx.ident(pl.col("user_id"), (pl.col("_start") // 1_000_000).cast(pl.String)).alias("session_id"),
        ctx.ident("user_id").alias("user_id"),
        ctx.ident("item_id").alias("item_id"),
        behaviour.replace_strict(_TAOBAO_TYPES, return_dtype=pl.String).alias("event_type"),
        _ts_from_us(pl.col("_us")).alias("event_time"),
    )
    outputs = [_Output("events", Path(t.input_file).stem, events.filter(pl.col("_file") == t.input_file)
                       .drop("_file"), t.input_file) for t in tables]

    # Products: the export's only catalogue facts are item → category id. Titles do not exist, so
    # the required title is landed as null rather than invented; the category id is an opaque
    # one-level path. Derived from every parsable row (fav rows included: the item is real).
    items = raw.filter(pl.col("_fields_ok") & ~_blank("item_id") & ~_blank("category_id"))
    items = items.sort("_file", "_row").group_by("item_id", maintain_order=True).agg(
        pl.col("category_id").mode().sort().first().alias("category_id"),
        pl.col("category_id").n_unique().alias("_ncat"))
    products = items.select(
        ctx.ident("item_id").alias("product_id"),
        pl.lit(None, pl.String).alias("title"),
        pl.col("category_id").alias("category_path"),
    )
    outputs.append(_Output("products", "products", products, None))
    notes = [
        "fav rows are rejected (rule unmapped_event_type): the contract has no favourite/wishlist type",
        f"session_id = user + start second of a run of actions with gaps <= {SESSION_GAP_SECONDS // 60} min",
        f"products: {products.height} distinct items derived (many-to-one) with title null "
        "(the export has no titles) and category_path = the opaque category id",
    ]
    multi = items.filter(pl.col("_ncat") > 1).height
    if multi:
        notes.append(f"{multi} items carry several category ids; the most frequent (then smallest) is kept")
    return _Result(outputs, [rejected], tables, notes)


# --------------------------------------------------------------------------------------------------
# OTTO sessions (JSON Lines)
# --------------------------------------------------------------------------------------------------

_OTTO_TYPES = {"clicks": "click", "carts": "add_to_cart", "orders": "purchase"}
_OTTO_DTYPE = pl.Struct({"session": pl.String,
                         "events": pl.List(pl.Struct({"aid": pl.String, "ts": pl.String, "type": pl.String}))})


def _decode_otto(lines: pl.DataFrame) -> pl.DataFrame:
    """Decode valid lines; returns ``_row``, ``session``, ``events`` and ``_decoded`` (bool)."""
    try:
        decoded = lines.with_columns(pl.col("_line").str.json_decode(_OTTO_DTYPE).alias("_obj"))
    except pl.exceptions.PolarsError:
        # Error path only: find the lines that do not decode (one by one), decode the rest at once.
        good = [not _decode_fails(line) for line in lines["_line"].to_list()]
        mask = pl.Series("_good", good, dtype=pl.Boolean)
        ok = lines.filter(mask).with_columns(pl.col("_line").str.json_decode(_OTTO_DTYPE).alias("_obj"))
        bad = lines.filter(~mask).with_columns(pl.lit(None, _OTTO_DTYPE).alias("_obj"))
        decoded = pl.concat([ok, bad]).sort("_row")
    return decoded.with_columns(pl.col("_obj").is_not_null().alias("_decoded")).unnest("_obj")


def _decode_fails(line: str) -> bool:
    try:
        pl.Series([line]).str.json_decode(_OTTO_DTYPE)
        return False
    except pl.exceptions.PolarsError:
        return True


def _import_otto(path: Path, ctx: _Ctx) -> _Result:
    outputs, rejects, tables, notes = [], [], [], []
    for f in _files(path, "*.jsonl"):
        name = ctx.rel(f)
        lines = _read_lines(f)
        # A line without a JSON "session" and "events" is unparsable as a whole.
        lines = lines.with_columns(
            (pl.col("_line").str.json_path_match("$.session").is_not_null()
             & pl.col("_line").str.json_path_match("$.events").is_not_null()).alias("_valid"))
        bad_lines = lines.filter(~pl.col("_valid"))
        decoded = _decode_otto(lines.filter(pl.col("_valid")).drop("_valid"))
        bad_lines = pl.concat([bad_lines.drop("_valid"),
                               decoded.filter(~pl.col("_decoded")).select("_row", "_line")])
        decoded = decoded.filter(pl.col("_decoded"))
        empty = decoded.filter(pl.col("events").list.len() == 0).height
        ev = (decoded.filter(pl.col("events").list.len() > 0)
              .with_columns(pl.int_ranges(1, pl.col("events").list.len() + 1).alias("event_index"))
              .explode("events", "event_index").unnest("events")
              .with_columns(pl.col("event_index").cast(pl.Int64),
                            *[pl.col(c).str.strip_chars() for c in ("session", "aid", "ts", "type")]))
        ev = ev.with_columns(_epoch_us("ts", "ms").alias("_us"),
                             _record(["session", "event_index", "aid", "ts", "type"]).alias("_record"))
        rules = [
            _missing_rule({"session": "session", "aid": "aid", "ts": "ts", "type": "type"}),
            ("unparsable_timestamp", pl.col("_us").is_null(),
             pl.format("event {}: ts {} is not unix milliseconds", pl.col("event_index"), pl.col("ts"))),
            ("unknown_event_type", ~pl.col("type").is_in(list(_OTTO_TYPES)),
             pl.format("event {}: type {} is not clicks, carts or orders", pl.col("event_index"), pl.col("type"))),
        ]
        ok, rej = _split_rejects(ev, rules, ctx, name)
        line_rej = bad_lines.select(
            pl.lit(ctx.kind).alias("importer"), pl.lit(name).alias("source_file"),
            pl.col("_row").alias("row_number"), pl.lit("unparsable_line").alias("rule"),
            pl.lit("line is not a JSON object with session and events [{aid, ts, type}]").alias("reason"),
            pl.struct(pl.col("_line").alias("line")).struct.json_encode().alias("record"))
        events = ok.sort("_row", "event_index").select(
            ctx.ident(pl.col("session"), pl.col("event_index").cast(pl.String)).alias("event_id"),
            ctx.ident("session").alias("session_id"),
            ctx.ident("aid").alias("item_id"),
            pl.col("type").replace_strict(_OTTO_TYPES, return_dtype=pl.String).alias("event_type"),
            _ts_from_us(pl.col("_us")).alias("event_time"),
        )
        outputs.append(_Output("events", f.stem, events, name))
        rejects += [rej, line_rej]
        tables.append(TableAccount(name, "events", "event inside a session line", ev.height + bad_lines.height))
        notes.append(f"{name}: {lines.height} session lines, {ev.height} events"
                     + (f", {empty} sessions without events" if empty else ""))
    notes += ["row_number of rejected OTTO rows is the 1-based line (session) number; the reason names "
              "the event index; the record shows the event's values as text",
              "event_id = session:event index (1-based position in the session); no user_id (anonymous)",
              "clicks -> click, carts -> add_to_cart, orders -> purchase"]
    return _Result(outputs, rejects, tables, notes)


# --------------------------------------------------------------------------------------------------
# YOOCHOOSE clicks (TSV)
# --------------------------------------------------------------------------------------------------

_YOOCHOOSE_COLUMNS = ("SessionId", "ItemId", "Time")


def _import_yoochoose(path: Path, ctx: _Ctx) -> _Result:
    outputs, rejects, tables = [], [], []
    for f in _files(path, "*.txt"):
        name = ctx.rel(f)
        lines = _read_lines(f)
        if lines.height == 0 or lines["_line"][0].strip().split("\t") != list(_YOOCHOOSE_COLUMNS):
            raise ValueError(f"{f}: expected the header {chr(9).join(_YOOCHOOSE_COLUMNS)!r}")
        lines = lines.slice(1).with_columns(pl.col("_row") - 1)
        df = _split_fields(lines, "\t", _YOOCHOOSE_COLUMNS)
        df = df.with_columns(*[pl.col(c).str.strip_chars() for c in _YOOCHOOSE_COLUMNS])
        t = _float("Time")
        df = df.with_columns(pl.when(t.is_finite() & (t.abs() < _EPOCH_LIMIT["s"]))
                             .then((t * 1_000_000).round(0).cast(pl.Int64)).alias("_us"))
        rules = [
            _malformed_rule(len(_YOOCHOOSE_COLUMNS), "tab"),
            _missing_rule({c: c for c in _YOOCHOOSE_COLUMNS}),
            ("unparsable_timestamp", pl.col("_us").is_null(),
             pl.format("Time {} is not unix seconds", pl.col("Time"))),
        ]
        ok, rej = _split_rejects(df, rules, ctx, name)
        events = ok.sort("_row").select(
            ctx.ident("SessionId", "ItemId", "Time").alias("event_id"),
            ctx.ident("SessionId").alias("session_id"),
            ctx.ident("ItemId").alias("item_id"),
            pl.lit("click").alias("event_type"),
            _ts_from_us(pl.col("_us")).alias("event_time"),
        )
        outputs.append(_Output("events", f.stem, events, name))
        rejects.append(rej)
        tables.append(TableAccount(name, "events", "line", df.height))
    notes = ["every row is a click; event_id = session:item:time as written in the export, so a "
             "duplicated export row yields a duplicated event_id for the quality stage to flag",
             "no user_id (anonymous sessions)"]
    return _Result(outputs, rejects, tables, notes)


# --------------------------------------------------------------------------------------------------
# Women's Clothing E-Commerce Reviews
# --------------------------------------------------------------------------------------------------

_WOMENS_COLUMNS = ("Clothing ID", "Title", "Review Text", "Rating", "Division Name", "Department Name",
                   "Class Name")


def _import_womens_reviews(path: Path, ctx: _Ctx) -> _Result:
    as_of = ctx.as_of or UNDATED_AS_OF
    review_time = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    outputs, rejects, tables, derived = [], [], [], []
    for f in _files(path, "*.csv"):
        name = ctx.rel(f)
        df = _read_csv_text(f, _WOMENS_COLUMNS)
        index_col = df.columns[1]  # the unnamed index column (after _row)
        original = [c for c in df.columns if c != "_row"]
        df = df.with_columns(_record(original).alias("_record"),
                             _int("Rating").alias("_rating"))
        rules = [
            _missing_rule({index_col: "review index", "Clothing ID": "Clothing ID", "Rating": "Rating"}),
            ("unparsable_value", pl.col("_rating").is_null(),
             pl.format("Rating {} is not an integer", pl.col("Rating"))),
        ]
        ok, rej = _split_rejects(df, rules, ctx, name)
        reviews = ok.sort("_row").select(
            ctx.ident(pl.col(index_col).str.strip_chars()).alias("review_id"),
            ctx.ident(pl.col("Clothing ID").str.strip_chars()).alias("product_id"),
            pl.col("_rating").alias("rating"),
            pl.col("Title").alias("title"),
            pl.col("Review Text").alias("text"),
            pl.lit(review_time).cast(pl.Datetime("us", "UTC")).alias("review_time"),
        )
        outputs.append(_Output("reviews", f.stem, reviews, name))
        rejects.append(rej)
        tables.append(TableAccount(name, "reviews", "CSV record", df.height))
        derived.append(df.filter(~_blank("Clothing ID")).select(
            pl.col("Clothing ID").str.strip_chars(), "_row", pl.lit(name).alias("_file"),
            pl.concat_str(["Division Name", "Department Name", "Class Name"], separator=" > ").alias("_path")))

    # Products: one row per Clothing ID; the category path is the most frequent non-null
    # "Division > Department > Class" among its reviews (ties: smallest). No product names exist.
    rows = pl.concat(derived).sort("_file", "_row")
    items = rows.group_by("Clothing ID", maintain_order=True).agg(
        pl.col("_path").drop_nulls().mode().sort().first().alias("_path"),
        pl.col("_path").drop_nulls().n_unique().alias("_npaths"))
    products = items.select(
        ctx.ident("Clothing ID").alias("product_id"),
        pl.lit(None, pl.String).alias("title"),
        pl.col("_path").alias("category_path"),
    )
    outputs.append(_Output("products", "products", products, None))
    notes = [
        f"review_time = {review_time.isoformat()} for every review: the export has no dates "
        "(a stated as-of convention; pass as_of to change it)",
        "user_id is not landed (the export has none); Age, Recommended IND and Positive Feedback "
        "Count have no contract column and are not landed",
        f"products: {products.height} distinct Clothing IDs derived (many-to-one) with title null (the "
        "export has no product names)",
        f"{items.filter(pl.col('_npaths') > 1).height} Clothing IDs appear under several category paths "
        "(e.g. General vs General Petite); the most frequent (then smallest) is kept",
        f"{items.filter(pl.col('_path').is_null()).height} Clothing IDs have no category at all "
        "(category_path null)",
    ]
    return _Result(outputs, rejects, tables, notes, as_of=as_of)


# --------------------------------------------------------------------------------------------------
# Instacart
# --------------------------------------------------------------------------------------------------


def _import_instacart(path: Path, ctx: _Ctx) -> _Result:
    if not path.is_dir():
        raise ValueError(f"instacart expects the export directory, got {path}")
    as_of = ctx.as_of or UNDATED_AS_OF
    anchor_us = int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp()) * 1_000_000
    products_f, aisles_f, departments_f, orders_f = (
        path / n for n in ("products.csv", "aisles.csv", "departments.csv", "orders.csv"))
    line_files = sorted(path.glob("order_products__*.csv"))
    if not line_files:
        raise FileNotFoundError(f"no order_products__*.csv in {path}")

    aisles = _read_csv_text(aisles_f, ("aisle_id", "aisle"))
    departments = _read_csv_text(departments_f, ("department_id", "department"))
    for df, key, f in ((aisles, "aisle_id", aisles_f), (departments, "department_id", departments_f)):
        if df[key].n_unique() != df.height:
            raise ValueError(f"{f}: duplicate {key} values; the lookup is ambiguous")
    tables = [TableAccount(ctx.rel(aisles_f), "lookup", "line", aisles.height),
              TableAccount(ctx.rel(departments_f), "lookup", "line", departments.height)]
    outputs, rejects = [], []

    # ---- products: category_path = "department > aisle", title = product_name
    products = _read_csv_text(products_f, ("product_id", "product_name", "aisle_id", "department_id"))
    products = products.with_columns(_record([c for c in products.columns if c != "_row"]).alias("_record"))
    products = (products
                .join(aisles.select("aisle_id", "aisle"), on="aisle_id", how="left", maintain_order="left")
                .join(departments.select("department_id", "department"), on="department_id", how="left",
                      maintain_order="left"))
    rules = [
        _missing_rule({"product_id": "product_id", "product_name": "product_name"}),
        ("unknown_aisle", pl.col("aisle").is_null(),
         pl.format("aisle_id {} is not in aisles.csv: no category path", pl.col("aisle_id"))),
        ("unknown_department", pl.col("department").is_null(),
         pl.format("department_id {} is not in departments.csv: no category path", pl.col("department_id"))),
    ]
    ok, rej = _split_rejects(products, rules, ctx, ctx.rel(products_f))
    outputs.append(_Output("products", "products", ok.sort("_row").select(
        ctx.ident(pl.col("product_id").str.strip_chars()).alias("product_id"),
        pl.col("product_name").alias("title"),
        pl.concat_str(["department", "aisle"], separator=" > ").alias("category_path"),
    ), ctx.rel(products_f)))
    rejects.append(rej)
    tables.append(TableAccount(ctx.rel(products_f), "products", "CSV record", products.height))

    # ---- orders: a relative timeline per user
    orders = _read_csv_text(orders_f, ("order_id", "user_id", "order_number", "order_hour_of_day",
                                       "days_since_prior_order"))
    tables.append(TableAccount(ctx.rel(orders_f), "lookup", "line", orders.height))
    orders = orders.with_columns(
        pl.col("order_id").str.strip_chars(), pl.col("user_id").str.strip_chars(),
        _int("order_number").alias("_num"), _int("order_hour_of_day").alias("_hour"),
        _float("days_since_prior_order").alias("_days"),
        pl.len().over(pl.col("order_id").str.strip_chars()).alias("_dup"))
    order_problem = (
        pl.when(_blank("user_id")).then(pl.lit("user_id missing"))
        .when(pl.col("_num").is_null()).then(pl.format("order_number {} unparsable", pl.col("order_number")))
        .when(pl.col("_hour").is_null() | ~pl.col("_hour").is_between(0, 23))
        .then(pl.format("order_hour_of_day {} is not an hour", pl.col("order_hour_of_day")))
        .when(~_blank("days_since_prior_order")
              & (pl.col("_days").is_null() | ~pl.col("_days").is_finite() | (pl.col("_days") < 0)))
        .then(pl.format("days_since_prior_order {} unparsable", pl.col("days_since_prior_order"))))
    orders = orders.with_columns(order_problem.alias("_problem"))
    timeline = (orders.filter(pl.col("_problem").is_null() & (pl.col("_dup") == 1))
                .sort("user_id", "_num", "order_id")
                .with_columns(pl.col("_days").fill_null(0.0).alias("_d"))
                .with_columns((pl.col("_d").cum_sum().over("user_id") - pl.col("_d").first().over("user_id"))
                              .alias("_offset_days"))
                .with_columns((pl.lit(anchor_us) + (pl.col("_offset_days") * 86_400_000_000).round(0).cast(pl.Int64)
                               + pl.col("_hour").cast(pl.Int64) * 3_600_000_000).alias("_us"))
                .select("order_id", "_us"))
    order_info = orders.select("order_id", "user_id", "_dup", "_problem").unique("order_id", keep="first",
                                                                                  maintain_order=True)
    order_info = order_info.join(timeline, on="order_id", how="left")

    # ---- order lines: one purchase event per line, session = order
    landed_orders: list[pl.Series] = []
    for f in line_files:
        name = ctx.rel(f)
        lines = _read_csv_text(f, ("order_id", "product_id"))
        lines = lines.with_columns(_record([c for c in lines.columns if c != "_row"]).alias("_record"),
                                   pl.col("order_id").str.strip_chars(), pl.col("product_id").str.strip_chars())
        lines = lines.join(order_info, on="order_id", how="left", maintain_order="left")
        rules = [
            _missing_rule({"order_id": "order_id", "product_id": "product_id"}),
            ("missing_order", pl.col("_dup").is_null(),
             pl.format("order_id {} is not in orders.csv: the line has no user and no time", pl.col("order_id"))),
            ("ambiguous_order", pl.col("_dup") > 1,
             pl.format("order_id {} appears {} times in orders.csv", pl.col("order_id"), pl.col("_dup"))),
            ("bad_order", pl.col("_problem").is_not_null(),
             pl.format("order {}: {}", pl.col("order_id"), pl.col("_problem"))),
        ]
        ok, rej = _split_rejects(lines, rules, ctx, name)
        landed_orders.append(ok["order_id"])
        events = ok.sort("_row").select(
            ctx.ident("order_id", "product_id").alias("event_id"),
            ctx.ident("order_id").alias("session_id"),
            ctx.ident("user_id").alias("user_id"),
            ctx.ident("product_id").alias("item_id"),
            pl.lit("purchase").alias("event_type"),
            _ts_from_us(pl.col("_us")).alias("event_time"),
        )
        outputs.append(_Output("events", f.stem, events, name))
        rejects.append(rej)
        tables.append(TableAccount(name, "events", "CSV record", lines.height))
    no_lines = orders.filter(~pl.col("order_id").is_in(pl.concat(landed_orders).implode())).height
    notes = [
        f"event_time is a derived, relative timeline, not a real date: {as_of.isoformat()} (the as-of "
        "anchor) + the cumulative days_since_prior_order over the user's orders present in orders.csv "
        "(sorted by order_number, the first one at day 0) + order_hour_of_day hours (read as UTC). "
        "Gaps left by orders absent from the sample count as 0 days; order_dow is not used",
        "every line of an order shares the order's time; event_id = order:product; session_id = order_id; "
        "quantity and price are not in the export and are not landed",
        f"{no_lines} orders in orders.csv have no landed line (none in the line files, e.g. eval_set "
        "train/test); they produce no event",
        "aisle/department values are landed as published, including the literal 'missing'",
    ]
    return _Result(outputs, rejects, tables, notes, as_of=as_of)


# --------------------------------------------------------------------------------------------------
# Registry and entry point
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Importer:
    kind: str
    description: str
    #: what ``path`` should point at
    expects: str
    func: Callable[[Path, _Ctx], _Result] = field(repr=False)

    def __call__(self, path: Path | str, landing_root: Path | str, *, as_of: date | None = None,
                 namespace: bool = True) -> ImportReport:
        return import_export(self.kind, Path(path), Path(landing_root), as_of=as_of, namespace=namespace)


IMPORTERS: dict[str, Importer] = {
    i.kind: i for i in (
        Importer("taobao", "Taobao UserBehavior CSV (no header) -> events (pv/cart/buy; fav rejected; "
                           "30-min sessions) + products (item -> category id, no title)",
                 "UserBehavior*.csv or a folder of them", _import_taobao),
        Importer("otto", "OTTO sessions JSON Lines -> events (clicks/carts/orders)",
                 "train.jsonl or a folder of *.jsonl", _import_otto),
        Importer("yoochoose", "YOOCHOOSE clicks TSV (SessionId, ItemId, Time) -> events (click)",
                 "a yoochoose-clicks*.txt file or a folder of *.txt", _import_yoochoose),
        Importer("womens_reviews", "Women's Clothing E-Commerce Reviews CSV -> reviews (dated as_of) + "
                                   "products (Division > Department > Class, no title)",
                 "'Womens Clothing E-Commerce Reviews.csv' or its folder", _import_womens_reviews),
        Importer("instacart", "Instacart folder -> products (department > aisle) + purchase events per "
                              "order line (relative timeline from as_of)",
                 "the folder with products/aisles/departments/orders/order_products__*.csv", _import_instacart),
    )
}


def _slug(stem: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "data"


def _conform(source: str, df: pl.DataFrame) -> pl.DataFrame:
    """Contract column order and types; refuses unknown columns and absent required ones."""
    c = contract(source)
    unknown = [n for n in df.columns if n not in c.column_names]
    missing = [n for n in c.required if n not in df.columns]
    if unknown or missing:
        raise RuntimeError(f"{source}: landed columns do not fit the contract (unknown {unknown}, "
                           f"missing required {missing})")
    return df.select([pl.col(col.name).cast(col.dtype) for col in c.columns if col.name in df.columns])


def _write(df: pl.DataFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.importing")
    df.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, target)


def import_export(kind: str, path: Path, landing_root: Path, *, as_of: date | None = None,
                  namespace: bool = True) -> ImportReport:
    """Land the export at ``path`` (of the given ``kind``) under ``landing_root``.

    ``as_of`` is the day of snapshot files (products) and of the rejected-rows folder; for exports
    without dates it is also the stated review day (womens_reviews) or timeline anchor (instacart),
    defaulting to ``UNDATED_AS_OF``. For dated event exports it defaults to the UTC day of the latest
    landed event, so a re-import lands at the same paths.
    """
    try:
        importer = IMPORTERS[kind]
    except KeyError:
        raise KeyError(f"unknown importer {kind!r}; known: {sorted(IMPORTERS)}") from None
    path, landing_root = Path(path), Path(landing_root)
    export_root = path if path.is_dir() else path.parent
    ctx = _Ctx(kind, export_root, as_of, namespace)
    result = importer.func(path, ctx)

    # Conform everything first, then settle the as-of day, then write.
    outputs = [(o, _conform(o.source, o.df)) for o in result.outputs]
    day = as_of or result.as_of
    if day is None:
        latest = [df[contract(o.source).time_column].max() for o, df in outputs
                  if contract(o.source).partitioned and df.height]
        day = max(latest).date() if latest else UNDATED_AS_OF

    rows_written: dict[tuple[str, str], int] = {}
    written_by_table: dict[str, int] = {}
    for o, df in outputs:
        c = contract(o.source)
        name = f"{kind}__{_slug(o.stem)}.parquet"
        if c.partitioned:
            parts = df.with_columns(pl.col(c.time_column).dt.date().alias("_day")).partition_by(
                "_day", as_dict=True, maintain_order=True, include_key=False)
            pieces = sorted(((k[0], v) for k, v in parts.items()), key=lambda kv: kv[0])
        else:
            pieces = [(day, df)]
        for d, piece in pieces:
            if piece.height == 0:
                continue
            rel = Path(o.source) / d.isoformat() / name
            _write(piece, landing_root / rel)
            rows_written[(o.source, rel.as_posix())] = piece.height
        if o.table is not None:
            written_by_table[o.table] = written_by_table.get(o.table, 0) + df.height

    rejected = pl.concat([r.select([pl.col(k).cast(v) for k, v in REJECTED_SCHEMA.items()])
                          for r in result.rejected] or [pl.DataFrame(schema=REJECTED_SCHEMA)])
    rejected = rejected.sort("source_file", "row_number", "rule", "reason", "record")
    rejected_file = None
    if rejected.height:
        rel = Path("_rejected") / kind / day.isoformat() / "rejected.parquet"
        _write(rejected, landing_root / rel)
        rejected_file = rel.as_posix()

    by_rule = dict(sorted(rejected.group_by("rule").len().iter_rows()))
    per_table: dict[str, dict[str, int]] = {}
    for f, r, n in rejected.group_by("source_file", "rule").len().sort("source_file", "rule").iter_rows():
        per_table.setdefault(f, {})[r] = n
    for t in result.tables:
        t.rows_written = written_by_table.get(t.input_file, 0)
        t.rows_rejected = per_table.get(t.input_file, {})

    report = ImportReport(
        kind=kind, export_path=str(path), as_of=day,
        input_files=[t.input_file for t in result.tables],
        rows_read={t.input_file: t.rows_read for t in result.tables},
        rows_written=rows_written, rows_rejected=by_rule, tables=result.tables,
        rejected_file=rejected_file, notes=result.notes)
    report.check()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    kinds = "\n".join(f"  {k:<15} {i.description}\n  {'':<15} path: {i.expects}" for k, i in IMPORTERS.items())
    parser = argparse.ArgumentParser(
        prog="python -m governance.importers",
        description="Land a real shop's export in the landing zone under the source contracts.",
        epilog=f"importers:\n{kinds}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=sorted(IMPORTERS))
    parser.add_argument("path", type=Path, help="the export file or folder")
    parser.add_argument("landing_root", type=Path)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="snapshot / rejected day (and stated date of undated exports), YYYY-MM-DD")
    parser.add_argument("--no-namespace", action="store_true", help="keep the export's raw identifiers")
    args = parser.parse_args(argv)
    report = import_export(args.kind, args.path, args.landing_root, as_of=args.as_of,
                           namespace=not args.no_namespace)
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
