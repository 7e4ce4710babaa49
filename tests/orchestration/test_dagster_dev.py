"""End to end against a real ``dagster dev`` (webserver + daemon) on 127.0.0.1, asserted through
Dagster's GraphQL API: a new day landed runs once by itself, with its assets and checks
materialized; the same file landed again runs nothing; a restarted ``dagster dev`` runs nothing;
a late file re-runs its old day, and when that run's worker is SIGKILLed, run monitoring marks the
run failed and a retry run is launched (issue 17).

Bounded: every wait has its own timeout, and everything started is stopped in ``finally`` (the
``dagster dev`` process group, then any run worker left).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.automation import DAILY_SOURCES, SNAPSHOT_SOURCES
from assets.definitions import build_definitions
from assets.instance import run_worker_pid
from governance import landing_watch
from governance.shop import ShopConfig, generate_shop, land_shop

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"
D1, D2 = "2026-11-01", "2026-11-02"
SENSOR = "landing_zone_sensor"
TICK_SECONDS = 5


def wait_until(what: str, probe, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DagsterDev:
    """``dagster dev`` in its own process group, its output in a log file."""

    def __init__(self, home: Path, env: dict[str, str], log: Path):
        self.home, self.env, self.log = home, env, log
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout: float = 240) -> None:
        self.port = free_port()
        out = self.log.open("a")
        self.proc = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        wait_until("the webserver and the code location", self._loaded, timeout, 2)

    def _loaded(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"dagster dev exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
        try:
            data = self.gql("{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name "
                            "location { name } } } } }")
        except OSError:
            return False
        nodes = data["repositoriesOrError"].get("nodes") or []
        if nodes:
            self.selector = {"repositoryLocationName": nodes[0]["location"]["name"],
                             "repositoryName": nodes[0]["name"]}
        return bool(nodes)

    def gql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/graphql",
                                         data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert "errors" not in body, body["errors"]
        return body["data"]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)


SENSOR_STATE = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { __typename
  ... on Sensor { sensorState { status ticks(limit: 50) { timestamp status runIds error { message } } } } } }"""
RUNS = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results {
  runId status tags { key value } } } } }"""


def sensor_ticks(dev: DagsterDev) -> list[dict]:
    data = dev.gql(SENSOR_STATE, {"s": {**dev.selector, "sensorName": SENSOR}})["sensorOrError"]
    return data["sensorState"]["ticks"]


def runs(dev: DagsterDev, **tags) -> list[dict]:
    found = dev.gql(RUNS, {"tags": [{"key": k, "value": v} for k, v in tags.items()]})["runsOrError"]["results"]
    for run in found:
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
    return found


def sensor_runs(dev: DagsterDev) -> list[dict]:
    return runs(dev, **{"dagster/sensor_name": SENSOR})


def ticks_after(dev: DagsterDev, since: float, count: int, timeout: float) -> list[dict]:
    """Wait for ``count`` completed sensor ticks that started after ``since`` (epoch seconds)."""
    def done():
        ticks = [t for t in sensor_ticks(dev) if t["timestamp"] > since and t["status"] != "STARTED"]
        return ticks if len(ticks) >= count else None
    ticks = wait_until(f"{count} sensor ticks", done, timeout, 2)
    assert not [t for t in ticks if t["status"] == "FAILURE"], ticks
    return ticks


def ours(pid: int, home: Path) -> bool:
    """A live process started for this test's instance (never a recycled pid of someone else's)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"DAGSTER_HOME={home}".encode() in environ


def prepare_first_day(data: Path, instance: dg.DagsterInstance) -> None:
    """What a day's run reads, in process: the first day collected and cleaned, catalog and users, the
    models (trained on that day) and the integration keys. Nothing more, to keep the test short."""
    defs = build_definitions(data_root=str(data), demo="1")
    for name, day in (("collection_inputs", None), ("collection_daily", D1), ("cleaning_inputs", None),
                      ("cleaning_daily", D1)):
        result = defs.resolve_job_def(name).execute_in_process(instance=instance, partition_key=day,
                                                               raise_on_error=False)
        assert result.success, (name, [e.message for e in result.all_events if e.is_failure][:3])
    inputs = [dg.AssetKey(k) for k in (["models", "sentiment"], ["models", "intent"],
                                       ["integrated", "product_history"], ["integrated", "product_keys"],
                                       ["integrated", "user_keys"])]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=inputs, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure][:3]


def test_dagster_dev_runs_a_landed_day_once_survives_a_restart_and_retries_a_killed_run(tmp_path):
    home, data, staging = tmp_path / "dagster_home", tmp_path / "data", tmp_path / "staging"
    home.mkdir()
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = 2  # the kill is noticed within seconds
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    land_shop(generate_shop(ShopConfig(n_events=3_000, days=2, seed=21, end_date=date.fromisoformat(D2))),
              staging / "landing", staging / "truth")
    # the landing zone before: everything but the second day of the daily sources
    shutil.copytree(staging / "landing", data / "landing",
                    ignore=lambda folder, names: [n for n in names if n == D2 and Path(folder).name in DAILY_SOURCES])
    env = {**os.environ, "DAGSTER_HOME": str(home), "GOVERNANCE_DATA_ROOT": str(data), "GOVERNANCE_DEMO": "1",
           "GOVERNANCE_SENSOR_INTERVAL": str(TICK_SECONDS), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           # a launched run executes its steps in its run worker: one process per run (a process per step
           # took over 8 minutes for one day at load 12 on 2 cores; bench/backfill.py measures that executor)
           "GOVERNANCE_EXECUTOR": "in_process"}
    env.pop("GOVERNANCE_PARTITION_START", None)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        prepare_first_day(data, instance)
    # the sensor starts from what was already run: the cursor two ticks over the landing zone as it is
    days = set(build_definitions(data_root=str(data), demo="1").resolve_job_def("daily_lifecycle")
               .partitions_def.get_partition_keys())
    cursor = None
    for _ in range(2):
        cursor = landing_watch.advance(cursor, data / "landing", DAILY_SOURCES, SNAPSHOT_SOURCES, days).cursor
    dev = DagsterDev(home, env, tmp_path / "dagster_dev.log")
    workers: list[int] = []
    try:
        dev.start()
        selector = {**dev.selector, "sensorName": SENSOR}
        set_cursor = dev.gql("""mutation($s: SensorSelector!, $c: String) { setSensorCursor(sensorSelector: $s,
            cursor: $c) { __typename } }""", {"s": selector, "c": cursor})
        assert set_cursor["setSensorCursor"]["__typename"] == "Sensor", set_cursor
        started = dev.gql("""mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename
            ... on Sensor { sensorState { status } } } }""", {"s": selector})["startSensor"]
        assert started["sensorState"]["status"] == "RUNNING", started
        ticks_after(dev, 0, 2, 180)
        assert sensor_runs(dev) == []  # what was already run is not run again

        # a new day lands: one run, by itself, that succeeds with the day's assets and checks
        for source in DAILY_SOURCES:
            if (staging / "landing" / source / D2).is_dir():
                shutil.copytree(staging / "landing" / source / D2, data / "landing" / source / D2)
        [run] = wait_until("the sensor's run of the new day", lambda: sensor_runs(dev), 240, 2)
        assert run["tags"]["dagster/partition"] == D2 and run["tags"]["landing/scope"] == D2
        final = wait_until("the day's run to end", lambda: next(
            (r for r in sensor_runs(dev) if r["runId"] == run["runId"] and r["status"] in
             ("SUCCESS", "FAILURE", "CANCELED")), None), 480, 3)
        assert final["status"] == "SUCCESS", (tmp_path / "dagster_dev.log").read_text()[-3000:]
        materialized = dev.gql("""query($id: ID!) { runOrError(runId: $id) { ... on Run {
            assetMaterializations { assetKey { path } partition } } } }""", {"id": run["runId"]})["runOrError"]
        keys = {("/".join(m["assetKey"]["path"]), m["partition"]) for m in materialized["assetMaterializations"]}
        graph = build_definitions(data_root=str(data), demo="1").resolve_asset_graph()
        daily_keys = {k.to_user_string() for k in graph.get_all_asset_keys()
                      if graph.get(k).is_materializable and graph.get(k).partitions_def is not None}
        assert {(k, D2) for k in daily_keys} <= keys
        checks = dev.gql("""query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode {
            assetChecksOrError { ... on AssetChecks { checks { name
              executionForLatestMaterialization { runId status } } } } } } }""",
                         {"k": {"path": ["clean", "events"]}})["assetNodeOrError"]["assetChecksOrError"]["checks"]
        executed = [c for c in checks if (c["executionForLatestMaterialization"] or {}).get("runId") == run["runId"]]
        assert checks and len(executed) == len(checks), checks  # every check of the day ran in the sensor's run
        assert any(c["executionForLatestMaterialization"]["status"] == "SUCCEEDED" for c in executed)

        # the same file landed again (same bytes, new mtime): nothing runs
        landed = sorted((data / "landing" / "events" / D2).iterdir())[0]
        landed.write_bytes(landed.read_bytes())
        ticks_after(dev, time.time(), 3, 180)
        assert [r["runId"] for r in sensor_runs(dev)] == [run["runId"]]

        # a restarted dagster dev (webserver and daemon): the stored cursor holds, nothing runs
        dev.stop()
        dev.start()
        ticks_after(dev, time.time(), 3, 180)
        assert [r["runId"] for r in sensor_runs(dev)] == [run["runId"]]

        # a late file for the first day re-runs that day; its worker is SIGKILLed mid-run:
        # run monitoring marks the run failed and run retries launch it again (issue 17)
        late = data / "landing" / "reviews" / D1 / "late_delivery.jsonl"
        late.write_text(json.dumps({"review_id": "late-review-1", "product_id": "p-unknown", "rating": 4,
                                    "text": "arrived late", "review_time": f"{D1}T23:00:00"}) + "\n")
        late_run = wait_until("the late day's run", lambda: next(
            (r for r in sensor_runs(dev) if r["tags"].get("dagster/partition") == D1), None), 240, 2)
        with dg.DagsterInstance.from_config(str(home)) as reader:
            pid, _ = wait_until("the run worker's pid", lambda: run_worker_pid(reader, late_run["runId"]), 180, 0.5)
        workers.append(pid)
        os.kill(pid, signal.SIGKILL)
        failed = wait_until("run monitoring to mark the killed run failed", lambda: next(
            (r for r in runs(dev) if r["runId"] == late_run["runId"] and r["status"] == "FAILURE"), None), 120, 2)
        assert failed["runId"] == late_run["runId"]
        retry = wait_until("a retry of the killed run", lambda: next(
            (r for r in runs(dev, **{"dagster/parent_run_id": late_run["runId"]})), None), 120, 2)
        assert retry["tags"].get("dagster/retry_number") == "1" and retry["tags"]["dagster/partition"] == D1
    finally:
        dev.stop()
        # anything of this instance still alive: a run worker, or a code server that dagster dev's proxy
        # restarted while it shut down (seen: it outlives the process group)
        with dg.DagsterInstance.from_config(str(home)) as reader:
            for record in reader.get_run_records():
                found = run_worker_pid(reader, record.dagster_run.run_id)
                if found:
                    workers.append(found[0])
        workers += [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
        for pid in set(workers):
            if ours(pid, home):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
