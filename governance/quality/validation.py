"""Run a suite on a Polars frame through Great Expectations 1.x, and turn GX's results into ours.

The path (chosen for speed, and because GX's SQL datasource over duckdb-engine returns empty
results here): Polars → pandas (Arrow-backed strings, numpy numbers/timestamps) → an *ephemeral*
GX context (no project on disk) with a pandas dataframe asset → ``Batch.validate``.

Five things make it fast on 10M-row partitions without changing what GX computes (a test checks our
verdicts and counts against GX's plain whole-frame validate):

1. **Projection.** GX's pandas engine filters the *whole* frame (``df[df[col].notnull()]``) for every
   expectation on a nullable column, so its cost grows with the frame's width. Each group of expectations
   gets only the columns it reads (its column and its row-condition columns); aggregates that ignore nulls
   by definition (mean, quantiles, min/max…) get only the column's non-null values. Table-schema
   expectations (column names and types) see the full schema on a 1,000-row head: names and dtypes do not
   depend on the rows.
2. **Two passes.** Pass 1 asks GX for BASIC results (counts, percentages, observed values, a few values).
   Only expectations that failed row by row are re-run with the table's key columns for example rows, so
   the keys are not copied through every null filter when nothing fails.
3. **No fingerprint.** GX hashes every pandas batch under 1 GB to fingerprint it (``batch_markers``), which
   costs ~0.8 s per million rows per validate call and is never used by us; we set GX's threshold to 0.
4. **Surrogates for long string columns** (≥100k rows): nullness expectations see an Int8 null mask and
   uniqueness sees 64-bit hashes instead of millions of converted strings; both give GX's exact answer
   (a hash collision could only turn a pass into a failure, and failures are re-run on the values).
5. **Schema-driven dtypes.** Strings become pandas 3 ``str`` (Arrow-backed: one buffer copy from Polars and
   fast hashing), floats numpy (NaN = null), integers pandas nullable ``Int64`` (values + mask), booleans
   numpy, timestamps numpy ``datetime64[us, UTC]``. So the GX type names in suites are ``str``,
   ``float64``, ``int64``/``int32``, ``bool`` and ``Timestamp`` (see ``gx_type_name``).

Referential integrity: the suite states it as ``expect_column_values_to_be_in_set`` with
``value_set = {"$PARAMETER": "ref__clean__products__product_id"}`` (GX tooling reads that as a run-time
parameter). Handing GX 200k keys as a value set is hopeless (GX 1.24 re-serialises an expectation's kwargs
hundreds of times per run: 30 s for 100k rows), so Polars computes "is this value a key of the referenced
table" (hash semi-join; null stays null) and GX validates that boolean column with the same expectation
type, ``mostly`` and null semantics; the failing rows it reports carry the original value.
"""

from __future__ import annotations

import math
import re
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from governance.quality.suites import Suite, SuiteExpectation

EXAMPLES = 5
#: aggregate expectations whose statistic is defined on the non-null values only (pandas skips NaN),
#: so GX is handed just those values: same observed value, far fewer rows
NULL_IGNORING_AGGREGATES = frozenset({
    "expect_column_mean_to_be_between", "expect_column_median_to_be_between", "expect_column_stdev_to_be_between",
    "expect_column_min_to_be_between", "expect_column_max_to_be_between", "expect_column_sum_to_be_between",
    "expect_column_quantile_values_to_be_between",
})
NON_NULL_PREFIX = "\0non-null:"
#: from this many rows, nullness and uniqueness of string columns are tested on cheap surrogates (see _surrogate)
SURROGATE_MIN_ROWS = 100_000
SCHEMA_SAMPLE_ROWS = 1000
#: columns whose values are personal data: never shown in examples
PII_COLUMNS = frozenset({"email", "phone", "name", "text", "title", "query_text", "record", "description"})
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w-])\+?\(?\d[\d ().-]{6,}\d(?![\w-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
REDACTED = "‹redacted›"


def _phone(match: re.Match) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    if digits < 9 or _DATE.search(text) or re.fullmatch(r"\d{1,3}(,\d{3})+|[\d.]+", text) and "." in text:
        return text
    return "‹phone›"


def scrub(value: Any) -> Any:
    """Remove anything e-mail or phone shaped from a value shown to people."""
    if isinstance(value, str):
        return _PHONE.sub(_phone, _EMAIL.sub("‹email›", value))
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: (REDACTED if k in PII_COLUMNS else scrub(v)) for k, v in value.items()}
    return value


def gx_type_name(dtype: pl.DataType) -> str:
    """The GX ``expect_column_values_to_be_of_type`` name a Polars column has after ``to_gx_pandas``."""
    if dtype == pl.String or dtype == pl.Categorical or dtype == pl.Enum:
        return "str"
    if dtype.is_float():
        return "float64"
    if dtype.is_integer():
        return str(dtype).lower()
    if dtype == pl.Boolean:
        return "bool"
    if isinstance(dtype, pl.Datetime):
        return "Timestamp" if dtype.time_zone else "datetime64"
    if dtype == pl.Date:
        return "datetime64"
    return "object"


_PANDAS_INT = {"Int8": "Int8", "Int16": "Int16", "Int32": "Int32", "Int64": "Int64", "UInt8": "UInt8",
               "UInt16": "UInt16", "UInt32": "UInt32", "UInt64": "UInt64"}


def to_gx_pandas(frame: pl.DataFrame, columns: list[str] | None = None):
    """Polars → pandas with the dtypes GX is fast on (see module doc); only ``columns`` when given."""
    import pandas as pd

    out = {}
    for name in columns or frame.columns:
        s = frame.get_column(name)
        dtype = s.dtype
        if dtype == pl.String or dtype == pl.Categorical or dtype == pl.Enum:
            out[name] = s.cast(pl.String).to_pandas()  # pandas 3 'str': Arrow-backed
        elif dtype.is_float():
            out[name] = s.cast(pl.Float64).to_pandas()
        elif dtype.is_integer():  # pandas nullable integers, built from values + mask (no float round trip)
            values = s.fill_null(0).to_numpy()
            mask = s.is_null().to_numpy()
            array = pd.arrays.IntegerArray(values.astype(_PANDAS_INT[str(dtype)].lower(), copy=False), mask)
            out[name] = pd.Series(array, copy=False)
        elif dtype == pl.Boolean:  # numpy bool; with nulls pandas "boolean" from values + mask (no objects)
            out[name] = s.to_pandas() if s.null_count() == 0 else pd.Series(
                pd.arrays.BooleanArray(s.fill_null(False).to_numpy(), s.is_null().to_numpy()), copy=False)
        elif isinstance(dtype, pl.Datetime) or dtype == pl.Date:
            out[name] = s.to_pandas()
        else:
            out[name] = s.to_pandas()
        out[name].name = name
    return pd.DataFrame(out, copy=False)


# ------------------------------------------------------------------------------------ GX context

_LOCK = threading.Lock()
_CONTEXT: dict[str, Any] = {}


def _batch_definition():
    """One ephemeral GX context per process with a pandas dataframe asset (built on first use)."""
    with _LOCK:
        if "bd" not in _CONTEXT:
            import great_expectations as gx
            import great_expectations.execution_engine.pandas_execution_engine as pandas_engine

            # GX fingerprints (hashes) every pandas batch below this many bytes; we never use the
            # fingerprint and it costs ~0.8 s per million rows per validate call.
            pandas_engine.HASH_THRESHOLD = 0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                context = gx.get_context(mode="ephemeral")
                try:
                    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
                except Exception:  # noqa: BLE001 - cosmetic only
                    pass
                asset = context.data_sources.add_pandas("governance").add_dataframe_asset("frame")
                _CONTEXT["bd"] = asset.add_batch_definition_whole_dataframe("whole")
                _CONTEXT["context"] = context
        return _CONTEXT["bd"]


# -------------------------------------------------------------------------------------- results

@dataclass
class ExpectationResult:
    """One expectation's outcome, in plain types (JSON-safe), ready for Dagster and the store."""

    check_name: str
    expectation_type: str
    column: str | None
    severity: str
    notes: str
    description: str
    success: bool
    observed_value: Any = None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    missing_count: int | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    exception: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)  # as in the suite (parameters unresolved)

    @property
    def failed_error(self) -> bool:
        return not self.success and self.severity == "error"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def result_summary(r: Any) -> str:
    """What one evaluated expectation saw, in one sentence: the project's one wording of a GX result.

    Takes an ``ExpectationResult`` or a stored ``CheckRecord`` (same fields; a record keeps the
    exception in ``details``). Row-level checks give their counts, set checks what is missing or
    unexpected, aggregate checks the observed value; a check GX could not evaluate says why.
    """
    from governance.tables import cell  # noqa: PLC0415

    details = r.details if isinstance(r.details, dict) else {}
    exception = getattr(r, "exception", None) or details.get("exception")
    if exception:
        return f"Could not evaluate: {exception}"
    if r.unexpected_count is not None and r.element_count is not None:
        pct = f" ({r.unexpected_percent:.3g}%)" if r.unexpected_percent is not None else ""
        return f"{r.unexpected_count:,} of {r.element_count:,} rows unexpected{pct}."
    missing = details.get("partial_missing_list") or []
    extra = [c.get("value") for c in details.get("partial_unexpected_counts") or [] if isinstance(c, dict)]
    if missing or extra:
        return " ".join(x for x in (f"Missing: {cell(missing, 200)}." if missing else "",
                                    f"Unexpected: {cell(extra, 200)}." if extra else "") if x)
    return f"Observed {cell(r.observed_value, 60)}."


@dataclass
class SuiteResult:
    suite: str
    table: str
    partition: str | None
    row_count: int
    results: list[ExpectationResult]
    validated_at: datetime
    convert_s: float
    gx_s: float
    total_s: float
    gx_results: list[dict[str, Any]] = field(default_factory=list)  # GX's own JSON, value sets trimmed

    @property
    def success(self) -> bool:
        """No ``error`` expectation failed (``warn`` failures do not block)."""
        return not any(r.failed_error for r in self.results)

    @property
    def status(self) -> str:
        if not self.success:
            return "failed"
        return "warn" if any(not r.success for r in self.results) else "passed"

    def failed(self, severity: str | None = None) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and (severity is None or r.severity == severity)]

    def summary(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "table": self.table, "partition": self.partition, "status": self.status,
            "row_count": self.row_count, "expectations": len(self.results),
            "failed_error": len(self.failed("error")), "failed_warn": len(self.failed("warn")),
            "seconds": round(self.total_s, 3),
        }


def jsonable(value: Any) -> Any:
    """Plain JSON types out of numpy/pandas/datetime values (NaN → None)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def _trim(value: Any, limit: int = 20) -> Any:
    if isinstance(value, list) and len(value) > limit:
        return [*value[:limit], f"… {len(value) - limit} more"]
    if isinstance(value, dict):
        return {k: _trim(v, limit) for k, v in value.items()}
    return value


def runtime_parameters(partition: str | None, now: datetime | None = None) -> dict[str, str]:
    """``partition_start``/``partition_end`` of a daily partition (ISO, UTC; wide open for snapshots) and ``now``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if partition is None:
        bounds = {"partition_start": "1970-01-01T00:00:00+00:00", "partition_end": "2100-01-01T00:00:00+00:00"}
    else:
        start = datetime.fromisoformat(partition).replace(tzinfo=UTC)
        bounds = {"partition_start": start.isoformat(), "partition_end": (start + timedelta(days=1)).isoformat()}
    return {**bounds, "now": now.isoformat()}


def _convert_result(exp: SuiteExpectation, gx_result: Any, examples: int, drop: list[str] | None = None
                    ) -> ExpectationResult:
    raw = gx_result.to_json_dict()
    result = raw.get("result") or {}
    info = raw.get("exception_info") or {}
    exception = None
    if isinstance(info, dict) and info.get("raised_exception"):
        exception = info.get("exception_message") or "GX raised an exception"
    elif isinstance(info, dict) and "raised_exception" not in info:  # per-metric exception mapping
        messages = [v.get("exception_message") for v in info.values()
                    if isinstance(v, dict) and v.get("raised_exception")]
        exception = "; ".join(m for m in messages if m) or None
    column = exp.column
    rows: list[dict[str, Any]] = []
    for item in (result.get("partial_unexpected_index_list") or [])[:examples]:
        if isinstance(item, dict):
            rows.append({k: (REDACTED if k in PII_COLUMNS else scrub(jsonable(v))) for k, v in item.items()
                         if k not in (drop or [])})
    if not rows and result.get("partial_unexpected_list") and not drop:
        name = column or "value"
        rows = [{name: REDACTED if name in PII_COLUMNS else scrub(jsonable(v))}
                for v in result["partial_unexpected_list"][:examples]]
    details = {}
    for key in ("details", "partial_missing_list", "partial_unexpected_counts", "missing_percent",
                "unexpected_percent_nonmissing"):
        if key in result and result[key] not in (None, [], {}):
            details[key] = _trim(jsonable(result[key]))
    if column in PII_COLUMNS or drop:
        details.pop("partial_unexpected_counts", None)
    observed = jsonable(result.get("observed_value"))
    if column in PII_COLUMNS and exp.type not in ("expect_column_values_to_be_of_type",):
        observed = observed if isinstance(observed, int | float) or observed is None else REDACTED
    return ExpectationResult(
        check_name=exp.check_name, expectation_type=exp.type, column=column, severity=exp.severity, notes=exp.notes,
        description=exp.describe(), success=bool(raw.get("success")) and exception is None,
        observed_value=_trim(observed), element_count=result.get("element_count"),
        unexpected_count=result.get("unexpected_count"),
        unexpected_percent=jsonable(result.get("unexpected_percent")),
        missing_count=result.get("missing_count"), examples=rows, details=details, exception=exception,
        kwargs=jsonable(exp.kwargs),
    )


def _failure(exp: SuiteExpectation, message: str) -> ExpectationResult:
    return ExpectationResult(check_name=exp.check_name, expectation_type=exp.type, column=exp.column,
                             severity=exp.severity, notes=exp.notes, description=exp.describe(), success=False,
                             exception=message, kwargs=jsonable(exp.kwargs))


@dataclass
class _Plan:
    """How each expectation is evaluated: its GX configuration, the frame columns it reads, derived columns."""

    configs: dict[int, dict[str, Any]]
    reads: dict[int, tuple[str, ...]]
    examples_also: dict[int, list[str]]  # extra columns shown with failing rows (a reference's real values)
    derived: dict[str, pl.Series]
    failures: dict[int, str]
    where: dict[int, str] = field(default_factory=dict)  # pandas row conditions, applied once by us
    exact: dict[int, tuple[dict[str, Any], tuple[str, ...]]] = field(default_factory=dict)  # see _surrogate


def reference_column(exp: SuiteExpectation) -> str:
    ref = exp.references[0]
    return f"{exp.column} in {ref.table_name}.{ref.column}"


def _plan(suite: Suite, frame: pl.DataFrame, references: Mapping[str, pl.DataFrame] | None) -> _Plan:
    """Resolve references and missing columns before GX runs.

    Referential integrity: GX 1.24 re-serialises an expectation's kwargs hundreds of times per validation,
    so a value set of 200k user ids costs minutes. Polars computes whether each value is a key of the
    referenced table (a hash semi-join, null where the value is null), and GX validates that boolean
    column with the same expectation (``in_set`` [True], same ``mostly`` and null semantics), so counts,
    percentages and failing rows still come from GX; failing rows show the original value.
    """
    plan = _Plan({}, {}, {}, {}, {})
    keys: dict[str, pl.Series | str] = {}
    for ref in suite.references:
        ref_frame = (references or {}).get(ref.table_name)
        if ref_frame is None:
            keys[ref.parameter] = f"reference table {ref.table_name} is not available (not materialized?)"
        elif ref.column not in ref_frame.columns:
            keys[ref.parameter] = f"reference table {ref.table_name} has no column {ref.column}"
        else:
            keys[ref.parameter] = ref_frame.get_column(ref.column).drop_nulls().unique()
    for exp in suite.expectations:
        absent = [c for c in exp.columns if c not in frame.columns]
        unresolved = [keys[r.parameter] for r in exp.references if isinstance(keys[r.parameter], str)]
        if unresolved:
            plan.failures[exp.index] = "; ".join(unresolved)
            continue
        if absent and not exp.is_schema_level:
            plan.failures[exp.index] = f"column(s) {absent} missing from the table"
            continue
        config = exp.configuration()
        reads = exp.columns
        if exp.references:
            if exp.type != "expect_column_values_to_be_in_set" or len(exp.references) != 1:
                plan.failures[exp.index] = "references are supported in expect_column_values_to_be_in_set only"
                continue
            name = reference_column(exp)
            values = frame.get_column(exp.column)
            plan.derived[name] = (pl.select(pl.when(values.is_null()).then(None)
                                            .otherwise(values.is_in(keys[exp.references[0].parameter])))
                                  .to_series().alias(name))
            config["kwargs"] = {**config["kwargs"], "column": name, "value_set": [True]}
            reads = (name, *[c for c in exp.columns if c != exp.column])
            plan.examples_also[exp.index] = [exp.column]
        if isinstance(config["kwargs"].get("row_condition"), str):
            # GX re-applies a row condition for every metric it computes; filtering once gives the same rows
            plan.where[exp.index] = config["kwargs"]["row_condition"]
            config["kwargs"] = {k: v for k, v in config["kwargs"].items()
                                if k not in ("row_condition", "condition_parser")}
        surrogate = _surrogate(exp, frame)
        if surrogate is not None:  # a cheaper column with the same answer; pass 2 uses the values themselves
            plan.exact[exp.index] = (config, tuple(reads))
            plan.derived.setdefault(surrogate.name, surrogate)
            config = {**config, "kwargs": {**config["kwargs"], "column": surrogate.name}}
            reads = (surrogate.name, *[c for c in reads if c != exp.column])
        plan.configs[exp.index] = config
        plan.reads[exp.index] = tuple(reads)
    return plan


def _surrogate(exp: SuiteExpectation, frame: pl.DataFrame) -> pl.Series | None:
    """For long string columns: what GX needs of them, without converting millions of strings.

    - nullness expectations (not null / null) only look at which values are null: an Int8 column, null where
      the value is null, gives GX's exact counts (the values of failing rows are null anyway);
    - uniqueness: 64-bit hashes, null where the value is null. Equal values have equal hashes, so a pass
      is exact; a failure (a real duplicate, or a ~1e-12 collision) is re-validated on the values in pass 2.
    """
    if frame.height < SURROGATE_MIN_ROWS or exp.column is None or frame.schema.get(exp.column) != pl.String:
        return None
    values = frame.get_column(exp.column)
    if exp.type in ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null"):
        return pl.select(pl.when(values.is_null()).then(None).otherwise(pl.lit(1, pl.Int8))).to_series().alias(
            f"{exp.column} (null mask)")
    if exp.type == "expect_column_values_to_be_unique":
        return pl.select(pl.when(values.is_null()).then(None).otherwise(values.hash())).to_series().alias(
            f"{exp.column} (64-bit hash)")
    return None


def _gx_suite(name: str, configs: list[dict[str, Any]]):
    import great_expectations as gx

    from governance.quality.suites import _gx_expectation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gx.ExpectationSuite(name=name, expectations=[_gx_expectation(c) for c in configs])


def validate(
    suite: Suite,
    frame: pl.DataFrame,
    partition: str | None = None,
    references: Mapping[str, pl.DataFrame] | None = None,
    examples: int = EXAMPLES,
    keep_gx_results: bool = True,
) -> SuiteResult:
    """Validate ``frame`` against ``suite`` with GX; ``references`` maps "layer.table" → frame."""
    import pandas as pd

    started = time.perf_counter()
    validated_at = datetime.now(UTC)
    bd = _batch_definition()
    parameters: dict[str, Any] = runtime_parameters(partition, validated_at)
    t_plan = time.perf_counter()
    plan = _plan(suite, frame, references)
    plan_s = time.perf_counter() - t_plan
    outcomes: dict[int, ExpectationResult] = {i: _failure(suite.expectations[i], m) for i, m in plan.failures.items()}
    gx_json: dict[int, dict] = {}
    runnable = [e for e in suite.expectations if e.index in plan.configs]
    key = [k for k in suite.key if k in frame.columns]

    # group expectations by the columns they read (table-level ones read one cheap column) and their row
    # condition; aggregates that ignore nulls by definition see only the column's non-null values
    Group = tuple[tuple[str, ...], str | None]
    groups: dict[Group, list[SuiteExpectation]] = {}
    for exp in runnable:
        where = plan.where.get(exp.index)
        if exp.is_schema_level:
            cols: tuple[str, ...] = ("__schema__",)
        elif exp.type in NULL_IGNORING_AGGREGATES and where is None:
            cols = (NON_NULL_PREFIX + exp.columns[0],)
        else:
            cols = plan.reads[exp.index] or tuple(key[:1] or frame.columns[:1])
        groups.setdefault((cols, where), []).append(exp)

    timer = {"convert": plan_s, "gx": 0.0}
    converted: dict[str, Any] = {}

    def frame_of(group: Group):
        cols, where = group
        t0 = time.perf_counter()
        if cols == ("__schema__",):
            pdf = to_gx_pandas(frame.head(SCHEMA_SAMPLE_ROWS))
        elif cols[0].startswith(NON_NULL_PREFIX):
            values = frame.get_column(cols[0].removeprefix(NON_NULL_PREFIX))
            if values.dtype.is_float():
                values = values.fill_nan(None)
            pdf = to_gx_pandas(values.drop_nulls().to_frame())
        else:
            for c in cols:
                if c not in converted:
                    source = plan.derived[c].to_frame() if c in plan.derived else frame
                    converted[c] = to_gx_pandas(source, [c])[c]
            pdf = pd.DataFrame({c: converted[c] for c in cols}, copy=False)
            if where is not None:
                pdf = pdf.query(where)  # exactly what GX's pandas engine does with a row_condition
        timer["convert"] += time.perf_counter() - t0
        return pdf

    def run(exps: list[SuiteExpectation], pdf, fmt: dict, exact: bool = False) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                batch = bd.get_batch(batch_parameters={"dataframe": pdf})
                configs = [plan.exact[e.index][0] if exact and e.index in plan.exact else plan.configs[e.index]
                           for e in exps]
                gx_suite = _gx_suite(suite.name, configs)
                validation = batch.validate(gx_suite, result_format=fmt, expectation_parameters=parameters)
            # match GX's results to ours by the check name we put in each expectation's meta
            return {item.expectation_config.meta["check_name"]: item for item in validation.results}
        except Exception as exc:  # noqa: BLE001 - one bad group must not hide the others' results
            for exp in exps:
                outcomes[exp.index] = _failure(exp, f"GX failed: {type(exc).__name__}: {exc}")
            return None
        finally:
            timer["gx"] += time.perf_counter() - t0

    # Pass 1: every expectation, BASIC results (counts, percentages, observed values, a few values).
    basic = {"result_format": "BASIC", "partial_unexpected_count": examples}
    items: dict[str, Any] = {}
    for group, exps in groups.items():
        got = run(exps, frame_of(group), basic)
        if got:
            items.update(got)
    # Pass 2: only failed row-level expectations, again with the key columns, for example rows.
    # (Carrying the keys through pass 1 would make GX copy them for every nullable column.)
    if key:
        retry: dict[tuple[Group, tuple[str, ...]], list[SuiteExpectation]] = {}
        for (cols, where), exps in groups.items():
            for exp in exps:
                item = items.get(exp.check_name)
                if (item is not None and not item.success and not exp.is_schema_level
                        and not cols[0].startswith(NON_NULL_PREFIX) and (item.result or {}).get("unexpected_count")):
                    index = tuple(dict.fromkeys([*key, *plan.examples_also.get(exp.index, [])]))
                    reads = plan.exact[exp.index][1] if exp.index in plan.exact else cols
                    retry.setdefault(((tuple(dict.fromkeys([*reads, *index])), where), index), []).append(exp)
        for (group, index), exps in retry.items():
            summary = {"result_format": "SUMMARY", "partial_unexpected_count": examples,
                       "unexpected_index_column_names": list(index)}
            got = run(exps, frame_of(group), summary, exact=True)
            if got:
                items.update(got)

    for exp in runnable:
        item = items.get(exp.check_name)
        if item is None:
            continue
        outcomes[exp.index] = _convert_result(exp, item, examples, drop=[reference_column(exp)] if exp.references
                                              else [])
        if keep_gx_results:
            doc = item.to_json_dict()
            doc["expectation_config"]["meta"] = dict(exp.meta)
            doc["expectation_config"]["kwargs"] = _trim(jsonable(exp.kwargs))
            doc["result"] = _trim(scrub(jsonable(doc.get("result") or {})), examples)
            gx_json[exp.index] = doc

    ordered = [outcomes[e.index] for e in suite.expectations]
    return SuiteResult(
        suite=suite.name, table=suite.table, partition=partition, row_count=frame.height, results=ordered,
        validated_at=validated_at, convert_s=timer["convert"], gx_s=timer["gx"],
        total_s=time.perf_counter() - started,
        gx_results=[gx_json[e.index] for e in suite.expectations if e.index in gx_json],
    )


def validate_whole(suite: Suite, frame: pl.DataFrame, partition: str | None = None,
                   references: Mapping[str, pl.DataFrame] | None = None, result_format: str = "SUMMARY",
                   timings: dict[str, float] | None = None):
    """GX's plain path, for comparison (tests, bench): the whole frame (plus the reference columns) in one
    validate call, no projection and no passes. Returns GX's own result; ``timings`` gets prepare/validate."""
    t0 = time.perf_counter()
    plan = _plan(suite, frame, references)
    for index, (config, _) in plan.exact.items():  # GX's plain path: uniqueness on the values themselves
        plan.derived.pop(plan.configs[index]["kwargs"]["column"], None)
        plan.configs[index] = config
    full = frame.with_columns(list(plan.derived.values())) if plan.derived else frame
    pdf = to_gx_pandas(full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": pdf})
        fmt: dict[str, Any] = {"result_format": result_format, "partial_unexpected_count": EXAMPLES}
        if suite.key and result_format != "BASIC":
            fmt["unexpected_index_column_names"] = list(suite.key)
        configs = []
        for e in suite.expectations:
            if e.index not in plan.configs:
                continue
            config = plan.configs[e.index]
            if e.index in plan.where:  # GX applies the row condition itself on this path
                config = {**config, "kwargs": {**config["kwargs"], "row_condition": plan.where[e.index],
                                               "condition_parser": "pandas"}}
            configs.append(config)
        for c in configs:  # the derived reference columns are part of this frame: expect them too
            if c["type"] in ("expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set"):
                name = "column_list" if "column_list" in c["kwargs"] else "column_set"
                c["kwargs"] = {**c["kwargs"], name: [*c["kwargs"][name], *plan.derived]}
        gx_suite = _gx_suite(suite.name, configs)
        t1 = time.perf_counter()
        result = batch.validate(gx_suite, result_format=fmt, expectation_parameters=runtime_parameters(partition))
    if timings is not None:
        timings.update(prepare_s=t1 - t0, validate_s=time.perf_counter() - t1)
    return result
