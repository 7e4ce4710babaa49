"""The code location: gathers every stage's assets, checks, resources, sensors and schedules."""

from __future__ import annotations

import dagster as dg

from assets.collection import raw_assets
from assets.resources import WarehouseResource

defs = dg.Definitions(
    assets=[*raw_assets],
    resources={"warehouse": WarehouseResource()},
)
