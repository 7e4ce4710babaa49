"""Expectation suites as files: GX 1.x suite JSON in ``expectations/<layer>.<table>.json``.

A suite file is exactly what GX writes for an ``ExpectationSuite`` (``name``, ``expectations`` with
``type``/``kwargs``/``meta``/``notes``/``severity``, suite ``meta``), so GX tooling reads it as is.
Our conventions on top, checked when the file is loaded so a bad suite fails the code location
with the file and the entry named rather than a check failing at 3 a.m.:

- ``meta.severity`` is ``error`` (blocks downstream assets) or ``warn`` (reported only); GX's own
  ``severity`` field, when present, must agree (error ↔ critical, warn ↔ warning);
- ``notes`` is one line for analysts (what it means when this fails);
- every column an expectation names (``column``, ``column_A``/``column_B``, ``column_list``,
  ``column_set``, names inside a pandas ``row_condition``) exists in the table's schema;
- run-time values are GX suite parameters (``{"$PARAMETER": name}``), and only these names:
  ``partition_start`` / ``partition_end`` (ISO timestamps bounding a daily partition), ``now`` and
  ``ref__<layer>__<table>__<column>`` (the keys of another table: referential integrity);
- ``meta.check_name`` (optional) names the Dagster asset check; otherwise it is derived.

The suite's own ``meta`` carries ``table`` (must equal the file name), ``key`` (columns shown to
identify failing example rows) and ``profile`` (how the table is profiled; see profile.py).
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

SEVERITIES = ("error", "warn")
_GX_SEVERITY = {"error": "critical", "warn": "warning"}
RUNTIME_PARAMETERS = ("partition_start", "partition_end", "now")
_REF_PARAMETER = re.compile(r"^ref__(?P<layer>[a-z0-9_]+?)__(?P<table>[a-z0-9_]+?)__(?P<column>[A-Za-z0-9_]+)$")
_CHECK_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
#: expectations evaluated on the table's schema only (names and types), not on its rows
SCHEMA_EXPECTATIONS = frozenset({
    "expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set",
    "expect_table_column_count_to_equal", "expect_table_column_count_to_be_between", "expect_column_to_exist",
    "expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list",
})
_SHORT_NAMES = {
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_null": "null",
    "expect_column_values_to_be_unique": "unique",
    "expect_column_values_to_be_in_set": "in_set",
    "expect_column_values_to_not_be_in_set": "not_in_set",
    "expect_column_values_to_be_between": "in_range",
    "expect_column_values_to_be_of_type": "type",
    "expect_column_values_to_match_regex": "format",
    "expect_column_value_lengths_to_be_between": "length",
    "expect_column_mean_to_be_between": "mean",
    "expect_column_median_to_be_between": "median",
    "expect_column_stdev_to_be_between": "stdev",
    "expect_column_min_to_be_between": "min",
    "expect_column_max_to_be_between": "max",
    "expect_column_quantile_values_to_be_between": "quantiles",
    "expect_column_distinct_values_to_equal_set": "distinct_values",
    "expect_column_distinct_values_to_be_in_set": "distinct_in_set",
    "expect_column_distinct_values_to_contain_set": "distinct_contains",
    "expect_column_most_common_value_to_be_in_set": "most_common",
    "expect_column_proportion_of_non_null_values_to_be_between": "non_null_share",
    "expect_column_proportion_of_unique_values_to_be_between": "unique_share",
    "expect_column_unique_value_count_to_be_between": "distinct_count",
    "expect_table_row_count_to_be_between": "row_count",
    "expect_table_columns_to_match_ordered_list": "columns",
    "expect_table_columns_to_match_set": "columns",
    "expect_compound_columns_to_be_unique": "compound_unique",
}


class SuiteError(ValueError):
    """A suite file is malformed; the message names the file and, where it applies, the entry."""


@dataclass(frozen=True)
class Reference:
    """Referential integrity: the checked column's values must be keys of ``layer.table.column``."""

    parameter: str
    layer: str
    table: str
    column: str

    @property
    def table_name(self) -> str:
        return f"{self.layer}.{self.table}"


@dataclass(frozen=True)
class SuiteExpectation:
    index: int  # position in the file (0-based)
    type: str
    kwargs: dict[str, Any]
    severity: str
    notes: str
    check_name: str
    meta: dict[str, Any]
    columns: tuple[str, ...]  # every column it reads
    references: tuple[Reference, ...] = ()
    parameters: tuple[str, ...] = ()  # every $PARAMETER it uses

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")

    @property
    def is_schema_level(self) -> bool:
        return self.type in SCHEMA_EXPECTATIONS

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    def configuration(self) -> dict[str, Any]:
        """The entry as GX JSON (as the file holds it, plus the resolved check name in meta)."""
        return {"type": self.type, "kwargs": self.kwargs, "meta": {**self.meta, "check_name": self.check_name},
                "notes": self.notes,
                "severity": _GX_SEVERITY[self.severity]}

    def describe(self) -> str:
        """A short human rendering, e.g. ``price in [0, 20000] (strict min)``."""
        return describe_expectation(self.type, self.kwargs)


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    table: str  # "<layer>.<table>"
    expectations: tuple[SuiteExpectation, ...]
    key: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None

    @property
    def layer(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]

    @property
    def references(self) -> tuple[Reference, ...]:
        seen: dict[str, Reference] = {}
        for e in self.expectations:
            for r in e.references:
                seen.setdefault(r.parameter, r)
        return tuple(seen.values())

    @property
    def profile_config(self) -> dict[str, Any]:
        return dict(self.meta.get("profile") or {})

    def expectation(self, check_name: str) -> SuiteExpectation:
        for e in self.expectations:
            if e.check_name == check_name:
                return e
        raise KeyError(f"{self.name}: no expectation with check name {check_name!r}")

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for e in self.expectations if e.severity == s) for s in SEVERITIES}


# --------------------------------------------------------------------------------------- schemas

def table_schema(table: str) -> dict[str, pl.DataType] | None:
    """Columns of a governed table, asked of the stage that declares them (None for an unknown table).

    ``clean.<source>``: the cleaning schema; ``integrated.<table>``: the integration stage's declared
    schemas. The stage modules are imported here, when a suite is loaded, never the other way round.
    """
    layer, _, name = table.partition(".")
    if layer == "clean":
        from governance.cleaning.schema import CLEAN_EXTRAS, clean_schema

        return clean_schema(name) if name in CLEAN_EXTRAS else None
    if layer == "integrated":
        from governance.integration.schemas import SCHEMAS

        return dict(SCHEMAS[name]) if name in SCHEMAS else None
    return None


# --------------------------------------------------------------------------------------- loading

def _gx_expectation(configuration: dict[str, Any]):
    import great_expectations  # noqa: F401 - the package first: importing a submodule alone is circular
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ExpectationConfiguration(**configuration).to_domain_obj()


def _parameters(value: Any) -> list[str]:
    """Every ``$PARAMETER`` name inside a kwargs value."""
    if isinstance(value, dict):
        if set(value) == {"$PARAMETER"}:
            return [str(value["$PARAMETER"])]
        return [p for v in value.values() for p in _parameters(v)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in _parameters(v)]
    return []


def condition_columns(row_condition: str) -> set[str]:
    """Column names a pandas ``row_condition`` expression reads (``category_l1 == "Books"`` → {category_l1})."""
    try:
        tree = ast.parse(row_condition.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"row_condition {row_condition!r} is not a valid pandas query expression: {exc.msg}") from None
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in {"True", "False", "None"}}


def _columns_of(kwargs: Mapping[str, Any]) -> list[str]:
    cols: list[str] = []
    for key in ("column", "column_A", "column_B"):
        if isinstance(kwargs.get(key), str):
            cols.append(kwargs[key])
    for key in ("column_list", "column_set"):
        if isinstance(kwargs.get(key), list):
            cols.extend(str(c) for c in kwargs[key])
    return cols


_PAIR_NAMES = {
    "expect_column_pair_values_a_to_be_greater_than_b": lambda kw: "ge" if kw.get("or_equal") else "gt",
    "expect_column_pair_values_to_be_equal": lambda kw: "eq",
    "expect_column_pair_values_to_be_in_set": lambda kw: "pair_in_set",
}


def derive_check_name(type_: str, kwargs: Mapping[str, Any]) -> str:
    """A check's name from what it checks only (type and columns), never from its position in the suite.

    ``<column>_<short type>`` (``price_in_range``), ``<column_A>_<op>_<column_B>`` for column pairs
    (``session_end_ge_session_start``), the short type for table-level ones (``row_count``). Two
    expectations that would share a name must set ``meta.check_name`` (the loader refuses duplicates).
    """
    a, b = kwargs.get("column_A"), kwargs.get("column_B")
    if type_ in _PAIR_NAMES and isinstance(a, str) and isinstance(b, str):
        return f"{a}_{_PAIR_NAMES[type_](kwargs)}_{b}"
    short = _SHORT_NAMES.get(type_) or re.sub(r"^expect_(column_|table_)?(values_)?(to_)?", "", type_)
    column = kwargs.get("column")
    return f"{column}_{short}" if isinstance(column, str) else short


def _load_entry(path: Path, index: int, entry: Any, schema: Mapping[str, pl.DataType] | None,
                known_schema: Callable[[str], Mapping[str, pl.DataType] | None]) -> SuiteExpectation:
    def fail(message: str) -> SuiteError:
        label = entry.get("type", "?") if isinstance(entry, dict) else "?"
        return SuiteError(f"{path}: expectations[{index}] ({label}): {message}")

    if not isinstance(entry, dict):
        raise fail(f"must be a JSON object, got {type(entry).__name__}")
    unknown = set(entry) - {"type", "kwargs", "meta", "notes", "severity", "id", "rendered_content", "description"}
    if unknown:
        raise fail(f"unknown field(s) {sorted(unknown)}; GX suite entries have type, kwargs, meta, notes, severity")
    type_ = entry.get("type")
    if not isinstance(type_, str) or not type_:
        raise fail("missing 'type' (the GX expectation type, e.g. expect_column_values_to_not_be_null)")
    kwargs = entry.get("kwargs")
    if not isinstance(kwargs, dict):
        raise fail("missing 'kwargs' object")
    meta = entry.get("meta") or {}
    if not isinstance(meta, dict):
        raise fail("'meta' must be an object")
    severity = meta.get("severity")
    if severity not in SEVERITIES:
        raise fail(f"meta.severity must be one of {list(SEVERITIES)} (error blocks downstream assets, warn does not); "
                   f"got {severity!r}")
    gx_severity = entry.get("severity")
    if gx_severity is not None and gx_severity != _GX_SEVERITY[severity]:
        raise fail(f"GX severity {gx_severity!r} contradicts meta.severity {severity!r} "
                   f"(use {_GX_SEVERITY[severity]!r}, or leave it out)")
    notes = entry.get("notes")
    if not isinstance(notes, str) or not notes.strip():
        raise fail("'notes' must be a one-line explanation for analysts")
    if "\n" in notes.strip():
        raise fail("'notes' must be one line")
    check_name = meta.get("check_name") or derive_check_name(type_, kwargs)
    if not _CHECK_NAME.match(check_name):
        raise fail(f"check name {check_name!r} must be letters, digits and underscores")

    # GX itself: the type exists and the kwargs are valid for it
    try:
        _gx_expectation({"type": type_, "kwargs": kwargs, "meta": meta, "notes": notes})
    except Exception as exc:  # GX raises several types (ExpectationNotFoundError, pydantic ValidationError…)
        detail = " ".join(str(exc).split())
        raise fail(f"GX rejects it: {type(exc).__name__}: {detail[:600]}") from None

    # parameters
    references: list[Reference] = []
    parameters = _parameters(kwargs)
    for name in parameters:
        m = _REF_PARAMETER.match(name)
        if name in RUNTIME_PARAMETERS:
            continue
        if not m:
            raise fail(f"unknown suite parameter {name!r}; allowed: {list(RUNTIME_PARAMETERS)} and "
                       "ref__<layer>__<table>__<column>")
        ref = Reference(name, m["layer"], m["table"], m["column"])
        ref_schema = known_schema(ref.table_name)
        if ref_schema is None:
            raise fail(f"parameter {name!r} references table {ref.table_name!r}, whose schema is unknown")
        if ref.column not in ref_schema:
            raise fail(f"parameter {name!r} references unknown column {ref.column!r} of {ref.table_name} "
                       f"(columns: {', '.join(ref_schema)})")
        references.append(ref)

    # columns
    columns = _columns_of(kwargs)
    condition = kwargs.get("row_condition")
    if condition is not None:
        if not isinstance(condition, str):
            raise fail("row_condition must be a pandas query string (with condition_parser 'pandas')")
        if kwargs.get("condition_parser") != "pandas":
            raise fail("row_condition needs \"condition_parser\": \"pandas\" (the engine our checks run on)")
        try:
            columns.extend(sorted(condition_columns(condition)))
        except ValueError as exc:
            raise fail(str(exc)) from None
    if schema is not None:
        missing = [c for c in columns if c not in schema]
        if missing:
            raise fail(f"unknown column(s) {missing}; the table has: {', '.join(schema)}")
    return SuiteExpectation(
        index=index, type=type_, kwargs=kwargs, severity=severity, notes=notes.strip(), check_name=check_name,
        meta=meta, columns=tuple(dict.fromkeys(columns)), references=tuple(references), parameters=tuple(parameters),
    )


def load_suite(path: str | Path, schema: Mapping[str, pl.DataType] | None = None) -> Suite:
    """Load and check one suite file. ``schema`` defaults to the table's known schema."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise SuiteError(f"{path}: a suite file holds one JSON object (GX ExpectationSuite), got {type(doc).__name__}")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise SuiteError(f"{path}: missing suite 'name'")
    if name != path.stem:
        raise SuiteError(f"{path}: suite name {name!r} must equal the file name {path.stem!r}")
    suite_meta = doc.get("meta") or {}
    if not isinstance(suite_meta, dict):
        raise SuiteError(f"{path}: suite 'meta' must be an object")
    table = suite_meta.get("table", name)
    if table != name or table.count(".") != 1:
        raise SuiteError(f"{path}: meta.table must be '<layer>.<table>' and equal the suite name, got {table!r}")
    entries = doc.get("expectations")
    if not isinstance(entries, list) or not entries:
        raise SuiteError(f"{path}: 'expectations' must be a non-empty list")

    if schema is None:
        schema = table_schema(table)
    if schema is None:  # an unregistered table: its own column list expectation declares the columns
        declared = [e for e in entries if isinstance(e, dict) and e.get("type") in (
            "expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set")]
        if not declared:
            raise SuiteError(f"{path}: the schema of {table} is unknown; declare it (governance.quality.suites."
                             "table_schema) or add expect_table_columns_to_match_ordered_list")
        kw = declared[0].get("kwargs") or {}
        schema = {c: pl.Null() for c in (kw.get("column_list") or kw.get("column_set") or [])}

    def known(t: str):
        return schema if t == table else table_schema(t)

    expectations = tuple(_load_entry(path, i, entry, schema, known) for i, entry in enumerate(entries))
    seen: dict[str, int] = {}
    for e in expectations:
        if e.check_name in seen:
            raise SuiteError(f"{path}: expectations[{e.index}] ({e.type}): check name {e.check_name!r} is already used "
                             f"by expectations[{seen[e.check_name]}]; set a distinct meta.check_name")
        seen[e.check_name] = e.index
    key = suite_meta.get("key") or []
    if not isinstance(key, list) or any(k not in schema for k in key):
        raise SuiteError(f"{path}: meta.key must list columns of {table} (used to show failing rows), got {key!r}")
    return Suite(name=name, path=path, table=table, expectations=expectations, key=tuple(key), meta=suite_meta,
                 notes=doc.get("notes"))


def load_suites(directory: str | Path, layers: Iterable[str] | None = None) -> dict[str, Suite]:
    """Every ``*.json`` suite in a directory (optionally only some layers), by table name."""
    wanted = set(layers) if layers is not None else None
    suites = {}
    for path in sorted(Path(directory).glob("*.json")):
        if wanted is not None and path.stem.split(".", 1)[0] not in wanted:
            continue
        suite = load_suite(path)
        suites[suite.table] = suite
    return suites


def describe_expectation(type_: str, kwargs: Mapping[str, Any]) -> str:
    """A short rendering of an expectation for people (UI, report)."""
    col = kwargs.get("column")
    short = _SHORT_NAMES.get(type_, type_.removeprefix("expect_"))

    def val(v: Any) -> str:
        if isinstance(v, dict) and "$PARAMETER" in v:
            name = v["$PARAMETER"]
            m = _REF_PARAMETER.match(name)
            return f"keys of {m['layer']}.{m['table']}.{m['column']}" if m else f"<{name}>"
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, int | float):
            return f"{v:,}" if float(v).is_integer() and abs(v) >= 10_000 else f"{v:g}"
        if isinstance(v, list) and len(v) > 8:
            return "[" + ", ".join(map(str, v[:8])) + f", … {len(v) - 8} more]"
        return str(v)

    parts = []
    if "value_set" in kwargs:
        parts.append(f"in {val(kwargs['value_set'])}")
    if "min_value" in kwargs or "max_value" in kwargs:
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        lb = "(" if kwargs.get("strict_min") else "["
        rb = ")" if kwargs.get("strict_max") else "]"
        parts.append(f"in {lb}{val(lo) if lo is not None else '-∞'}, {val(hi) if hi is not None else '∞'}{rb}")
    if "type_" in kwargs:
        return f"{col}: type {kwargs['type_']}"
    if "quantile_ranges" in kwargs:
        q = kwargs["quantile_ranges"]
        parts.append(", ".join(f"p{round(p * 100)} in {r}" for p, r in zip(q.get("quantiles", []),
                                                                           q.get("value_ranges", []), strict=False)))
    if "regex" in kwargs:
        parts.append(f"matching {kwargs['regex']}")
    if "column_list" in kwargs:
        parts.append(f"{len(kwargs['column_list'])} columns in order")
    if kwargs.get("mostly") is not None:
        parts.append(f"for ≥{kwargs['mostly']:.1%} of rows")
    if kwargs.get("row_condition"):
        parts.append(f"where {kwargs['row_condition']}")
    verb = "" if short in ("in_set", "in_range") else short.replace("_", " ")
    head = f"{col}: {verb}".rstrip() if col else verb
    return (head + (" " + "; ".join(parts) if parts else "")).replace(":  ", ": ")
