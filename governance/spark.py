"""The Apache Spark session the heavy stages run on when ``Settings.engine`` is ``"spark"``.

Only the master URL is a setting (``spark_master`` / ``GOVERNANCE_SPARK_MASTER``); everything else a
cluster needs (executor memory and cores, the Python on the executors, Kubernetes images, object
storage credentials) is Spark's own configuration: ``$SPARK_CONF_DIR/spark-defaults.conf`` or
``PYSPARK_SUBMIT_ARGS``, read by Spark as usual. pyspark is an optional dependency (extra ``spark``):
it is imported only when a Spark session is asked for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

#: what every session needs for the engine's results to equal the Polars engine's: timestamps cross
#: Spark ↔ Arrow in UTC (the contracts' time zone) and Arrow moves the rows to the Python workers
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
#: defaults for a local master (a single machine: the driver is the only executor); any of them can be
#: overridden by ``conf`` or spark-defaults.conf
LOCAL_DEFAULTS = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def session(master: str = "local[2]", conf: Mapping[str, str] | None = None, app_name: str = "governance"):
    """A SparkSession at ``master`` (the running one when this process already has it).

    With a local master the Python workers are this interpreter (so they import the same
    ``governance`` and Polars); on a cluster the executors' Python must have the ``governance``
    package installed (``spark.pyspark.python`` / the executor image)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError("engine 'spark' needs pyspark: pip install 'governance[spark]'") from exc

    if is_local(master):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {**(LOCAL_DEFAULTS if is_local(master) else {}), **(conf or {}), **REQUIRED_CONF}
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in REQUIRED_CONF.items():  # a session that already ran keeps its conf: set the SQL ones
        spark.conf.set(key, value)
    return spark


def settings_session(settings, conf: Mapping[str, str] | None = None):
    """The session for a deployment's settings (``spark_master``)."""
    return session(settings.spark_master, conf)
