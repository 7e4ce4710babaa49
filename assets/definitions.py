"""The code location: gathers every stage's assets, checks, resources, sensors and schedules."""

import dagster as dg

from assets.automation import jobs, schedules, sensors
from assets.cleaning import clean_assets, clean_checks
from assets.collection import raw_assets
from assets.resources import WarehouseResource

defs = dg.Definitions(
    assets=[*raw_assets, *clean_assets],
    asset_checks=[*clean_checks],
    jobs=jobs,
    sensors=sensors,
    schedules=schedules,
    resources={"warehouse": WarehouseResource()},
)
