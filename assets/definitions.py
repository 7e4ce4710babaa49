"""The code location: gathers every stage's assets, checks, resources, sensors and schedules."""

import dagster as dg

from assets.automation import automation
from assets.cleaning import clean_assets, clean_checks
from assets.collection import raw_assets
from assets.integration import integration_assets, integration_checks
from assets.labelling import labelling_assets
from assets.quality import QualityStoreResource, quality_assets, quality_checks, quality_sensors
from assets.resources import WarehouseResource

ASSETS = [*raw_assets, *clean_assets, *labelling_assets, *integration_assets, *quality_assets]
jobs, sensors, schedules = automation(ASSETS)

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=[*clean_checks, *integration_checks, *quality_checks],
    jobs=jobs,
    sensors=[*sensors, *quality_sensors],
    schedules=schedules,
    resources={"warehouse": WarehouseResource(), "quality_store": QualityStoreResource()},
)
