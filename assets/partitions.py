"""The daily partitioning shared by every time-based asset."""

from __future__ import annotations

import os

import dagster as dg

#: First day the shop's partitions cover; configurable for other shops' history.
PARTITION_START = os.environ.get("GOVERNANCE_PARTITION_START", "2026-10-01")

daily = dg.DailyPartitionsDefinition(start_date=PARTITION_START, end_offset=1)
