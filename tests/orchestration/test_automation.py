"""Automation attached centrally (``assets.automation.govern``): the nightly schedule runs yesterday,
roll-ups follow their inputs by declarative automation, the analysts' tables carry freshness
policies, transient failures are retried and data errors are not, and no two runs write one
snapshot (pools) or one partition (the run queue's tag limit)."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from assets.automation import AFTER_INPUTS, FRESHNESS, govern, retry_transient
from assets.definitions import build_definitions
from governance.transient import is_transient

ROOT = Path(__file__).resolve().parents[2]
DAYS = ["2026-10-01", "2026-10-02"]


@pytest.fixture(scope="module")
def shop(landed_shop) -> Path:
    return landed_shop("automation_shop", n_events=2_000, days=len(DAYS), seed=4, end_date=date(2026, 10, 2))


@pytest.fixture(scope="module")
def defs(shop) -> dg.Definitions:
    return build_definitions(data_root=str(shop), demo="1")


def tick(defs, schedule_name: str, when: datetime):
    with dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def()) as context:
        return defs.get_schedule_def(schedule_name).evaluate_tick(context)


def test_the_nightly_schedule_runs_yesterday_even_when_a_later_day_landed(defs, shop):
    schedule = defs.get_schedule_def("nightly_lifecycle")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.job_name == "daily_lifecycle"
    [request] = tick(defs, "nightly_lifecycle", datetime(2026, 10, 2, 2, 0, tzinfo=UTC)).run_requests
    assert request.partition_key == "2026-10-01" and request.run_key == "nightly:2026-10-01"
    result = tick(defs, "nightly_lifecycle", datetime(2026, 10, 1, 2, 0, tzinfo=UTC))  # 30 Sep: before the data
    assert not result.run_requests and "not a daily partition" in result.skip_message
    # a file dated in the future: the partitions reach that day, the schedule still runs yesterday
    future = shop / "landing" / "events" / "2027-01-10"
    future.mkdir()
    (future / "early.csv").write_text("event_id,session_id,user_id,item_id,event_type,event_time\n")
    try:
        later = build_definitions(data_root=str(shop), demo="1")
        assert later.resolve_job_def("daily_lifecycle").partitions_def.get_last_partition_key() == "2027-01-10"
        [request] = tick(later, "nightly_lifecycle", datetime(2026, 12, 4, 2, 0, tzinfo=UTC)).run_requests
        assert request.partition_key == "2026-12-03"
    finally:
        shutil.rmtree(future)


def test_roll_ups_follow_their_inputs_and_daily_partitions_are_left_to_the_sensor(defs):
    graph = defs.resolve_asset_graph()
    nodes = {k.to_user_string(): graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    for name in ("integrated/user_keys", "integrated/users", "integrated/products", "labelled/review_audit",
                 "models/sentiment", "reco/models", "search/index"):
        assert nodes[name].automation_condition == AFTER_INPUTS, name
    for name, node in nodes.items():
        if node.partitions_def is not None:
            assert node.automation_condition is None, name  # the sensor and the schedule run days, once
    assert nodes["quality/report"].automation_condition.get_label().startswith("on_cron(0 5 * * *")
    assert nodes["raw/products"].automation_condition is None  # landed snapshots come through the sensor


def test_an_updated_day_requests_its_roll_ups_and_nothing_else(defs):
    instance = dg.DagsterInstance.ephemeral()
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0  # nothing updated: nothing runs (no wall of first-tick requests)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["clean", "events"], partition=DAYS[0]))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    graph = defs.resolve_asset_graph()
    requested = {k.to_user_string() for k in graph.get_all_asset_keys() if result.get_num_requested(k)}
    # clean/events' roll-ups, and theirs in the same run (a dependency about to be requested counts as updated)
    assert {"integrated/user_keys", "models/intent", "integrated/users", "reco/models"} <= requested
    # nothing that does not depend on the day: not the experiments' logged bandit data, not the morning report
    assert not requested & {"experiments/off_policy", "reco/public_evaluation", "quality/report", "clean/products"}
    assert all(graph.get(dg.AssetKey.from_user_string(k)).partitions_def is None for k in requested)
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert again.total_requested == 0  # handled: not requested twice for one update


def test_the_tables_analysts_read_carry_a_freshness_policy(defs):
    graph = defs.resolve_asset_graph()
    fresh = {k.to_user_string() for k in graph.get_all_asset_keys()
             if graph.get(k).is_materializable and graph.get(k).freshness_policy == FRESHNESS}
    assert {"clean/events", "clean/reviews", "labelled/reviews", "integrated/interactions", "integrated/users",
            "quality/report", "reco/recommendations"} <= fresh
    assert not any(k.startswith("raw/") for k in fresh)  # landed data has no promise we can keep
    assert "clean/products" not in fresh  # a catalog snapshot changes only when a catalog lands


def test_transient_failures_are_retried_in_the_run_and_data_errors_are_not():
    attempts = {"io": 0, "data": 0}

    @dg.asset
    def flaky_io():
        attempts["io"] += 1
        if attempts["io"] < 3:
            raise OSError(errno.EIO, "Input/output error")
        return 1

    @dg.asset
    def bad_data():
        attempts["data"] += 1
        raise ValueError("price column holds text")

    governed = govern(dg.Definitions(assets=[flaky_io, bad_data]), retry_wait_seconds=0)
    ok = governed.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=[dg.AssetKey("flaky_io")], raise_on_error=False)
    assert ok.success and attempts["io"] == 3
    restarts = [e for e in ok.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]
    assert len(restarts) == 2
    failed = governed.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=[dg.AssetKey("bad_data")], raise_on_error=False)
    assert not failed.success and attempts["data"] == 1  # failed once, not retried
    assert not [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]


def test_which_errors_are_transient():
    assert is_transient(OSError(errno.EAGAIN, "Resource temporarily unavailable"))
    assert is_transient(BlockingIOError(errno.EWOULDBLOCK, "locked"))
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert is_transient(TimeoutError("lake lock"))
    try:
        try:
            raise ConnectionResetError(errno.ECONNRESET, "reset")
        except ConnectionResetError as inner:
            raise RuntimeError("writing the partition failed") from inner
    except RuntimeError as wrapped:
        assert is_transient(wrapped)  # the cause decides
    for data_error in (ValueError("bad value"), KeyError("column"), FileNotFoundError(errno.ENOENT, "gone"),
                       PermissionError(errno.EACCES, "denied"), sqlite3.OperationalError("no such table: x")):
        assert not is_transient(data_error), data_error
    once = retry_transient(lambda: 1)
    assert retry_transient(once) is once  # wrapping twice (definitions built twice) adds no second layer


def test_every_asset_retries_transient_errors_and_snapshots_have_a_pool_of_their_own(defs):
    ops = {}
    for assets_def in defs.assets:
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.is_executable:
            ops[assets_def.op.name] = assets_def
            assert getattr(assets_def.op.compute_fn.decorated_fn, "__retries_transient__", False), assets_def.op.name
    pools = {name: a.op.pool for name, a in ops.items()}
    for name, a in ops.items():
        if a.partitions_def is None:
            assert pools[name] == f"snapshot_{name}"
        else:
            assert pools[name] is None  # days run side by side; one run per day comes from the run queue
    assert len({p for p in pools.values() if p}) == sum(1 for a in ops.values() if a.partitions_def is None)


def test_the_instance_enforces_pools_per_run_and_one_run_per_partition(tmp_path):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.pool_config.pool_granularity.value == "run"
        assert config.run_queue_config.should_block_op_concurrency_limited_runs
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True},
                "limit": 1} in config.run_queue_config.tag_concurrency_limits
        assert instance.get_settings("freshness") == {"enabled": True}


def test_a_process_without_a_main_file_survives_loading_the_code_location():
    """Run workers and spawned step processes have a ``__main__`` with neither spec nor file; with pyspark
    installed without its Spark Connect packages (the ``spark`` extra's ``pyspark[connect]``), GX's import of
    it used to ``sys.exit(0)`` there before any step ran."""
    import subprocess
    import sys

    code = ("import assets.definitions, great_expectations, sys; "
            "print('alive', hasattr(sys.modules['__main__'], '__file__'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "alive False" in out.stdout, out.stderr[-2000:]


def test_launched_runs_use_a_process_per_step_unless_the_settings_say_in_process(shop):
    from governance.settings import SettingsError

    assert build_definitions(data_root=str(shop), demo="1").resolve_job_def(
        "daily_lifecycle").executor_def.name == "multiprocess_forkserver"
    assert build_definitions(data_root=str(shop), demo="1", executor="in_process").resolve_job_def(
        "daily_lifecycle").executor_def.name == "in_process"
    with pytest.raises(SettingsError, match="executor must be one of"):
        build_definitions(data_root=str(shop), executor="celery")
