"""A backfill of the generated shop through Dagster, stage by stage as the lifecycle runs: each
stage's inputs (catalog, users, models, keys), then N days of its daily job — each day a run on the
multiprocess executor, several days at once — then its roll-ups over all days (collection →
cleaning → labelling → integration; a day's labelling needs models trained on clean days, so
``daily_lifecycle`` alone cannot backfill an empty lake). It counts what must
be zero (lock errors, step retries, duplicate rows) and checks conservation for every partition,
and prints wall time and the peak memory of the whole process tree (sampled from /proc).

    nice -n 5 .venv/bin/python bench/backfill.py [--days 30] [--events 60000] [--parallel 2] [--workers 2]

Everything lives in a temporary directory (data root and DAGSTER_HOME with the project's dagster.yaml).
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the stages a day's run reads from: their inputs (catalog, users, models, keys) are built first
BASE_STAGES = ("collection", "cleaning", "labelling", "integration")
PAGE = os.sysconf("SC_PAGE_SIZE")


@functools.lru_cache(maxsize=1)
def _defs():
    from assets.definitions import build_definitions

    return build_definitions()


def _job(name: str):
    return _defs().resolve_job_def(name)


# module-level, so the multiprocess executor can rebuild each job in its step processes
def collection_daily():
    return _job("collection_daily")


def cleaning_daily():
    return _job("cleaning_daily")


def labelling_daily():
    return _job("labelling_daily")


def integration_daily():
    return _job("integration_daily")


DAILY_JOBS = {"collection": collection_daily, "cleaning": cleaning_daily, "labelling": labelling_daily,
              "integration": integration_daily}


def run_day(group: str, day: str, executor: str) -> tuple[str, bool, str]:
    """One day of a stage as a run, in a worker process: on the job's executor (multiprocess, forkserver: a
    process per step) or in this process (``in_process``: the code location is imported once per worker)."""
    import dagster as dg

    tags = {"dagster/partition": day, "backfill": f"bench-{group}"}
    with dg.DagsterInstance.get() as instance:
        if executor == "in_process":
            result = DAILY_JOBS[group]().execute_in_process(instance=instance, partition_key=day, tags=tags,
                                                            raise_on_error=False)
            return day, result.success, result.run_id
        with dg.execute_job(dg.reconstructable(DAILY_JOBS[group]), instance=instance, raise_on_error=False,
                            tags=tags) as result:
            return day, result.success, result.run_id


class TreeMemory:
    """Peak resident memory of this process and all its descendants together, sampled every 0.25 s."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> int:
        parents, rss = {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * PAGE
        mine, frontier = {os.getpid()}, [os.getpid()]
        children: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in mine:
                    mine.add(child)
                    frontier.append(child)
        return sum(rss.get(pid, 0) for pid in mine)

    def _run(self):
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, self._tree_rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events", type=int, default=60_000, help="events in the whole shop (default %(default)s)")
    parser.add_argument("--parallel", type=int, default=2, help="days (runs) at once (default %(default)s)")
    parser.add_argument("--executor", choices=("multiprocess", "in_process"), default="multiprocess",
                        help="a process per step (the definitions' executor) or each day's run in its worker")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="governance-backfill-"))
    data, home = tmp / "data", tmp / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ.update({"GOVERNANCE_DATA_ROOT": str(data), "DAGSTER_HOME": str(home), "GOVERNANCE_DEMO": "1",
                       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    os.environ.pop("GOVERNANCE_PARTITION_START", None)

    import dagster as dg
    import polars as pl

    from assets.automation import stage_steps, step_job_name
    from assets.definitions import build_definitions
    from governance.settings import Settings
    from governance.shop import ShopConfig, generate_shop, land_shop

    end = (datetime.now(UTC) - timedelta(days=2)).date()
    load = os.getloadavg()
    print(f"shop: {args.events:,} events over {args.days} days ending {end}; {args.parallel} days at once, "
          f"executor {args.executor}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)
    started = time.perf_counter()
    land_shop(generate_shop(ShopConfig(n_events=args.events, days=args.days, seed=args.seed, end_date=end)),
              data / "landing", data / "truth")
    print(f"  generated and landed in {time.perf_counter() - started:.1f}s", flush=True)

    instance = dg.DagsterInstance.get()
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    days = [d for d in defs.resolve_job_def("daily_lifecycle").partitions_def.get_partition_keys() if d <= str(end)]
    assert len(days) == args.days, days

    outcomes, timings, blocked = [], {}, []
    with TreeMemory() as memory, ProcessPoolExecutor(args.parallel, mp_context=multiprocessing.get_context("spawn")
                                                     ) as pool:
        for group in BASE_STAGES:
            steps = stage_steps(graph, group)
            for step in ("inputs", "daily", "rollups"):
                if step not in steps:
                    continue
                t = time.perf_counter()
                if step != "daily":  # one run over the stage's snapshots, in process
                    result = defs.resolve_job_def(step_job_name(group, step)).execute_in_process(
                        instance=instance, raise_on_error=False)
                    if not result.success:  # a failed blocking check is a finding about the data, not the run
                        blocked.append(f"{group}_{step}: " + "; ".join(
                            e.message.splitlines()[0] for e in result.all_events if e.is_step_failure)[:300])
                else:  # the backfill: one run per day, several days at once, each on the multiprocess executor
                    outcomes += list(pool.map(run_day, [group] * len(days), days, [args.executor] * len(days)))
                timings[f"{group}_{step}"] = time.perf_counter() - t
                print(f"  {group}_{step}: {timings[f'{group}_{step}']:.1f}s", flush=True)
    failed = [day for day, ok, _ in outcomes if not ok]
    backfill_s = sum(v for k, v in timings.items() if k.endswith("_daily"))
    print(f"  {len(outcomes)} day runs ({len(days)} days × {len(BASE_STAGES)} stages) in {backfill_s:.1f}s; "
          f"failed runs: {failed or 0}", flush=True)

    # what must be zero, and conservation per partition
    run_ids = [run_id for _, _, run_id in outcomes]
    lock_errors = retries = 0
    for run_id in run_ids:
        for record in instance.get_records_for_run(run_id).records:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_RESTARTED:
                retries += 1
            if event.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
                text = str(getattr(event.event_specific_data, "error", "") or event.message or "").lower()
                lock_errors += "lock" in text
    settings = Settings.load()
    catalog = settings.catalog()
    duplicates = {}
    for source, key in (("events", "event_id"), ("reviews", "review_id"), ("queries", "query_id")):
        duplicates[f"clean.{source}"] = int(catalog.query(
            f"SELECT count(*) - count(DISTINCT {key}) AS d FROM clean.{source}")["d"][0])
        duplicates[f"raw.{source}"] = int(catalog.query(
            f"SELECT count(*) - count(DISTINCT (_file_hash, _row_number)) AS d FROM raw.{source}")["d"][0])
    conservation = []
    for source in ("events", "reviews", "queries"):
        counts = catalog.query(f"""
            WITH r AS (SELECT _partition AS p, count(*) AS n FROM raw.{source} GROUP BY 1),
                 c AS (SELECT _partition AS p, count(*) AS n FROM clean.{source} GROUP BY 1),
                 q AS (SELECT partition AS p, count(*) AS n FROM quarantine.{source} WHERE stage = 'cleaning' GROUP BY 1)
            SELECT r.p, r.n AS raw, coalesce(c.n, 0) AS clean, coalesce(q.n, 0) AS quarantined
            FROM r LEFT JOIN c USING (p) LEFT JOIN q USING (p) ORDER BY 1""")
        bad = counts.filter(pl.col("raw") != pl.col("clean") + pl.col("quarantined"))
        conservation.append((source, counts.height, bad.height))
    checks = [e for run_id in run_ids for e in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records]
    conserved_checks = [r.event_log_entry.dagster_event.event_specific_data for r in checks
                        if r.event_log_entry.dagster_event.event_specific_data.check_name == "rows_conserved"]
    failed_conserved = [c for c in conserved_checks if not c.passed]

    total = time.perf_counter() - started
    load = os.getloadavg()
    print(f"\nlock errors: {lock_errors}; step retries: {retries}; failed day runs: {len(failed)}")
    for line in blocked:
        print(f"snapshot run stopped by a failed blocking check (a finding, not an error): {line}")
    print("duplicate rows: " + ", ".join(f"{k} {v}" for k, v in duplicates.items()))
    for source, partitions, bad in conservation:
        print(f"conservation {source}: {partitions} partitions, {bad} not conserved (raw = clean + quarantined)")
    print(f"rows_conserved checks: {len(conserved_checks)} evaluated, {len(failed_conserved)} failed")
    other_s = sum(v for k, v in timings.items() if not k.endswith("_daily"))
    print(f"wall: total {total:.0f}s (day runs {backfill_s:.0f}s, stage inputs and roll-ups {other_s:.0f}s); "
          f"peak memory of the process tree {memory.peak / 2**30:.2f} GiB; load average at the end "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = (not failed and lock_errors == 0 and not any(duplicates.values())
          and not any(bad for _, _, bad in conservation) and not failed_conserved)
    print("OK" if ok else "NOT OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
