"""Vectorised parsing of landed text into contract types, with every failure kept.

Parsing is two-pass. The first pass parses the common spelling of every column as one set of
Polars expressions, evaluated together (so columns parse in parallel). The few values it missed
go through slower fallbacks: other ISO spellings and epochs for timestamps, "$1,299.00" or " 12.5 "
for numbers. What the fallbacks still cannot parse is a failure (the row goes to quarantine);
numbers that needed normalisation are reported so the fix can be audited.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from governance.contracts import LOGICAL_TYPES

UTC = "UTC"
ISO_AWARE = "%Y-%m-%dT%H:%M:%S%.f%#z"
_NUMBER_NOISE = r"[\s$€£¥,_#]|USD|EUR|GBP"
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]


@dataclass
class Parsed:
    values: pl.Series
    failed: pl.Series  # bool: a value was present but could not be parsed
    normalised: pl.Series  # bool: parsed only after normalisation
    #: bool: a number whose separators the column's values do not decide (or contradict): never guessed
    ambiguous: pl.Series | None = None
    #: why each ambiguous value was not parsed (null elsewhere)
    reason: pl.Series | None = None
    #: the column's number format decided from its values (None: canonical text, nothing to decide)
    number_format: str | None = None


# --- numbers: the decimal separator is decided per file and column, never per value -------------

#: currency symbols and codes and (non-breaking, thin) spaces: noise around a number, removed (audited)
_CURRENCY_NOISE = r"[\s\u00a0\u202f$€£¥₹_#']|USD|EUR|GBP|JPY|CAD|AUD|CHF"
#: values that can only be read one way, by the separator they use as the decimal one
_SURE_DOT = r"^[-+]?(\d+\.\d{1,2}|\d+\.\d{4,}|0\.\d+|\.\d+|\d{1,3}(,\d{3})+\.\d+|\d{1,3}(,\d{3}){2,})$"
_SURE_COMMA = r"^[-+]?(\d+,\d{1,2}|\d+,\d{4,}|0,\d+|,\d+|\d{1,3}(\.\d{3})+,\d+|\d{1,3}(\.\d{3}){2,})$"
#: one separator followed by exactly three digits: 1,234 is 1234 or 1.234 depending on the column
_THREE_AFTER = r"^[-+]?[1-9]\d{0,2}[.,]\d{3}$"


def number_format(text: pl.Series) -> tuple[str, int, int]:
    """The column's decimal separator decided from its values: ``(".", dot evidence, comma evidence)``.

    Evidence is a value only one reading allows (35,79 — a comma followed by two digits — is a
    decimal comma; 1,299.00 a thousands comma). The separator with more evidence wins; with none,
    or a tie, the answer is "?" (undecided)."""
    body = text.str.replace_all(_CURRENCY_NOISE, "")
    counts = pl.select(dot=body.str.contains(_SURE_DOT).sum(), comma=body.str.contains(_SURE_COMMA).sum()).row(0)
    dot, comma = int(counts[0] or 0), int(counts[1] or 0)
    decided = "." if dot > comma else "," if comma > dot else "?"
    return decided, dot, comma


def _numbers_by_format(text: pl.Series, decided: str, dot: int, comma: int) -> tuple[pl.Series, pl.Series, pl.Series]:
    """(values, ambiguous mask, reason) for the text of a number column under its decided format."""
    body = text.str.replace_all(_CURRENCY_NOISE, "").str.strip_chars()
    has_sep = body.str.contains("[.,]")
    evidence = f"(column evidence: {dot} value(s) with a decimal point, {comma} with a decimal comma)"
    if decided == ",":
        canonical = body.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
        conflict = body.str.contains(_SURE_DOT)
        why = pl.lit(f"uses '.' as its decimal separator but the column's values decide ',' {evidence}")
        ambiguous = conflict
    elif decided == ".":
        canonical = body.str.replace_all(",", "", literal=True)
        conflict = body.str.contains(_SURE_COMMA)
        why = pl.lit(f"uses ',' as its decimal separator but the column's values decide '.' {evidence}")
        ambiguous = conflict
    else:
        # undecided: plain numbers and canonical decimals (1.5, 1.234) read as written; a comma or a
        # mix of separators could be either, and is never guessed
        canonical = body
        ambiguous = has_sep & (body.str.contains(",") | (pl.lit(dot + comma > 0)))
        why = pl.lit(f"',' or '.' could be the decimal or the thousands separator and the column's values do not "
                     f"decide which {evidence}")
    values = canonical.cast(pl.Float64, strict=False)
    frame = pl.DataFrame({"t": text, "v": values, "a": ambiguous.fill_null(False) if isinstance(ambiguous, pl.Series)
                          else pl.select(ambiguous.fill_null(False)).to_series()})
    out = frame.select(
        v=pl.when(~pl.col("a")).then(pl.col("v")),
        a=pl.col("a") & pl.col("t").is_not_null(),
        r=pl.when(pl.col("a")).then(pl.format("'{}' {}", pl.col("t").str.slice(0, 40), why)),
    )
    return out["v"], out["a"], out["r"]


def _native(name: str, dtype: pl.DataType, logical: str) -> pl.Expr | None:
    """A cast for a natively typed column (Parquet, JSON numbers) that needs no text detour."""
    col = pl.col(name)
    target = LOGICAL_TYPES[logical]
    if dtype == target:
        return col
    if logical == "timestamp" and isinstance(dtype, pl.Datetime):
        col = col.dt.replace_time_zone(UTC) if dtype.time_zone is None else col.dt.convert_time_zone(UTC)
        return col.dt.cast_time_unit("us")
    if logical == "timestamp" and dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone(UTC)
    if logical == "date" and isinstance(dtype, pl.Datetime):
        return col.dt.date()
    if logical == "float" and dtype.is_numeric():
        return col.cast(pl.Float64)
    if logical == "int" and dtype.is_integer():
        return col.cast(pl.Int64)
    if logical == "string" and (dtype.is_numeric() or dtype == pl.Boolean):
        return col.cast(pl.String)
    return None


def as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_nested():
        # nested JSON values are kept as JSON text: {"v": <value>} with the wrapper cut off
        return pl.struct(pl.col(name).alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    return pl.col(name).cast(pl.String, strict=False)


def first_pass(text: pl.Expr, logical: str) -> pl.Expr:
    """The parse of the common spelling; nulls where it did not apply."""
    if logical == "string":
        return text
    if logical == "float":
        return text.cast(pl.Float64, strict=False)
    if logical == "int":
        return text.cast(pl.Int64, strict=False)
    if logical == "bool":
        lowered = text.str.strip_chars().str.to_lowercase()
        return pl.when(lowered.is_in(_TRUE)).then(True).when(lowered.is_in(_FALSE)).then(False)
    if logical == "timestamp":
        return text.str.to_datetime(ISO_AWARE, strict=False, time_unit="us", time_zone=UTC)
    if logical == "date":
        return text.str.to_date("%Y-%m-%d", strict=False)
    raise ValueError(f"no parser for logical type {logical!r}")


def _epoch(sub: pl.Series) -> pl.Series:
    """Integer/float epoch in s, ms or µs (told apart by magnitude) → UTC timestamp."""
    num = sub.str.strip_chars().cast(pl.Float64, strict=False)
    micros = pl.select(
        pl.when(num.abs() < 1e11).then(num * 1e6).when(num.abs() < 1e14).then(num * 1e3).otherwise(num)
    ).to_series().cast(pl.Int64, strict=False)
    return micros.cast(pl.Datetime("us")).dt.replace_time_zone(UTC)


def _timestamp_fallback(sub: pl.Series) -> pl.Series:
    iso = sub.str.strip_chars().str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
    aware = iso.str.to_datetime(ISO_AWARE, strict=False, time_unit="us", time_zone=UTC)
    naive = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us").dt.replace_time_zone(UTC)
    minutes = iso.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us").dt.replace_time_zone(UTC)
    day = iso.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone(UTC)
    return pl.select(pl.coalesce(aware, naive, minutes, day, _epoch(sub))).to_series()


def _float_fallback(sub: pl.Series) -> pl.Series:
    return sub.str.replace_all(_NUMBER_NOISE, "").cast(pl.Float64, strict=False)


def _int_fallback(sub: pl.Series) -> pl.Series:
    as_float = _float_fallback(sub)
    whole = as_float.is_not_null() & (as_float == as_float.floor()) & (as_float.abs() < 9e15)
    return pl.select(pl.when(whole).then(as_float).otherwise(None).cast(pl.Int64)).to_series()


#: fallbacks for values the first pass missed, and whether their success counts as a normalisation
#: to audit (other timestamp spellings are legitimate encodings, not faults)
FALLBACKS = {
    "float": (_float_fallback, True),
    "int": (_int_fallback, True),
    "timestamp": (_timestamp_fallback, False),
    "date": (lambda s: _timestamp_fallback(s).dt.date(), False),
}


def _timestamps_with_duckdb(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """ISO-8601 text → UTC timestamps for several columns at once. DuckDB's cast is multi-threaded
    and about four times faster here than Polars' strptime; text without an offset means UTC."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("landed", frame.select(names))
        columns = ", ".join(f'try_cast("{n}" AS TIMESTAMPTZ) AS "{n}"' for n in names)
        out = con.sql(f"SELECT {columns} FROM landed").pl()
    finally:
        con.close()
    return out.with_columns(pl.col(n).dt.convert_time_zone(UTC).dt.cast_time_unit("us") for n in names)


def parse_frame(frame: pl.DataFrame, types: dict[str, str]) -> dict[str, Parsed]:
    """Parse the named columns of ``frame`` into their logical types (see the module docstring)."""
    exprs: dict[str, pl.Expr] = {}
    text_stamps = [n for n, t in types.items() if t == "timestamp" and frame.schema[n] == pl.String]
    stamps = _timestamps_with_duckdb(frame, text_stamps) if text_stamps and frame.height else None
    for name, logical in types.items():
        native = _native(name, frame.schema[name], logical)
        if native is not None:
            exprs[name] = native
            continue
        text = as_text(name, frame.schema[name])
        parsed = pl.lit(stamps[name]) if stamps is not None and name in text_stamps else first_pass(text, logical)
        exprs[name] = parsed
        if logical != "string":
            exprs[f"__missed_{name}"] = parsed.is_null() & text.is_not_null() & (text.str.len_bytes() > 0)
        if frame.schema[name] != pl.String:
            exprs[f"__text_{name}"] = text
    first = frame.select(**exprs)

    out: dict[str, Parsed] = {}
    for name, logical in types.items():
        values = first[name]
        no = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
        failed = normalised = no
        missed_col = f"__missed_{name}"
        if missed_col in first.columns and first[missed_col].any():
            text = first[f"__text_{name}"] if f"__text_{name}" in first.columns else frame[name]
            idx = first[missed_col].arg_true()
            fallback, audit = FALLBACKS[logical]
            repaired = fallback(text.gather(idx))
            values = values.scatter(idx, repaired)
            blank = text.gather(idx).str.strip_chars() == ""
            failed = no.clone().scatter(idx, repaired.is_null() & ~blank)
            if audit:
                normalised = no.clone().scatter(idx, repaired.is_not_null())
        parsed = Parsed(values.cast(LOGICAL_TYPES[logical]).alias(name), failed.alias(name), normalised.alias(name))
        if logical in ("float", "int") and missed_col in first.columns and first[missed_col].any():
            text = first[f"__text_{name}"] if f"__text_{name}" in first.columns else frame[name]
            parsed = _decide_numbers(parsed, text, logical)
        out[name] = parsed
    return out


def _decide_numbers(parsed: Parsed, text: pl.Series, logical: str) -> Parsed:
    """Re-read a number column whose text is not canonical under the separator its values decide."""
    decided, dot, comma = number_format(text)
    values, ambiguous, reason = _numbers_by_format(text, decided, dot, comma)
    if logical == "int":
        whole = values.is_not_null() & (values == values.floor()) & (values.abs() < 9e15)
        values = pl.select(pl.when(whole).then(values)).to_series()
    values = values.cast(LOGICAL_TYPES[logical])
    present = text.is_not_null() & (text.str.strip_chars() != "")
    failed = (present & values.is_null() & ~ambiguous).alias(parsed.values.name)
    # as the first pass read it: a value that needed any normalisation (spaces, symbols, separators)
    # is audited, as before the decision
    as_written = text.cast(LOGICAL_TYPES[logical], strict=False).cast(pl.Float64)
    normalised = (values.is_not_null() & (as_written.is_null() | (as_written != values.cast(pl.Float64))))
    return Parsed(values.alias(parsed.values.name), failed, normalised.alias(parsed.values.name),
                  ambiguous.alias(parsed.values.name), reason, number_format=
                  {".": "decimal point", ",": "decimal comma", "?": "undecided"}[decided]
                  + f" (evidence: {dot} point, {comma} comma)")


def parse_column(column: pl.Series, logical: str) -> Parsed:
    """Parse one column (see `parse_frame`)."""
    return parse_frame(column.to_frame(), {column.name: logical})[column.name]
