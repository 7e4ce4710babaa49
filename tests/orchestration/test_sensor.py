"""The landing-zone sensor runs each landed piece of data exactly once (``dg.build_sensor_context``):
a file still being written waits, the same bytes landed again run nothing, a late file re-runs its
old day, a restarted sensor (a fresh process, the stored cursor) neither re-runs nor skips, and bad
paths are skipped with a logged reason without crashing the tick."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from assets.definitions import build_definitions
from governance import landing_watch

DAYS = ["2026-10-01", "2026-10-02"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shop(landed_shop) -> Path:
    return landed_shop("sensor_shop", n_events=2_000, days=len(DAYS), seed=3, end_date=date(2026, 10, 2))


@pytest.fixture(scope="module")
def defs(shop) -> dg.Definitions:
    return build_definitions(data_root=str(shop), demo="1", partition_start=DAYS[0])


class Ticks:
    """Evaluates the real sensor tick after tick, carrying the cursor as the daemon stores it."""

    def __init__(self, defs: dg.Definitions, cursor: str | None = None):
        self.defs, self.cursor = defs, cursor
        self.sensor = defs.get_sensor_def("landing_zone_sensor")

    def __call__(self) -> list[dg.RunRequest]:
        with dg.build_sensor_context(cursor=self.cursor, resources=self.defs.resources,
                                     definitions=self.defs) as context:
            result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return list(result.run_requests or [])

    def settle(self) -> list[dg.RunRequest]:
        """Two ticks: the first sees the files, the second takes them if they held still."""
        first = self()
        return first + self()


def runs(requests) -> dict[str, str]:
    return {(r.partition_key or r.job_name): r.run_key for r in requests}


def test_each_landed_day_runs_once_and_the_same_bytes_again_run_nothing(defs, shop):
    tick = Ticks(defs)
    assert tick() == []  # first sight: nothing yet, the files may still be written
    first = tick()
    assert sorted(runs(first)) == [*DAYS, "snapshots"]
    assert {r.job_name for r in first if r.partition_key} == {"daily_lifecycle"}
    assert tick() == [] and tick() == []  # nothing new
    # the same bytes landed again (copied over the file: new mtime) run nothing
    landed = next((shop / "landing" / "events" / DAYS[1]).iterdir())
    data = landed.read_bytes()
    landed.write_bytes(data)
    os.utime(landed, ns=(landed.stat().st_atime_ns, landed.stat().st_mtime_ns + 5_000_000_000))
    assert tick.settle() == []
    # run keys are deterministic: another cursor-less sensor, same files → same keys
    again = Ticks(defs)
    assert runs(again.settle()) == runs(first)


def test_a_late_file_reruns_its_old_day_only(defs, shop):
    tick = Ticks(defs)
    tick.settle()
    late = shop / "landing" / "events" / DAYS[0] / "late_delivery.csv"
    late.write_text("event_id,session_id,user_id,item_id,event_type,event_time\n"
                    "late-1,s1,u1,p1,view,2026-10-01T23:59:00\n")
    try:
        requests = tick.settle()
        assert [(r.partition_key, r.job_name) for r in requests] == [(DAYS[0], "daily_lifecycle")]
        assert requests[0].tags["landing/scope"] == DAYS[0]
        assert tick.settle() == []
    finally:
        late.unlink()
    # the day is back to its earlier bytes: that content runs again (a different key from the first run of it)
    back = tick.settle()
    assert [r.partition_key for r in back] == [DAYS[0]]


def test_a_file_still_being_written_waits_until_it_holds_still(defs, shop):
    tick = Ticks(defs)
    tick.settle()
    growing = shop / "landing" / "reviews" / DAYS[1] / "arriving.jsonl"
    try:
        with growing.open("w") as f:
            f.write('{"review_id": "r-late-1", ')
            f.flush()
            assert tick() == []  # seen changing
            f.write('"product_id": "p1"}\n')
            f.flush()
            assert tick() == []  # still changing since the last tick: waits
            f.write('{"review_id": "r-late-2", "product_id": "p2"}\n')
        assert tick() == []  # the last write happened after the previous tick: one more tick
        requests = tick()  # unchanged over two ticks: taken
        assert [r.partition_key for r in requests] == [DAYS[1]]
    finally:
        growing.unlink()
        tick.settle()


def test_a_restarted_process_with_the_stored_cursor_neither_reruns_nor_skips(defs, shop, tmp_path):
    tick = Ticks(defs)
    first = tick.settle()
    assert first
    cursor_file = tmp_path / "cursor.json"
    cursor_file.write_text(tick.cursor)
    new_day = shop / "landing" / "queries" / DAYS[1] / "more_queries.csv"
    new_day.write_text("query_id,session_id,user_id,query_text,query_time\nq-new,s1,u1,red shoes,"
                       "2026-10-02T10:00:00\n")
    try:
        # a fresh interpreter: no state but the cursor (Python's hash() would differ there)
        script = f"""
import json, sys
import dagster as dg
from assets.definitions import build_definitions
defs = build_definitions(data_root={str(shop)!r}, demo="1", partition_start={DAYS[0]!r})
sensor = defs.get_sensor_def("landing_zone_sensor")
cursor = open({str(cursor_file)!r}).read()
keys = []
for _ in range(3):
    with dg.build_sensor_context(cursor=cursor, resources=defs.resources, definitions=defs) as ctx:
        result = sensor.evaluate_tick(ctx)
    cursor = result.cursor
    keys += [[r.partition_key, r.run_key] for r in result.run_requests or []]
print("KEYS=" + json.dumps(keys))
"""
        script_file = tmp_path / "restarted_sensor.py"  # a file, not -c: pyspark exits a __main__ without __file__
        script_file.write_text(script)
        out = subprocess.run([sys.executable, str(script_file)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PYTHONHASHSEED": "12345"})
        assert out.returncode == 0, out.stderr[-2000:]
        assert "KEYS=" in out.stdout, (out.stdout[-2000:], out.stderr[-2000:])
        keys = json.loads(out.stdout.split("KEYS=")[-1])
        assert [k[0] for k in keys] == [DAYS[1]]  # the new file, once; nothing landed before re-runs
        assert runs(tick.settle()) == {DAYS[1]: keys[0][1]}  # this process computes the same key
    finally:
        new_day.unlink()
        tick.settle()


def test_bad_paths_are_skipped_with_a_reason_and_never_crash_the_sensor(defs, shop, tmp_path, capfd):
    landing = shop / "landing"
    outside = tmp_path / "outside"
    (outside / "day").mkdir(parents=True)
    (outside / "secret.csv").write_text("event_id\nstolen\n")
    (outside / "day" / "secret.csv").write_text("event_id\nstolen\n")
    made = [
        landing / "unknown_source" / DAYS[0] / "x.csv",
        landing / "events" / "2026-13-45" / "x.csv",  # impossible date
        landing / "events" / "yesterday" / "x.csv",  # not a date
        landing / "events" / "2026-10-01..x" / "x.csv",  # '..' in the day
        landing / "events" / DAYS[0] / "a..b.csv",  # '..' in a name
        landing / "events" / "2031-01-01" / "x.csv",  # a real day beyond the partitions
    ]
    created = [d for path in made for d in (path.parent.parent, path.parent) if not d.exists()]
    for path in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("event_id\n1\n")
    link_file = landing / "events" / DAYS[0] / "link.csv"
    link_file.symlink_to(outside / "secret.csv")
    link_day = landing / "events" / "2026-10-03"
    link_day.symlink_to(outside / "day", target_is_directory=True)
    link_source = landing / "reviews_link"
    link_source.symlink_to(outside, target_is_directory=True)
    tick = Ticks(defs)
    try:
        capfd.readouterr()
        requests = tick.settle()
        logged = capfd.readouterr().err  # the tick's log (the sensor context logs to the console)
        # nothing bad runs: only the shop's own days and snapshots
        assert sorted(runs(requests)) == [*DAYS, "snapshots"]
        skipped = landing_watch.scan(landing, ["events", "reviews", "queries"], ["products", "users"],
                                     set(DAYS)).skipped
        reasons = {s.path: s.reason for s in skipped}
        assert "unknown source" in reasons["unknown_source"]
        assert "not a real date" in reasons["events/2026-13-45"]
        assert "not a YYYY-MM-DD day" in reasons["events/yesterday"]
        assert "'..'" in reasons["events/2026-10-01..x"]
        assert "'..'" in reasons[f"events/{DAYS[0]}/a..b.csv"]
        assert "outside the daily partitions" in reasons["events/2031-01-01"]
        assert "symbolic link" in reasons[f"events/{DAYS[0]}/link.csv"]
        assert "symbolic link" in reasons["events/2026-10-03"]
        assert "symbolic link" in reasons["reviews_link"]
        for path in reasons:
            assert f"skipped {path}:" in logged  # every skip is in the tick's log with its reason
        # the link's target was never read into the scope: the day's content digest ignores it
        scope = landing_watch.scan(landing, ["events"], [], set(DAYS)).scopes[DAYS[0]]
        assert not any("link.csv" in rel or "a..b" in rel for rel in scope)
    finally:
        for path in (link_file, link_day, link_source):
            path.unlink()
        for path in made:
            path.unlink()
        for folder in reversed(created):
            folder.rmdir()


def test_a_file_that_vanishes_or_cannot_be_read_does_not_crash_the_tick(shop, tmp_path):
    landing = tmp_path / "landing"
    day = landing / "events" / DAYS[0]
    day.mkdir(parents=True)
    f = day / "a.csv"
    f.write_text("event_id\n1\n")
    tick = landing_watch.advance(None, landing, ["events"], [], set(DAYS))
    assert tick.waiting == [DAYS[0]] and not tick.runs
    unreadable = day / "b.csv"
    unreadable.write_text("event_id\n2\n")
    tick = landing_watch.advance(tick.cursor, landing, ["events"], [], set(DAYS))
    assert tick.waiting == [DAYS[0]]
    if os.geteuid() != 0:  # root reads anything: the vanished file below covers that case
        unreadable.chmod(0)
        again = landing_watch.advance(tick.cursor, landing, ["events"], [], set(DAYS))
        assert not again.runs and any("could not be read" in s.reason for s in again.skipped)
        unreadable.chmod(0o644)
    os.mkfifo(day / "pipe")
    tick = landing_watch.advance(tick.cursor, landing, ["events"], [], set(DAYS))
    assert any("not a regular file" in s.reason for s in tick.skipped)
    assert [scope for scope, _ in tick.runs] == [DAYS[0]]  # the pipe is left out; the files held still
    # an unknown, older cursor format starts over without raising
    stale = landing_watch.advance(json.dumps({"snapshots": [["x", 1, 2]]}), landing, ["events"], [], set(DAYS))
    assert stale.waiting == [DAYS[0]]
    assert landing_watch.advance(None, tmp_path / "missing", ["events"], [], None).runs == []
