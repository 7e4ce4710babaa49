"""What runs the lifecycle: a job per stage step (the runs page reads as the lifecycle), the end-to-end
daily and snapshot jobs, a sensor on the landing zone and a nightly schedule."""

from __future__ import annotations

import dagster as dg

from assets.resources import WarehouseResource
from governance import landing_watch
from governance.contracts import CONTRACTS

DAILY_SOURCES = [c.name for c in CONTRACTS.values() if c.partitioned]
SNAPSHOT_SOURCES = [c.name for c in CONTRACTS.values() if not c.partitioned]
#: the lifecycle stages (asset groups) in the order data flows through them; the report comes last so it
#: tells what every stage's checks found
STAGE_ORDER = ("collection", "cleaning", "labelling", "integration", "recommendation", "search", "experiments",
               "quality")


def stage_steps(graph, group: str) -> dict[str, list[dg.AssetKey]]:
    """A stage's materializable assets by step — ``inputs`` (snapshots its days need), ``daily``, ``rollups``
    (snapshots built from its days) — empty steps left out, each list in key order."""
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name == group and graph.get(k).is_materializable]
    days = {k for k in keys if graph.get(k).partitions_def is not None}
    snapshots = [k for k in keys if k not in days]
    rollups = {k for k in snapshots if days & set(graph.get_ancestor_asset_keys(k))}
    order = lambda ks: sorted(ks, key=lambda k: k.to_user_string())  # noqa: E731
    steps = {"inputs": order(k for k in snapshots if k not in rollups), "daily": order(days), "rollups": order(rollups)}
    return {step: ks for step, ks in steps.items() if ks}


def step_job_name(group: str, step: str) -> str:
    return f"{group}_{step}"


def lifecycle_jobs(stages: dg.Definitions, daily: dg.PartitionsDefinition) -> list:
    """One job per stage step, tagged with its stage, and the end-to-end `daily_lifecycle` and `snapshots`."""
    graph = stages.resolve_asset_graph()
    groups = sorted({graph.get(k).group_name for k in graph.get_all_asset_keys() if graph.get(k).is_materializable},
                    key=lambda g: (STAGE_ORDER.index(g) if g in STAGE_ORDER else len(STAGE_ORDER), g))
    jobs = []
    for group in groups:
        for step, keys in stage_steps(graph, group).items():
            selection = dg.AssetSelection.assets(*keys)
            jobs.append(dg.define_asset_job(
                step_job_name(group, step), selection=selection, partitions_def=daily if step == "daily" else None,
                tags={"stage": group, "step": step},
                description=f"Stage {group}: {'one day of ' if step == 'daily' else ''}"
                            f"{', '.join(k.to_user_string() for k in keys)} with their checks."))
    all_keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    daily_keys = [k for k in all_keys if graph.get(k).partitions_def is not None]
    snapshot_keys = [k for k in all_keys if graph.get(k).partitions_def is None]
    jobs.append(dg.define_asset_job(
        "daily_lifecycle", selection=dg.AssetSelection.assets(*daily_keys), partitions_def=daily,
        tags={"stage": "lifecycle"},
        description="One day end to end: landing → raw → clean → labelled → integrated, with every check."))
    jobs.append(dg.define_asset_job(
        "snapshots", selection=dg.AssetSelection.assets(*snapshot_keys), tags={"stage": "snapshots"},
        description="Every snapshot asset: catalog and users, models, profiles, the audit queue and the report."))
    return jobs


def landing_zone_sensor(daily: dg.PartitionsDefinition, daily_job, snapshot_job,
                        interval_seconds: int = 60) -> dg.SensorDefinition:
    """The landing zone, watched: ``governance.landing_watch.advance`` decides, this only logs and requests."""

    @dg.sensor(jobs=[daily_job, snapshot_job], minimum_interval_seconds=interval_seconds,
               description="Watches the landing zone: a new or changed day of files (unchanged over two ticks, so "
                           "a file still being written waits) runs that day's partition end to end; new catalog or "
                           "user files refresh the snapshots. Run keys are content digests, the cursor is durable: "
                           "the same bytes landed again run nothing. Bad paths are skipped with a logged reason. "
                           "Turn it on in the UI (Automation → landing_zone_sensor) or with "
                           "`dagster sensor start landing_zone_sensor`.")
    def landing_zone_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        tick = landing_watch.advance(context.cursor, warehouse.landing, DAILY_SOURCES, SNAPSHOT_SOURCES,
                                     set(daily.get_partition_keys()))
        for skipped in tick.skipped:
            context.log.warning(f"landing zone: skipped {skipped.path}: {skipped.reason}")
        for scope in tick.waiting:
            context.log.info(f"landing zone: {scope} changed since the last tick; taken once it holds still")
        for scope in tick.unchanged_content:
            context.log.info(f"landing zone: {scope} re-landed with the same content; nothing to run")
        requests = [dg.RunRequest(run_key=key, job_name=snapshot_job.name, tags={"landing/scope": scope})
                    if scope == landing_watch.SNAPSHOTS else
                    dg.RunRequest(run_key=key, partition_key=scope, job_name=daily_job.name,
                                  tags={"landing/scope": scope})
                    for scope, key in tick.runs]
        return dg.SensorResult(run_requests=requests, cursor=tick.cursor)

    return landing_zone_sensor


def stage_definitions(daily: dg.PartitionsDefinition, stages: dg.Definitions, settings=None) -> dg.Definitions:
    """Jobs over the merged stages, the landing-zone sensor and the nightly schedule."""
    jobs = lifecycle_jobs(stages, daily)
    daily_job = next(j for j in jobs if j.name == "daily_lifecycle")
    snapshot_job = next(j for j in jobs if j.name == "snapshots")
    nightly = dg.build_schedule_from_partitioned_job(
        daily_job, hour_of_day=2, name="nightly_lifecycle",
        description="Every night at 02:00 UTC: yesterday's partition end to end. Turn it on in the UI "
                    "(Automation → nightly_lifecycle) or with `dagster schedule start nightly_lifecycle`.")
    return dg.Definitions(jobs=jobs, sensors=[landing_zone_sensor(daily, daily_job, snapshot_job,
                                                                      settings.sensor_interval if settings else 60)],
                          schedules=[nightly])
