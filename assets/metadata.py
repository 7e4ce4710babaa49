"""Turning governance results into the metadata people read in the Dagster UI."""

from __future__ import annotations

import dagster as dg
import polars as pl

from governance.privacy import mask_frame
from governance.tables import counts_markdown
from governance.tables import markdown_table as _markdown

PREVIEW_ROWS = 5


#: the lineage columns every raw and clean row carries (governance/contracts.py LINEAGE_COLUMNS)
LINEAGE_DESCRIPTIONS = {
    "_source_file": "lineage: the landed file the row came from",
    "_file_hash": "lineage: SHA-256 of that file's content",
    "_row_number": "lineage: the row's number in that file",
    "_ingested_at": "lineage: when collection read the file",
    "_partition": "lineage: the partition the row was collected into (the landing day, for daily sources)",
    "_extra_columns": "columns the file had beyond the contract, kept as JSON (schema drift)",
}


def contract_descriptions(source: str) -> dict[str, str]:
    """Column descriptions of a source's contract (and the lineage columns), for the UI's Columns table."""
    from governance.contracts import CONTRACTS

    contract = CONTRACTS.get(source)
    pii = "personal data (PII): masked in every preview, sample and metadata value"
    columns = {c.name: pii if c.pii else c.description for c in (contract.columns if contract else [])}
    return {**{k: v for k, v in columns.items() if v}, **LINEAGE_DESCRIPTIONS}


def table_schema(frame: pl.DataFrame, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """The frame's columns and types; `descriptions` (column -> text) fill the UI's Description column."""
    descriptions = descriptions or {}
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype), description=descriptions.get(name))
                                   for name, dtype in frame.schema.items()])


def markdown_table(frame: pl.DataFrame, rows: int = PREVIEW_ROWS, columns: list[str] | None = None) -> dg.MetadataValue:
    """A small Markdown table (the UI renders it) of the first rows, personal data masked (governance/privacy.py)."""
    frame = frame.select(columns) if columns else frame
    return dg.MetadataValue.md(_markdown(mask_frame(frame.head(rows))))


def records_table(records: list[dict], empty: str = "_no rows_") -> dg.MetadataValue:
    """Rows given as dicts (e.g. a check's failing examples, already redacted), every key a column."""
    return dg.MetadataValue.md(_markdown(records, max_cell=60, empty=empty))


def counts_table(counts: dict, label: str = "rule", value_label: str = "rows") -> dg.MetadataValue:
    """``label | value_label`` per entry (counts, or any values), numbers right-aligned."""
    return dg.MetadataValue.md(counts_markdown(counts, label, value_label))


def reasons_list(reasons: dict, empty: str = "_none_") -> dg.MetadataValue:
    """``- **name**: reason`` per entry: whole sentences, which a table column would squeeze or cut."""
    return dg.MetadataValue.md("\n".join(f"- **{k}**: {v}" for k, v in reasons.items()) or empty)


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
