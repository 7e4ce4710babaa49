"""Instance plumbing for ``dagster.yaml``: a run launcher whose run workers the monitor can see.

Dagster's run monitoring marks a crashed run failed only when the run launcher can tell whether
the run's worker still lives; the default launcher cannot, so a run worker killed by SIGKILL or
the OOM killer left its run ``STARTED`` for ever, holding a run-queue slot (two of them stopped
every sensor and schedule). :class:`LocalRunLauncher` is the default launcher plus that check, for
a deployment whose daemon runs on the machine of its run workers (``make dev``): the run worker's
pid comes from the run's "Started process for run" engine event, and the worker is alive when that
pid is alive, not a zombie, and started no later than the event (not a recycled pid). Runs executed
in process (``make demo``) record no worker pid; the instance's ``max_runtime_seconds`` bounds them.
"""

from __future__ import annotations

import os
import time

from dagster import DagsterEventType
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import DagsterRun


def _process_started_at(pid: int) -> float | None:
    """When a live, non-zombie process started (epoch seconds); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    except (OSError, StopIteration, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0  # alive; no /proc to tell when it started
    if fields[0] in ("Z", "X"):  # a killed worker its parent has not reaped yet
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def run_worker_pid(instance, run_id: str) -> tuple[int, float] | None:
    """The pid the run's worker reported ("Started process for run") and when it reported it."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or not (event.message or entry.user_message or "").startswith("Started process for run"):
            continue
        pid = getattr(event.event_specific_data, "metadata", {}).get("pid")
        if pid is not None:
            return int(getattr(pid, "text", pid)), float(entry.timestamp)
    return None


class LocalRunLauncher(DefaultRunLauncher):
    """The default run launcher, plus a run-worker health check for run monitoring (same machine)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        found = run_worker_pid(self._instance, run.run_id)
        if found is None:  # not launched through this launcher (an in-process run): max_runtime_seconds covers it
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid recorded (in-process run)")
        pid, reported_at = found
        started = _process_started_at(pid)
        if started is None:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)")
        if started > reported_at + 5:
            return CheckRunHealthResult(WorkerStatus.FAILED,
                                        f"run worker process {pid} is gone (the pid now belongs to another process)")
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid} is alive at {time.time():.0f}")
