"""The code location: every lifecycle stage's definitions, merged, over resources built from the settings.

Loaded lazily (``@dg.definitions``): the settings — and the daily partitions, which follow the days
that landed — are read when the code location loads, never at import.
"""

import importlib.util
import sys

import dagster as dg


def _import_pyspark_outside_doctest_mode() -> None:
    """Import pyspark's connect utilities once with ``__main__`` looking like a script.

    Great Expectations imports pyspark when it is installed, and ``pyspark.sql.connect.utils`` calls
    ``sys.exit(0)`` at import in a process whose ``__main__`` has neither a spec nor a file (it takes
    that for a doctest run) while an optional Spark Connect dependency (googleapis-common-protos,
    grpcio-status) is missing. Run workers and step processes started by ``spawn`` from ``python -m
    dagster …`` are such processes: they died with exit code 0 before running anything. GX's shim,
    imported here once with ``__main__`` given a file, records that Spark Connect is unavailable and is
    cached, so the check never runs again in this process.
    """
    main = sys.modules.get("__main__")
    if (main is None or getattr(main, "__spec__", None) is not None or hasattr(main, "__file__")
            or hasattr(sys, "ps1") or "pyspark.sql.connect.utils" in sys.modules
            or importlib.util.find_spec("pyspark") is None):
        return
    main.__file__ = "<dagster process>"
    try:  # GX's shim tries pyspark's connect modules, gives up on the missing dependency and is cached as is
        import great_expectations.compatibility.pyspark  # noqa: F401
    except Exception:  # noqa: BLE001 - then GX does without pyspark
        pass
    finally:
        del main.__file__


_import_pyspark_outside_doctest_mode()

from assets import automation, cleaning, collection, experiments, integration, labelling, quality, recommendation, search  # noqa: E402,E501
from assets.partitions import daily_partitions  # noqa: E402
from assets.resources import governance_resources  # noqa: E402
from governance.settings import Settings  # noqa: E402

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
