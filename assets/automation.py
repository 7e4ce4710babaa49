"""What runs the lifecycle unattended: jobs, a sensor on the landing zone, a daily schedule."""

import json

import dagster as dg

from assets.partitions import daily
from assets.resources import WarehouseResource
from governance.collection import landed_files, landed_partitions
from governance.contracts import CONTRACTS

DAILY_SOURCES = [c.name for c in CONTRACTS.values() if c.partitioned]
SNAPSHOT_SOURCES = [c.name for c in CONTRACTS.values() if not c.partitioned]

def lifecycle_jobs(assets: list[dg.AssetsDefinition]) -> tuple:
    """A job for one day of every daily-partitioned asset, and one for every snapshot asset."""
    daily_keys = [k for a in assets if a.partitions_def == daily for k in a.keys]
    snapshot_keys = [k for a in assets if a.partitions_def is None for k in a.keys]
    daily_job = dg.define_asset_job(
        "daily_lifecycle",
        selection=dg.AssetSelection.assets(*daily_keys),
        partitions_def=daily,
        description="One day end to end: landing → raw → clean → labelled → integrated, with every check.",
    )
    snapshot_job = dg.define_asset_job(
        "snapshots",
        selection=dg.AssetSelection.assets(*snapshot_keys),
        description="Every snapshot asset: catalog and users, models, profiles, the audit queue and the report.",
    )
    return daily_job, snapshot_job


def _fingerprint(warehouse: WarehouseResource, source: str, day: str | None) -> list[list]:
    return [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in landed_files(warehouse.landing, source, day)]


def automation(assets: list[dg.AssetsDefinition]) -> tuple[list, list, list]:
    """Jobs, sensors and schedules that run the lifecycle unattended."""
    daily_job, snapshot_job = lifecycle_jobs(assets)

    @dg.sensor(jobs=[daily_job, snapshot_job], minimum_interval_seconds=60,
               description="Watches data/landing: a new or changed file for a day runs that day's partition end to "
                           "end; new catalog or user files refresh the snapshots.")
    def landing_zone_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        seen = json.loads(context.cursor) if context.cursor else {}
        requests = []
        snapshot_state = {s: _fingerprint(warehouse, s, None) for s in SNAPSHOT_SOURCES}
        if snapshot_state != seen.get("snapshots"):
            requests.append(dg.RunRequest(run_key=f"snapshots:{hash(json.dumps(snapshot_state))}",
                                          job_name=snapshot_job.name))
            seen["snapshots"] = snapshot_state
        valid = set(daily.get_partition_keys())
        for day in sorted({d for s in DAILY_SOURCES for d in landed_partitions(warehouse.landing, s)}):
            if day not in valid:
                context.log.warning(f"landing folder {day} is outside the partitions ({daily.start:%Y-%m-%d} on)")
                continue
            state = {s: _fingerprint(warehouse, s, day) for s in DAILY_SOURCES}
            if state != seen.get(day):
                requests.append(dg.RunRequest(run_key=f"{day}:{hash(json.dumps(state))}", partition_key=day,
                                              job_name=daily_job.name))
                seen[day] = state
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen))

    nightly = dg.build_schedule_from_partitioned_job(
        daily_job, hour_of_day=2, description="Every night at 02:00 UTC: yesterday's partition end to end.")
    return [daily_job, snapshot_job], [landing_zone_sensor], [nightly]
