"""Conservation of rows between layers, computed from what is on disk (not from in-memory counts)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from governance.storage import Lake


@dataclass(frozen=True)
class Conservation:
    rows_in: int
    rows_clean: int
    rows_quarantined: int

    @property
    def holds(self) -> bool:
        return self.rows_in == self.rows_clean + self.rows_quarantined

    @property
    def difference(self) -> int:
        return self.rows_in - self.rows_clean - self.rows_quarantined


def _count(lake: Lake, layer: str, table: str, partition: str | None, part: str = "data") -> int:
    path = lake.part_path(layer, table, partition, part)
    if not path.exists():
        raise FileNotFoundError(f"{layer}.{table} part {part!r} of {partition or 'snapshot'} is missing: {path}")
    return pl.scan_parquet(path).select(pl.len()).collect().item()


def cleaning_conservation(lake: Lake, source: str, partition: str | None) -> Conservation:
    """raw rows of the partition = clean rows + rows the cleaning stage quarantined."""
    return Conservation(
        rows_in=_count(lake, "raw", source, partition),
        rows_clean=_count(lake, "clean", source, partition),
        rows_quarantined=_count(lake, "quarantine", source, partition, part="cleaning"),
    )
