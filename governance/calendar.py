"""Which days the daily partitions cover: the days the data landed on, not a fixed calendar.

A fixed start date shows a wall of "missing" partitions before the first landed day and hides a
backfill of older exports. Here the range starts at the first day any time-based source landed or
holds in the lake (or ``Settings.partition_start`` when set) and ends with the later of yesterday and the last
landed day, so a demo that lands seven days shows seven partitions, and last year's export is
covered as soon as it lands (Dagster picks the new range up when the code location reloads).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from governance.contracts import CONTRACTS


def landed_days(landing_root: Path) -> list[date]:
    """Every valid YYYY-MM-DD folder under the time-based sources' landing folders, sorted."""
    days: set[date] = set()
    for contract in CONTRACTS.values():
        base = Path(landing_root) / contract.name
        if not contract.partitioned or not base.is_dir():
            continue
        for folder in base.glob("????-??-??"):
            try:
                days.add(date.fromisoformat(folder.name))
            except ValueError:
                continue  # an impossible date such as 2026-02-30 is not a partition (the sensor reports it)
    return sorted(days)


def lake_days(lake) -> list[date]:
    """Every day a time-based source already has in the lake's raw or clean layer (landing may be emptied)."""
    days: set[date] = set()
    for contract in CONTRACTS.values():
        if contract.partitioned:
            for layer in ("raw", "clean"):
                days.update(date.fromisoformat(p) for p in lake.partitions(layer, contract.name))
    return sorted(days)


def partition_bounds(landing_root: Path, start: date | None, today: date, lake=None) -> tuple[date, date]:
    """(first day, last day) of the daily partitions, both inclusive: landed days and days in the lake."""
    days = sorted(set(landed_days(landing_root)) | set(lake_days(lake) if lake is not None else []))
    yesterday = today - timedelta(days=1)
    first = start or (days[0] if days else yesterday)
    last = max([yesterday, *days[-1:]])
    return min(first, last), last
