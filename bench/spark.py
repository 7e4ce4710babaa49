"""Cleaning events on Apache Spark (local mode) against the Polars engine, with equal results.

Input: one day of the repo's seeded shop (`ShopConfig(n_events=N, days=1)`, as bench/clean.py),
landed and collected into a lake, products and users cleaned (the references). Then, each in its
own subprocess, the events partition is cleaned and published into the lake:

  polars  `clean_partition(lake, "events", day)`: read raw, `clean_frame`, write (one process)
  spark   `governance.cleaning.spark.clean_partitions(spark, lake, "events", [day])` on
          `--master` (default local[2]): Spark reads the raw Parquet, shuffles the day to one task,
          the task runs the same `clean_frame` over Arrow and publishes; the session's start-up (JVM)
          is timed apart from the job

After both, the three tables each wrote (clean, cleaning quarantine, audit) are compared exactly
(every column, every row, in the written order); any difference exits 1. Peak memory is the whole
process tree's resident set (the JVM and Spark's Python workers are children of the driver),
sampled every 0.2 s.

    python bench/spark.py                      # 1M and 10M events
    python bench/spark.py --rows 1000000       # any sizes
    --workdir DIR keeps the generated lakes; --master, --driver-memory, --arrow-batch

Spark loses on 2 cores — it adds a JVM, a Parquet read, a shuffle and the Arrow transfer to the work
Polars does alone; the point is equal results and a path to more machines. Compare rows of one run
(the load average is printed), never runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))

SEED = 7
DAY = date(2026, 11, 10)
NOW = datetime(2026, 11, 11, 6, tzinfo=UTC)
RUN_ID = "bench-spark"
TABLES = (("clean", "data"), ("quarantine", "cleaning"), ("audit", "cleaning"))


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


class TreePeak:
    """The peak summed RSS of this process and all its descendants (sampled)."""

    def __init__(self, every: float = 0.2) -> None:
        self.peak, self.every, self._stop = 0, every, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree_rss(root: int) -> int:
        parents: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as f:
                        parents[int(entry.name)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        tree, frontier = {root}, [root]
        while frontier:
            pid = frontier.pop()
            for child, parent in parents.items():
                if parent == pid and child not in tree:
                    tree.add(child)
                    frontier.append(child)
        total = 0
        for pid in tree:
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss(os.getpid()))
            self._stop.wait(self.every)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


# ------------------------------------------------------------------------------------------------
# children


def _setup_child(rows: int, root: str) -> dict:
    from governance.cleaning import clean_partition
    from governance.collection import ingest_partition
    from governance.contracts import CONTRACTS
    from governance.shop import ShopConfig, generate_shop, land_shop
    from governance.storage import Lake

    import polars as pl

    root = Path(root)
    shop = generate_shop(ShopConfig(n_events=rows, days=1, seed=SEED, end_date=DAY))
    land_shop(shop, root / "landing", root / "truth")
    del shop
    lake = Lake.at(root / "lake")
    ingested_at = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
    for source in ("products", "users"):
        ingest_partition(lake, CONTRACTS[source], root / "landing", None, run_id=RUN_ID, ingested_at=ingested_at)
        clean_partition(lake, source, None, run_id=RUN_ID, now=ingested_at)
    ingest_partition(lake, CONTRACTS["events"], root / "landing", DAY.isoformat(), run_id=RUN_ID,
                     ingested_at=ingested_at)
    shutil.rmtree(root / "landing")
    raw_rows = pl.scan_parquet(lake.part_path("raw", "events", DAY.isoformat())).select(pl.len()).collect().item()
    return {"n_events": rows, "seed": SEED, "raw_rows": raw_rows, "lake": str(root / "lake")}


def _keep(lake, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for layer, part in TABLES:
        shutil.copyfile(lake.part_path(layer, "events", DAY.isoformat(), part=part), out / f"{layer}.parquet")


def _polars_child(lake_root: str, out: str) -> dict:
    import governance.cleaning  # noqa: F401 - imports before the clock
    from governance.cleaning import clean_partition
    from governance.storage import Lake

    lake = Lake.at(lake_root)
    with TreePeak() as peak:
        t = time.perf_counter()
        result = clean_partition(lake, "events", DAY.isoformat(), run_id=RUN_ID, now=NOW)
        seconds = time.perf_counter() - t
    _keep(lake, Path(out))
    return {"seconds": seconds, "peak_bytes": peak.peak, "rows_in": result.rows_in, "clean": result.clean.height,
            "quarantined": result.quarantine.height, "conserved": result.conserved}


def _spark_child(lake_root: str, out: str, master: str, conf: dict) -> dict:
    import governance.cleaning.spark  # noqa: F401 - imports before the clock
    from governance.cleaning.spark import clean_partitions
    from governance.spark import session
    from governance.storage import Lake

    lake = Lake.at(lake_root)
    with TreePeak() as peak:
        t = time.perf_counter()
        spark = session(master, conf)
        started = time.perf_counter() - t
        t = time.perf_counter()
        done = clean_partitions(spark, lake, "events", [DAY.isoformat()], run_id=RUN_ID, now=NOW)[DAY.isoformat()]
        seconds = time.perf_counter() - t
    spark.stop()
    _keep(lake, Path(out))
    return {"seconds": seconds, "session_seconds": started, "peak_bytes": peak.peak, "rows_in": done.rows_in,
            "clean": done.rows_clean, "quarantined": done.rows_quarantined, "conserved": done.conserved,
            "where": done.where}


def _compare_child(left: str, right: str) -> dict:
    import polars as pl

    out = {}
    for layer, _ in TABLES:
        a, b = pl.read_parquet(Path(left) / f"{layer}.parquet"), pl.read_parquet(Path(right) / f"{layer}.parquet")
        # the run's times (quarantined_at, fixed_at) are the bench's fixed NOW: every column must agree
        out[layer] = {"rows": a.height, "equal": a.equals(b),
                      "equal_sorted": a.sort(a.columns, nulls_last=True).equals(b.sort(b.columns, nulls_last=True))}
        if layer == "quarantine":
            out["by_rule"] = dict(a.group_by("rule").len().sort("rule").iter_rows())
            out["by_rule_spark"] = dict(b.group_by("rule").len().sort("rule").iter_rows())
    return out


def _spawn(kind: str, payload: dict) -> dict:
    proc = subprocess.run([sys.executable, str(HERE), "--child", kind, json.dumps(payload)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def prepare(rows: int, root: Path) -> dict:
    ready = root / "ready.json"
    if ready.exists():
        info = json.loads(ready.read_text())
        if info.get("n_events") == rows and info.get("seed") == SEED:
            return info
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t = time.perf_counter()
    info = _spawn("setup", {"rows": rows, "root": str(root)})
    info["setup_seconds"] = time.perf_counter() - t
    ready.write_text(json.dumps(info))
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g", help="spark.driver.memory (local mode: the executor too)")
    parser.add_argument("--arrow-batch", default="100000", help="spark.sql.execution.arrow.maxRecordsPerBatch")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, p = args.child[0], json.loads(args.child[1])
        out = {"setup": lambda: _setup_child(p["rows"], p["root"]),
               "polars": lambda: _polars_child(p["lake"], p["out"]),
               "spark": lambda: _spark_child(p["lake"], p["out"], p["master"], p["conf"]),
               "compare": lambda: _compare_child(p["left"], p["right"])}[kind]()
        print(json.dumps(out))
        return 0

    tmp = None
    if args.workdir:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_spark_")
        work = Path(tmp.name)
    conf = {"spark.driver.memory": args.driver_memory, "spark.ui.enabled": "false",
            "spark.sql.execution.arrow.maxRecordsPerBatch": args.arrow_batch}
    import pyspark
    import polars as pl

    print(f"events cleaning: Spark {pyspark.__version__} ({args.master}, {conf}) vs Polars {pl.__version__}; "
          f"{os.cpu_count()} cores, load average {_load()}", flush=True)
    failed = False
    try:
        for n in args.rows:
            t = time.perf_counter()
            inp = prepare(n, work / f"lake_{n}")
            rows = inp["raw_rows"]
            print(f"\ninput: shop of {n:,} events (1 day) → {rows:,} raw events ({time.perf_counter() - t:.0f} s "
                  "to generate, land and collect)", flush=True)
            print(f"{'rows':>11} {'engine':>7} {'seconds':>8} {'rows/s':>10} {'peak MiB':>9} {'clean':>10} "
                  f"{'quarant.':>9} {'÷ polars':>9}  notes", flush=True)
            results = {}
            for engine in ("polars", "spark"):
                out = work / f"out_{n}_{engine}"
                shutil.rmtree(out, ignore_errors=True)
                load = _load()
                payload = {"lake": inp["lake"], "out": str(out), "master": args.master, "conf": conf}
                r = results[engine] = _spawn(engine, payload)
                ratio = f"{r['seconds'] / results['polars']['seconds']:.1f}×" if engine == "spark" else ""
                notes = f"load before {load}"
                if engine == "spark":
                    notes += f"; + {r['session_seconds']:.1f} s session start (JVM), cleaned on the {r['where']}"
                print(f"{rows:>11,} {engine:>7} {r['seconds']:>8.1f} {rows / r['seconds']:>10,.0f} "
                      f"{r['peak_bytes'] / 2**20:>9,.0f} {r['clean']:>10,} {r['quarantined']:>9,} {ratio:>9}  {notes}",
                      flush=True)
                if not r["conserved"] or r["rows_in"] != rows:
                    print(f"  !! {engine}: rows in {r['rows_in']:,} ≠ clean + quarantined")
                    failed = True
            cmp = _spawn("compare", {"left": str(work / f"out_{n}_polars"), "right": str(work / f"out_{n}_spark")})
            equal = all(cmp[layer]["equal"] for layer, _ in TABLES)
            print("check: " + ("OK — Spark's clean, quarantine and audit tables equal Polars' exactly (every column, "
                               "every row, in order): " if equal else "MISMATCH: ")
                  + ", ".join(f"{layer} {cmp[layer]['rows']:,} rows{'' if cmp[layer]['equal'] else ' DIFFER'}"
                              f"{'' if cmp[layer]['equal'] or not cmp[layer]['equal_sorted'] else ' (equal sorted)'}"
                              for layer, _ in TABLES), flush=True)
            print("quarantined by rule: " + ", ".join(f"{k} {v:,}" for k, v in cmp["by_rule"].items()), flush=True)
            if cmp["by_rule"] != cmp["by_rule_spark"]:
                print(f"  !! Spark's quarantine by rule: {cmp['by_rule_spark']}")
            failed |= not equal
            for engine in ("polars", "spark"):
                shutil.rmtree(work / f"out_{n}_{engine}", ignore_errors=True)
        print(f"\nload average at the end {_load()}")
        return 1 if failed else 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
