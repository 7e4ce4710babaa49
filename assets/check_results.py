"""A Python check's verdict, both where Dagster shows it and in the quality store the report reads.

GX suites record their results through ``run_quality``; every other check (cleaning's conservation,
integration's reconciliation, structure and reference checks, the warning findings) returns through
:func:`check_result`, so the report counts exactly the failures the runs showed.
"""

from __future__ import annotations

import dagster as dg

from assets.resources import QualityStoreResource
from governance.quality.results import record_check_result


def check_result(context: dg.AssetCheckExecutionContext, quality_store: QualityStoreResource, *, passed: bool,
                 blocking: bool, description: str, metadata: dict, check_name: str | None = None,
                 figures: dict | None = None, examples=None, unexpected_count: int | None = None,
                 element_count: int | None = None) -> dg.AssetCheckResult:
    """The check's result for Dagster, recorded under the same table, partition and name in the store."""
    spec = next(s for s in context.check_specs if check_name is None or s.name == check_name)
    partition = context.partition_key if context.has_partition_key else None
    stage = context.job_def.tags.get("stage") if context.job_def.tags else None
    record_check_result(quality_store.store, ".".join(spec.asset_key.path), partition, spec.name, passed,
                        "error" if blocking else "warn", description=description, figures=figures,
                        examples=examples, unexpected_count=unexpected_count, element_count=element_count,
                        stage=stage, run_id=context.run.run_id)
    return dg.AssetCheckResult(asset_key=spec.asset_key, check_name=spec.name, passed=passed,
                               severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
                               description=description, metadata=metadata)
