"""Suites that fit the shop they run on.

The suites in ``expectations/`` were written for the generated shop. Some of their blocking
expectations hold for every shop on the platform (the contract's event types, unique keys, time
windows, no e-mail in review text); others describe that one shop (its row counts, its three-level
category paths, its category names, its price bands). For another shop:

* `suites_for_shop` keeps the platform-wide expectations, drops the generated shop's shop-dependent
  ones, adds the shop's own accepted suites (``expectations/<shop>/<table>.json``), and drops the
  row-count checks of every source the shop's mapping says it does not send;
* `suggest` proposes those shop-dependent expectations from the shop's own profiled history
  (row counts, value sets, category-path format, numeric ranges), as GX suite files in
  ``expectations/<shop>/suggested/`` for a person to review and accept (move them up one folder).

The generated shop (``shop`` None or ``"generated"``) keeps its suites as they are: they are that
shop's suites.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from governance.quality.profile import TableProfile
from governance.quality.suites import Suite, SuiteExpectation, load_suite, load_suites

GENERATED_SHOP = "generated"
#: expectation types whose literal bounds or sets describe one shop's data, not the platform
SHOP_DEPENDENT_TYPES = {
    "expect_table_row_count_to_be_between", "expect_column_values_to_match_regex",
    "expect_column_values_to_be_in_set", "expect_column_distinct_values_to_equal_set",
    "expect_column_distinct_values_to_be_in_set", "expect_column_most_common_value_to_be_in_set",
    "expect_column_mean_to_be_between", "expect_column_quantile_values_to_be_between",
    "expect_column_values_to_be_between",
}
#: (table, column) whose value sets and ranges are the platform's contract, true for every shop
PLATFORM_RULES = {
    ("clean.events", "event_type"), ("clean.events", "currency"), ("clean.products", "currency"),
    ("clean.reviews", "rating"), ("clean.reviews", "pii_spans_masked"), ("clean.queries", "results_count"),
    ("clean.users", "country"), ("clean.users", "email"), ("clean.users", "phone"),
}
MIN_HISTORY = 3


def _literal(value: Any) -> bool:
    return not (isinstance(value, dict) and "$PARAMETER" in value)


def _optional_in_contract(table: str, column: str | None) -> bool:
    from governance.contracts import CONTRACTS

    layer, name = table.split(".", 1)
    c = CONTRACTS.get(name)
    return layer == "clean" and c is not None and column in c.column_names and not c.column(column).required


def is_shop_dependent(table: str, e: SuiteExpectation) -> bool:
    """True for an expectation whose literal set, bounds or format describe one shop's data — or that
    requires a value the contract leaves optional (a shop that sends no prices has none to impute)."""
    if e.type == "expect_column_values_to_not_be_null":
        return _optional_in_contract(table, e.column)
    if e.type not in SHOP_DEPENDENT_TYPES or (table, e.column) in PLATFORM_RULES:
        return False
    if e.type == "expect_column_values_to_be_in_set" and not _literal(e.kwargs.get("value_set")):
        return False  # referential integrity: a reference to another table, not a literal set
    if e.type == "expect_column_values_to_be_between" and not (
            _literal(e.kwargs.get("min_value")) and _literal(e.kwargs.get("max_value"))):
        return False  # bounds from run-time parameters (the partition's day, now)
    if e.type == "expect_column_values_to_be_between" and e.kwargs.get("max_value") is None \
            and e.kwargs.get("min_value") in (0, 1):
        return False  # a sign rule (≥ 0), not a band
    return True


def _with(suite: Suite, expectations: Iterable[SuiteExpectation]) -> Suite:
    """The suite with these expectations, re-indexed by position (the validator's plan indexes them)."""
    return replace(suite, expectations=tuple(replace(e, index=i) for i, e in enumerate(expectations)))


def _drop_row_counts(suite: Suite) -> Suite:
    return _with(suite, (e for e in suite.expectations if e.type != "expect_table_row_count_to_be_between"))


def suites_for_shop(suites: Mapping[str, Suite], shop: str | None = None, sends: Iterable[str] | None = None,
                    directory: str | Path | None = None) -> dict[str, Suite]:
    """The suites as they apply to ``shop`` (see the module docstring).

    ``sends``: the sources the shop sends (a mapping's ``sends``); tables of any other source (the
    layer's table name is the source's) get no row-count check. None: every source is sent.
    ``directory``: where the shop's accepted suites are (``<directory>/<shop>/``; default the suites'
    own folder, `governance.quality.runner.suites_dir`)."""
    if directory is None:
        from governance.quality.runner import suites_dir

        directory = suites_dir()
    sent = None if sends is None else set(sends)
    out: dict[str, Suite] = {}
    own = {}
    if shop and shop != GENERATED_SHOP and (Path(directory) / shop).is_dir():
        own = load_suites(Path(directory) / shop)
    for table, suite in suites.items():
        if shop and shop != GENERATED_SHOP:
            kept = tuple(e for e in suite.expectations if not is_shop_dependent(table, e))
            if table in own:
                names = {e.check_name for e in kept}
                kept += tuple(e for e in own[table].expectations if e.check_name not in names)
            suite = _with(suite, kept)
        if sent is not None and suite.table_name not in sent and suite.table_name in {
                "events", "products", "users", "reviews", "queries"}:
            suite = _drop_row_counts(suite)
        out[table] = suite
    return out


def expectation_applies(table: str, e: SuiteExpectation, shop: str | None = None,
                        sends: Iterable[str] | None = None) -> bool:
    """Whether the generated shop's expectation ``e`` of ``table`` is checked for ``shop``."""
    if sends is not None and e.type == "expect_table_row_count_to_be_between" and \
            table.split(".", 1)[1] in {"events", "products", "users", "reviews", "queries"} - set(sends):
        return False
    return not (shop and shop != GENERATED_SHOP and is_shop_dependent(table, e))


# ------------------------------------------------------------------------------------------------
# proposals from profiled history


def _entry(type_: str, kwargs: dict, severity: str, notes: str, check_name: str | None = None) -> dict:
    meta = {"severity": severity, "proposed": True}
    if check_name:
        meta["check_name"] = check_name
    return {"type": type_, "kwargs": kwargs, "meta": meta, "notes": notes}


def _round_down(x: float) -> float:
    if x <= 0:
        return 0.0
    p = 10 ** math.floor(math.log10(x))
    return math.floor(x / p) * p


def _round_up(x: float) -> float:
    if x <= 0:
        return 0.0
    p = 10 ** math.floor(math.log10(x))
    return math.ceil(x / p) * p


def suggest(table: str, history: list[TableProfile], shop: str = "shop") -> dict | None:
    """A proposed GX suite for ``table`` from its partitions' profiles (None with too little history)."""
    history = [p for p in history if p.row_count > 0]
    if len(history) < MIN_HISTORY:
        return None
    n = len(history)
    counts = [p.row_count for p in history]
    entries = [_entry("expect_table_row_count_to_be_between",
                      {"min_value": max(1, int(min(counts) * 0.5)), "max_value": int(max(counts) * 2)},
                      "error", f"Between half the smallest and twice the largest of {n} profiled partitions "
                               f"({min(counts):,}–{max(counts):,} rows).")]
    columns = sorted({c.column for p in history for c in p.columns if not c.segment and not c.column.startswith("_")})
    for column in columns:
        profiles = [c for p in history if (c := p.column(column)) is not None]
        if len(profiles) < n:
            continue
        kind = profiles[0].kind
        if kind == "categorical":
            sets = [{v for v, _ in (c.top_values or [])} for c in profiles]
            complete = all((c.distinct_count or 0) <= len(s) for c, s in zip(profiles, sets, strict=True))
            union = set().union(*sets)
            if column == "category_path" and union:
                levels = {len(str(v).split(" > ")) for v in union}
                low, high = min(levels), max(levels)
                regex = r"^[^>]+( > [^>]+){%d,%d}$" % (low - 1, high - 1) if low != high else (
                    r"^[^>]+( > [^>]+){%d}$" % (low - 1) if low > 1 else r"^[^>]+$")
                entries.append(_entry("expect_column_values_to_match_regex", {"column": column, "regex": regex},
                                      "error", f"Category paths of {low}–{high} levels, as in {n} profiled partitions."))
            elif complete and 0 < len(union) <= 30 and all(isinstance(v, str | int | bool) for v in union):
                entries.append(_entry("expect_column_values_to_be_in_set",
                                      {"column": column, "value_set": sorted(union, key=str), "mostly": 0.99},
                                      "error", f"{column}: the {len(union)} values seen in {n} profiled partitions."))
        elif kind == "numeric":
            lows = [c.min for c in profiles if isinstance(c.min, int | float)]
            highs = [c.max for c in profiles if isinstance(c.max, int | float)]
            if lows and highs and all(math.isfinite(v) for v in lows + highs):
                lo, hi = min(lows), max(highs)
                entries.append(_entry("expect_column_values_to_be_between",
                                      {"column": column, "min_value": _round_down(lo) if lo > 0 else lo,
                                       "max_value": _round_up(hi) * 10 if hi > 0 else hi},
                                      "warn", f"{column}: observed {lo}–{hi} over {n} partitions; the band allows "
                                              "up to ten times the largest.",
                                      check_name=f"{column}_between_suggested"))
    return {"name": table, "expectations": entries,
            "meta": {"table": table, "shop": shop, "status": "proposed", "proposed_by": "governance suggest",
                     "history_partitions": sorted(p.partition or "all" for p in history)},
            "notes": f"Proposed for shop {shop} from {n} profiled partitions; review, then accept by moving the file "
                     f"to expectations/{shop}/."}


def write_proposals(proposals: Mapping[str, dict], out: Path) -> list[Path]:
    """Write each proposal as ``<out>/<table>.json`` and check that it loads as a suite."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table, doc in sorted(proposals.items()):
        path = out / f"{table}.json"
        path.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
        load_suite(path)  # a proposal is a valid suite
        written.append(path)
    return written


def suggest_from_lake(data_root: str | Path, shop: str = "shop", out: Path | None = None,
                      mapping: str | None = None, tables: Iterable[str] | None = None) -> list[Path]:
    """Proposals for every profiled ``clean.*`` table in the quality store of ``data_root``."""
    from governance.quality.store import QualityStore
    from governance.settings import Settings

    settings = Settings.load(data_root=str(data_root))
    store = QualityStore(settings.quality_url)
    sends = None
    if mapping:
        from governance.mappings import load_mapping

        sends = set(load_mapping(mapping).sends)
    proposals = {}
    for table in tables or store.tables():
        if not re.fullmatch(r"clean\.\w+", table):
            continue
        if sends is not None and table.split(".", 1)[1] not in sends:
            continue
        doc = suggest(table, store.profile_history(table), shop=shop)
        if doc is not None:
            proposals[table] = doc
    target = out or Path("expectations") / shop / "suggested"
    return write_proposals(proposals, target)
