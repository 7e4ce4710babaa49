"""Small Markdown tables of results, for whatever shows them (Dagster metadata, CLI output, notes).

The project's one table-rendering helper: rows (a Polars frame or a list of dicts) or counts (a
mapping) in, a Markdown string out. Pure: no Dagster, no masking (callers mask personal data
first, e.g. ``governance.privacy.mask_frame``), no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

MAX_CELL = 40


def cell(value: Any, max_chars: int = MAX_CELL) -> str:
    """One value as table-safe text: lists and dicts as JSON, pipes escaped, one line, shortened with '…'."""
    if value is None:
        text = ""
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def markdown_table(rows: pl.DataFrame | Sequence[Mapping[str, Any]], *, limit: int | None = None,
                   columns: Sequence[str] | None = None, max_cell: int = MAX_CELL, empty: str = "_no rows_") -> str:
    """The first ``limit`` rows (all when None) as a Markdown table; ``columns`` picks and orders them.

    For a list of dicts the columns are every key in order of first appearance.
    """
    if isinstance(rows, pl.DataFrame):
        frame = rows.select(columns) if columns else rows
        frame = frame.head(limit) if limit is not None else frame
        names, body = frame.columns, list(frame.iter_rows())
    else:
        records = list(rows)[:limit] if limit is not None else list(rows)
        names = list(columns) if columns else list(dict.fromkeys(k for r in records for k in r))
        body = [tuple(r.get(c) for c in names) for r in records]
    if not body:
        return empty
    lines = ["| " + " | ".join(cell(n, 200) for n in names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(v, max_cell) for v in row) + " |" for row in body]
    return "\n".join(lines)


def counts_markdown(counts: Mapping[Any, Any], label: str = "rule", value_label: str = "rows",
                    empty: str = "_none_") -> str:
    """A two-column table ``label | value_label``, numbers right-aligned with thousands separators."""
    if not counts:
        return empty
    lines = [f"| {label} | {value_label} |", "|---|---:|"]
    lines += [f"| {cell(k, 120)} | {v:,} |" if isinstance(v, int | float) and not isinstance(v, bool)
              else f"| {cell(k, 120)} | {cell(v, 120)} |" for k, v in counts.items()]
    return "\n".join(lines)
