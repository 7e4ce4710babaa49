"""Vectorised parsing of landed text into contract types, with every failure kept.

Each parser returns the parsed column and two masks: which values could not be parsed at all
(they send their row to quarantine) and which needed normalisation to parse ("$1,299.00",
" 12.5 ", "2026-11-10 12:34:56") so the fix can be audited. The common format is parsed over the
whole column in one pass; the slower fallbacks run only on the few values the first pass missed.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from governance.contracts import LOGICAL_TYPES

UTC = "UTC"
_TS = pl.Datetime("us", UTC)
_NUMBER_NOISE = r"[\s$€£¥,_]|USD|EUR|GBP"
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass
class Parsed:
    values: pl.Series
    failed: pl.Series  # bool: a value was present but could not be parsed
    normalised: pl.Series  # bool: parsed only after normalisation


def _blank(text: pl.Series) -> pl.Series:
    return text.is_null() | (text.str.strip_chars() == "")


def _with_fallback(text: pl.Series, first: pl.Series, fallback) -> tuple[pl.Series, pl.Series]:
    """Fill the values ``first`` missed with ``fallback(subset)``; return values and the normalised mask."""
    missed = first.is_null() & ~_blank(text)
    normalised = pl.Series(text.name, [False] * len(text), dtype=pl.Boolean)
    if not missed.any():
        return first, normalised
    idx = missed.arg_true()
    repaired = fallback(text.gather(idx))
    values = first.scatter(idx, repaired)
    normalised = normalised.scatter(idx, repaired.is_not_null())
    return values, normalised


def parse_float(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    first = text.cast(pl.Float64, strict=False)

    def fallback(sub: pl.Series) -> pl.Series:
        return sub.str.replace_all(_NUMBER_NOISE, "").cast(pl.Float64, strict=False)

    return _with_fallback(text, first, fallback)


def parse_int(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    first = text.cast(pl.Int64, strict=False)

    def fallback(sub: pl.Series) -> pl.Series:
        as_float = sub.str.replace_all(_NUMBER_NOISE, "").cast(pl.Float64, strict=False)
        whole = as_float.is_not_null() & (as_float == as_float.floor()) & (as_float.abs() < 9e15)
        return pl.select(pl.when(whole).then(as_float).otherwise(None).cast(pl.Int64)).to_series()

    return _with_fallback(text, first, fallback)


def parse_bool(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    lowered = text.str.strip_chars().str.to_lowercase()
    values = (
        pl.select(
            pl.when(lowered.is_in(list(_TRUE))).then(True).when(lowered.is_in(list(_FALSE))).then(False).otherwise(None)
        )
        .to_series()
        .alias(text.name)
    )
    return values, pl.Series(text.name, [False] * len(text), dtype=pl.Boolean)


def _epoch(sub: pl.Series) -> pl.Series:
    """Integer/float epoch in s, ms or µs (told apart by magnitude) → UTC timestamp."""
    num = sub.str.strip_chars().cast(pl.Float64, strict=False)
    micros = (
        pl.select(
            pl.when(num.abs() < 1e11).then(num * 1e6).when(num.abs() < 1e14).then(num * 1e3).otherwise(num)
        )
        .to_series()
        .cast(pl.Int64, strict=False)
    )
    return micros.cast(pl.Datetime("us")).dt.replace_time_zone(UTC)


def _timestamp_fallback(sub: pl.Series) -> pl.Series:
    iso = sub.str.strip_chars().str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
    aware = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone=UTC)
    naive = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us").dt.replace_time_zone(UTC)
    minutes = iso.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us").dt.replace_time_zone(UTC)
    day = iso.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone(UTC)
    return pl.select(pl.coalesce(aware, naive, minutes, day, _epoch(sub))).to_series()


def parse_timestamp(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    first = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone=UTC)
    values, _ = _with_fallback(text, first, _timestamp_fallback)
    # other ISO spellings and epochs are legitimate encodings, not faults: nothing to audit
    return values, pl.Series(text.name, [False] * len(text), dtype=pl.Boolean)


def parse_date(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    stamps, normalised = parse_timestamp(text)
    return stamps.dt.date(), normalised


_TEXT_PARSERS = {
    "float": parse_float,
    "int": parse_int,
    "bool": parse_bool,
    "timestamp": parse_timestamp,
    "date": parse_date,
}


def _from_native(column: pl.Series, logical: str) -> pl.Series | None:
    """Cast a natively typed column (Parquet, JSON numbers) without a detour through text, if safe."""
    dtype = column.dtype
    target = LOGICAL_TYPES[logical]
    if dtype == target:
        return column
    if logical == "timestamp" and isinstance(dtype, pl.Datetime):
        col = column.dt.replace_time_zone(UTC) if dtype.time_zone is None else column.dt.convert_time_zone(UTC)
        return col.dt.cast_time_unit("us")
    if logical == "timestamp" and dtype == pl.Date:
        return column.cast(pl.Datetime("us")).dt.replace_time_zone(UTC)
    if logical == "date" and isinstance(dtype, pl.Datetime):
        return column.dt.date()
    if logical == "float" and dtype.is_numeric():
        return column.cast(pl.Float64)
    if logical == "int" and dtype.is_integer():
        return column.cast(pl.Int64)
    if logical == "string" and (dtype.is_numeric() or dtype == pl.Boolean):
        return column.cast(pl.String)
    return None


def parse_column(column: pl.Series, logical: str) -> Parsed:
    """Parse one landed column into the contract's logical type."""
    no = pl.Series(column.name, [False] * len(column), dtype=pl.Boolean)
    native = _from_native(column, logical)
    if native is not None:
        return Parsed(native, no, no)
    if column.dtype.is_nested():
        # nested JSON values are kept as JSON text: {"v": <value>} with the wrapper cut off
        text = pl.select(pl.struct(column.alias("v")).struct.json_encode().str.slice(5).str.head(-1)).to_series()
        text = text.alias(column.name)
    else:
        text = column.cast(pl.String, strict=False)
    if logical == "string":
        return Parsed(text, no, no)
    values, normalised = _TEXT_PARSERS[logical](text)
    failed = values.is_null() & ~_blank(text)
    return Parsed(values.alias(column.name), failed.alias(column.name), normalised.alias(column.name))
