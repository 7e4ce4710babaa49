"""The daily partitioning shared by every time-based asset, built from the settings at load time."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from governance.calendar import partition_bounds
from governance.settings import Settings


def daily_partitions(settings: Settings, today=None) -> dg.DailyPartitionsDefinition:
    """One partition per day from the first landed day (or ``partition_start``) to the last complete one."""
    today = today or datetime.now(UTC).date()
    first, last = partition_bounds(settings.landing_root, settings.partition_start, today, settings.lake())
    return dg.DailyPartitionsDefinition(start_date=first.isoformat(), end_offset=(last - today).days + 1)
