"""The code location: gathers every stage's assets, checks, resources, sensors and schedules."""

import dagster as dg

from assets.automation import automation
from assets.cleaning import clean_assets, clean_checks
from assets.collection import raw_assets
from assets.integration import integration_assets, integration_checks
from assets.labelling import labelling_assets
from assets.partitions import daily
from assets.quality import SUITES_DIR, QualityStoreResource, quality_assets, quality_checks, quality_sensors, suite_checks_for
from assets.resources import WarehouseResource
from governance.integration import DAILY_TABLES

#: the integrated tables' GX suites run the same way as the clean tables' suites
integrated_suite_checks = [
    suite_checks_for(["integrated", path.stem.split(".", 1)[1]], path.stem,
                     daily if path.stem.split(".", 1)[1] in DAILY_TABLES else None, path)
    for path in sorted(SUITES_DIR.glob("integrated.*.json"))
]
ASSETS = [*raw_assets, *clean_assets, *labelling_assets, *integration_assets, *quality_assets]
jobs, sensors, schedules = automation(ASSETS)

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=[*clean_checks, *integration_checks, *quality_checks, *integrated_suite_checks],
    jobs=jobs,
    sensors=[*sensors, *quality_sensors],
    schedules=schedules,
    resources={"warehouse": WarehouseResource(), "quality_store": QualityStoreResource()},
)
