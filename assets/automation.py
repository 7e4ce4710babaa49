"""What runs the lifecycle: a job per stage step (the runs page reads as the lifecycle), the end-to-end
daily and snapshot jobs, a sensor on the landing zone and a nightly schedule."""

from __future__ import annotations

import functools
import inspect
from datetime import timedelta

import dagster as dg

from assets.resources import WarehouseResource
from governance import landing_watch
from governance.transient import is_transient
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
                           "the command: dagster sensor start landing_zone_sensor")
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


#: launched runs (``dagster dev``, the daemon) execute each step in its own process, forked from a server
#: that imported the code location and the heavy libraries once per run: "spawn" made every step import
#: them again (measured on 2 cores at load 7-8: a day of collection 166 s → 68 s, of cleaning 348 s → 71 s).
#: The forkserver's ``python -c`` process used to die in GX's import of pyspark (``sys.exit(0)`` in a
#: ``__main__`` without a file); the ``spark`` extra's ``pyspark[connect]`` removed that cause.
PRELOADED = ("assets.definitions", "polars", "pyarrow", "duckdb", "great_expectations", "torch")
EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": list(PRELOADED)}}}, name="multiprocess_forkserver")


def executor(settings) -> dg.ExecutorDefinition:
    """The executor of launched runs: :data:`EXECUTOR`, or every step in the run worker (setting ``executor``:
    ``in_process`` — one process per run instead of one per step; what a small machine or a test wants)."""
    return dg.in_process_executor if settings.executor == "in_process" else EXECUTOR

#: the tables analysts read: a materialization is expected between 06:00 UTC yesterday and 06:00 UTC today
#: (the nightly schedule runs at 02:00; days landed during the day come in through the sensor)
ANALYST_LAYERS = ("clean", "labelled", "integrated")
ANALYST_TABLES = ("quality/report", "reco/recommendations", "search/index")
FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=24))
#: a snapshot built from days (a roll-up: user keys, integrated users and products, models, indexes) follows
#: its inputs: once any of them updated since it last ran, and none is still being written
AFTER_INPUTS = (dg.AutomationCondition.any_deps_updated().since_last_handled()
                & ~dg.AutomationCondition.any_deps_in_progress()
                & ~dg.AutomationCondition.in_progress()).with_label("after its inputs update")
#: assets with no inputs in the graph (the report reads every check result): each morning after the nightly run
MORNING = dg.AutomationCondition.on_cron("0 5 * * *")
#: a transient failure (I/O, a locked file or database) is retried in the run, up to this many times
TRANSIENT_RETRIES = 3
TRANSIENT_WAIT_SECONDS = 5


def analyst_table(key: dg.AssetKey) -> bool:
    return key.path[0] in ANALYST_LAYERS or key.to_user_string() in ANALYST_TABLES


def rollups(graph) -> set[dg.AssetKey]:
    """Snapshot (unpartitioned) assets downstream of a daily asset: they follow their inputs."""
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    daily = {k for k in keys if graph.get(k).partitions_def is not None}
    return {k for k in keys if k not in daily and daily & set(graph.get_ancestor_asset_keys(k))}


def retry_transient(fn, wait_seconds: float | None = None):
    """The asset body, with a transient failure turned into a retry of the step (``dg.RetryRequested``);
    any other exception (a data error) fails the step at once, without retries."""
    if getattr(fn, "__retries_transient__", False) or inspect.iscoroutinefunction(fn):
        return fn
    wait_seconds = TRANSIENT_WAIT_SECONDS if wait_seconds is None else wait_seconds

    def retry(exc: BaseException):
        if is_transient(exc):
            return dg.RetryRequested(max_retries=TRANSIENT_RETRIES, seconds_to_wait=wait_seconds)
        return None

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                request = retry(exc)
                if request is None:
                    raise
                raise request from exc
    else:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                request = retry(exc)
                if request is None:
                    raise
                raise request from exc
    wrapped.__retries_transient__ = True
    return wrapped


def snapshot_pool(op_name: str) -> str:
    return f"snapshot_{op_name}"


def govern(stages: dg.Definitions, retry_wait_seconds: float | None = None) -> dg.Definitions:
    """Automation, freshness, retries and pools, attached to every stage's assets in one place.

    * analyst tables (``clean/``, ``labelled/``, ``integrated/``, the report, recommendations, the search
      index) carry :data:`FRESHNESS` (the UI's asset health shows it; ``freshness: enabled`` in dagster.yaml);
    * roll-ups follow their inputs by declarative automation (:data:`AFTER_INPUTS`), assets with no graph
      inputs run each morning (:data:`MORNING`); the daily partitions are driven by the landing-zone sensor
      and the nightly schedule, so they carry no condition (a day would otherwise run twice);
    * every asset op retries transient failures (:func:`retry_transient`) and nothing else;
    * every op writing an unpartitioned asset gets a pool of its own (``snapshot_<op>``, limit 1 from
      ``concurrency.pools.default_limit``): two runs never write one snapshot at once; runs of one
      partition are kept apart by the run queue's ``dagster/partition`` limit.
    """
    graph = stages.resolve_asset_graph()
    follow = rollups(graph)

    def spec(s: dg.AssetSpec) -> dg.AssetSpec:
        changes = {}
        if s.key in follow:
            changes["automation_condition"] = AFTER_INPUTS
        elif s.partitions_def is None and not graph.get(s.key).parent_keys and s.key.to_user_string() in ANALYST_TABLES:
            changes["automation_condition"] = MORNING
        # expected fresh each morning: analyst tables that the nightly run or automation updates every day (a
        # catalog snapshot changes only when a catalog lands, so it has no such promise)
        if analyst_table(s.key) and (s.partitions_def is not None or "automation_condition" in changes):
            changes["freshness_policy"] = FRESHNESS
        return s.replace_attributes(**changes) if changes else s

    governed = stages.map_asset_specs(func=spec)
    for assets_def in governed.assets or []:
        if not isinstance(assets_def, dg.AssetsDefinition) or not assets_def.is_executable:
            continue
        op = assets_def.op
        compute = op.compute_fn
        if hasattr(compute, "decorated_fn"):  # Dagster has no public way to wrap a built op's body
            op._compute_fn = compute._replace(decorated_fn=retry_transient(compute.decorated_fn, retry_wait_seconds))
        if assets_def.partitions_def is None and op.pool is None:
            op._pool = snapshot_pool(op.name)
    return governed


def nightly_schedule(daily: dg.PartitionsDefinition, daily_job) -> dg.ScheduleDefinition:
    """02:00 UTC: yesterday's partition end to end — always yesterday, even when a file dated later landed
    (the partitions then reach past yesterday and "the latest partition" would be that later day)."""

    @dg.schedule(cron_schedule="0 2 * * *", job=daily_job, execution_timezone="UTC", name="nightly_lifecycle",
                 description="Every night at 02:00 UTC: yesterday's partition end to end. Turn it on in the UI "
                             "(Automation → nightly_lifecycle) or with the command: dagster schedule start nightly_lifecycle")
    def nightly_lifecycle(context: dg.ScheduleEvaluationContext):
        day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        if not daily.has_partition_key(day):
            return dg.SkipReason(f"{day} is not a daily partition (before the first landed day)")
        return dg.RunRequest(run_key=f"nightly:{day}", partition_key=day, tags={"landing/scope": day})

    return nightly_lifecycle


def stage_definitions(daily: dg.PartitionsDefinition, stages: dg.Definitions, settings=None) -> dg.Definitions:
    """Jobs over the merged stages, the landing-zone sensor and the nightly schedule."""
    jobs = lifecycle_jobs(stages, daily)
    daily_job = next(j for j in jobs if j.name == "daily_lifecycle")
    snapshot_job = next(j for j in jobs if j.name == "snapshots")
    nightly = nightly_schedule(daily, daily_job)
    return dg.Definitions(jobs=jobs, sensors=[landing_zone_sensor(daily, daily_job, snapshot_job,
                                                                      settings.sensor_interval if settings else 60)],
                          schedules=[nightly])
