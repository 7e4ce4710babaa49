"""The instance heals: a run whose worker was killed is marked failed by run monitoring, runs of one
partition are queued one at a time, and a crashed run is retried once."""

import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from assets.instance import LocalRunLauncher

ROOT = Path(__file__).resolve().parents[2]


@dg.op
def noop():
    return 1


@dg.job
def tiny():
    noop()


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as inst:
        yield inst


def test_the_project_instance_monitors_runs_and_limits_one_run_per_partition(instance):
    assert isinstance(instance.run_launcher, LocalRunLauncher) and instance.run_launcher.supports_check_run_worker_health
    assert instance.run_monitoring_enabled and instance.run_monitoring_settings["poll_interval_seconds"] <= 60
    assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1
    assert not instance.run_retries_retry_on_asset_or_op_failure  # only crashes are retried, not failed checks
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def _started_run(instance, pid: int):
    run = instance.create_run_for_job(tiny)
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    instance.handle_new_event(dg.EventLogEntry(
        error_info=None, level=logging.DEBUG, user_message="", run_id=run.run_id, timestamp=time.time(),
        dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name)))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    return run


def test_a_run_whose_worker_was_killed_is_marked_failed_by_the_monitor(instance):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run = _started_run(instance, worker.pid)
        log = logging.getLogger("test-monitor")
        record = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))[0]
        monitor_started_run(instance, None, record, log)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # alive: left alone
        worker.send_signal(signal.SIGKILL)
        time.sleep(0.2)  # not reaped yet: a zombie counts as dead
        record = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))[0]
        monitor_started_run(instance, None, record, log)
        failed = instance.get_run_by_id(run.run_id)
        assert failed.status == dg.DagsterRunStatus.FAILURE
    finally:
        worker.kill()
        worker.wait()


def test_an_in_process_run_without_a_worker_pid_is_not_failed(instance):
    run = instance.create_run_for_job(tiny)
    instance.handle_new_event(dg.EventLogEntry(
        error_info=None, level=logging.DEBUG, user_message="", run_id=run.run_id, timestamp=time.time(),
        dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name)))
    record = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))[0]
    monitor_started_run(instance, None, record, logging.getLogger("test-monitor"))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
