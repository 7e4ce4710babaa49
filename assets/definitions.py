"""The code location: every lifecycle stage's definitions, merged, over resources built from the settings.

Loaded lazily (``@dg.definitions``): the settings — and the daily partitions, which follow the days
that landed — are read when the code location loads, never at import.
"""

import dagster as dg

from assets import automation, cleaning, collection, experiments, integration, labelling, quality, recommendation, search  # noqa: E501
from assets.partitions import daily_partitions
from assets.resources import governance_resources
from governance.settings import Settings

#: the lifecycle stages in the order data flows through them; each module's ``stage_definitions(daily, settings)``
STAGES = (collection, cleaning, labelling, integration, quality, recommendation, search, experiments)


def build_definitions(**overrides) -> dg.Definitions:
    """Every stage's assets and checks, the jobs, sensors and schedules, and the resources.

    ``overrides`` are settings (``Settings.load``'s names, e.g. ``data_root``): they fix the daily
    partitions and configure every resource, so a test names its data root once.
    """
    settings = Settings.load(**overrides)
    daily = daily_partitions(settings)
    stages = automation.govern(dg.Definitions.merge(*(stage.stage_definitions(daily, settings) for stage in STAGES),
                                                    dg.Definitions(resources=governance_resources(**overrides))))
    return dg.Definitions.merge(stages, automation.stage_definitions(daily, stages, settings),
                                dg.Definitions(executor=automation.executor(settings)))


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
