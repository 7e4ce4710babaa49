"""Turning governance results into the metadata people read in the Dagster UI."""

from __future__ import annotations

import dagster as dg
import polars as pl

from governance.privacy import mask_frame

PREVIEW_ROWS = 5
_MAX_CELL = 40


def table_schema(frame: pl.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()])


def _cell(value) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def markdown_table(frame: pl.DataFrame, rows: int = PREVIEW_ROWS, columns: list[str] | None = None) -> dg.MetadataValue:
    """A small Markdown table (the UI renders it) of the first rows, personal data masked (governance/privacy.py)."""
    frame = frame.select(columns) if columns else frame
    head = mask_frame(frame.head(rows))
    if head.is_empty():
        return dg.MetadataValue.md("_no rows_")
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join(lines))


def counts_table(counts: dict[str, int], label: str = "rule") -> dg.MetadataValue:
    if not counts:
        return dg.MetadataValue.md("_none_")
    lines = [f"| {label} | rows |", "|---|---:|"] + [f"| {k} | {v:,} |" for k, v in counts.items()]
    return dg.MetadataValue.md("\n".join(lines))


def top_reasons(quarantine: pl.DataFrame, n: int = 5) -> dg.MetadataValue:
    """The most frequent quarantine rules, each with one example reason and record."""
    if quarantine.is_empty():
        return dg.MetadataValue.md("_nothing quarantined_")
    top = (
        quarantine.group_by("rule")
        .agg(pl.len().alias("rows"), pl.col("reason").first(), pl.col("file").first(), pl.col("row_number").first(),
             pl.col("record").first())
        .sort("rows", descending=True)
        .head(n)
    )
    return markdown_table(top, rows=n)
