"""Collecting and cleaning events on Apache Spark (local mode) against the Polars engine, with equal results.

**collect** — input: a CSV of N events made by bench/collect.py's `make_events` (~0.7% unparsable
values), landed as one day's file. Each in its own subprocess, the partition is collected into a lake:

  polars  `ingest_partition(lake, EVENTS, landing, day)`: the file read in 16 MiB record-aligned
          batches (`DEFAULT_BATCH_BYTES`), raw rows streamed to the lake (one process)
  spark   `governance.collection_spark.ingest_partition_on_spark(spark, …)` on `--master`: the driver
          hashes the file and cuts it into the same batches, one Spark task per batch runs the same
          `read_bounded`, the driver writes the results through the same transaction

**clean** — input: one day of the repo's seeded shop (`ShopConfig(n_events=N, days=1)`, as
bench/clean.py), landed and collected into a lake, products and users cleaned (the references). Each
in its own subprocess, the events partition is cleaned and published into the lake:

  polars  `clean_partition(lake, "events", day)`: read raw, `clean_frame`, write (one process)
  spark   `governance.cleaning.spark.clean_partitions(spark, lake, "events", [day])` on
          `--master` (default local[2]): Spark reads the raw Parquet, shuffles the day to one task,
          the task runs the same `clean_frame` over Arrow and publishes

The session's start-up (JVM) is timed apart from the job. After both engines, the three tables each
wrote (raw/clean, quarantine, audit) are compared exactly (every column, every row, in the written
order; the run's id and times are the bench's fixed ones); any difference exits 1. Peak memory
(bench/measure.py): "peak" is the measured child's own VmHWM (for Spark: the driver's Python process);
"tree" adds the VmHWM of each of its descendants (the JVM, Spark's Python workers), sampled every
0.2 s — an upper bound of what the tree held at once.

    python bench/spark.py                           # collect and clean, 1M and 10M events
    python bench/spark.py --stages collect --rows 1000000
    --workdir DIR keeps the generated inputs; --master, --driver-memory, --arrow-batch

Spark loses on 2 cores — it adds a JVM, Arrow transfers (and for cleaning a Parquet read and a
shuffle) to the work Polars does alone; the point is equal results and a path to more machines.
Compare rows of one run (the load average is printed), never runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))

from measure import TreePeak, load_average  # noqa: E402 - bench/ is on the path now

SEED = 7
DAY = date(2026, 11, 10)
NOW = datetime(2026, 11, 11, 6, tzinfo=UTC)
RUN_ID = "bench-spark"
TABLES = {"clean": (("clean", "data"), ("quarantine", "cleaning"), ("audit", "cleaning")),
          "collect": (("raw", "data"), ("quarantine", "collection"), ("audit", "collection"))}


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


def _keep(lake, out: Path, stage: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for layer, part in TABLES[stage]:
        shutil.copyfile(lake.part_path(layer, "events", DAY.isoformat(), part=part), out / f"{layer}.parquet")


def _clean_polars_child(lake_root: str, out: str) -> dict:
    import governance.cleaning  # noqa: F401 - imports before the clock
    from governance.cleaning import clean_partition
    from governance.storage import Lake

    lake = Lake.at(lake_root)
    with TreePeak() as peak:
        t = time.perf_counter()
        result = clean_partition(lake, "events", DAY.isoformat(), run_id=RUN_ID, now=NOW)
        seconds = time.perf_counter() - t
    _keep(lake, Path(out), "clean")
    return {"seconds": seconds, "peak_bytes": peak.own, "tree_bytes": peak.tree, "rows_in": result.rows_in,
            "clean": result.clean.height,
            "quarantined": result.quarantine.height, "conserved": result.conserved}


def _clean_spark_child(lake_root: str, out: str, master: str, conf: dict) -> dict:
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
    _keep(lake, Path(out), "clean")
    return {"seconds": seconds, "session_seconds": started, "peak_bytes": peak.own, "tree_bytes": peak.tree,
            "rows_in": done.rows_in,
            "clean": done.rows_clean, "quarantined": done.rows_quarantined, "conserved": done.conserved,
            "where": done.where}


def _collect_setup_child(rows: int, root: str) -> dict:
    from collect import make_events  # bench/collect.py's landed events

    folder = Path(root) / "landing" / "events" / DAY.isoformat()
    folder.mkdir(parents=True)
    make_events(rows).write_csv(folder / "events.csv")
    return {"n_events": rows, "landing": str(Path(root) / "landing"), "bytes": (folder / "events.csv").stat().st_size}


def _collect_child(engine: str, landing: str, out: str, master: str, conf: dict) -> dict:
    import governance.collection_spark  # noqa: F401 - imports before the clock
    from governance.collection import ingest_partition
    from governance.collection_spark import ingest_partition_on_spark
    from governance.contracts import EVENTS
    from governance.spark import session
    from governance.storage import Lake

    lake = Lake.at(Path(out) / "lake")
    started = 0.0
    with TreePeak() as peak:
        if engine == "spark":
            t = time.perf_counter()
            spark = session(master, conf)
            started = time.perf_counter() - t
        t = time.perf_counter()
        if engine == "spark":
            result = ingest_partition_on_spark(spark, lake, EVENTS, Path(landing), DAY.isoformat(), run_id=RUN_ID,
                                               ingested_at=NOW)
        else:
            result = ingest_partition(lake, EVENTS, Path(landing), DAY.isoformat(), run_id=RUN_ID, ingested_at=NOW)
        seconds = time.perf_counter() - t
    if engine == "spark":
        spark.stop()
    _keep(lake, Path(out), "collect")
    shutil.rmtree(Path(out) / "lake")
    return {"seconds": seconds, "session_seconds": started, "peak_bytes": peak.own, "tree_bytes": peak.tree,
            "rows_read": result.rows_read, "landed": result.rows_landed, "quarantined": result.quarantine.height,
            "files": [f.as_dict() for f in result.files]}


def _compare_child(left: str, right: str, stage: str) -> dict:
    import polars as pl

    out = {}
    for layer, _ in TABLES[stage]:
        a, b = pl.read_parquet(Path(left) / f"{layer}.parquet"), pl.read_parquet(Path(right) / f"{layer}.parquet")
        # the run's id and times (ingested_at, quarantined_at, fixed_at) are the bench's fixed ones:
        # every column must agree
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


def prepare(kind: str, rows: int, root: Path) -> dict:
    """The input of a stage at a size, made once per --workdir."""
    ready = root / "ready.json"
    if ready.exists():
        info = json.loads(ready.read_text())
        if info.get("n_events") == rows and info.get("seed", SEED) == SEED:
            return info
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t = time.perf_counter()
    info = _spawn(kind, {"rows": rows, "root": str(root)})
    info["setup_seconds"] = time.perf_counter() - t
    ready.write_text(json.dumps(info))
    return info


def _compared(stage: str, work: Path, rows: int) -> bool:
    cmp = _spawn("compare", {"left": str(work / f"out_{rows}_polars"), "right": str(work / f"out_{rows}_spark"),
                             "stage": stage})
    tables = TABLES[stage]
    equal = all(cmp[layer]["equal"] for layer, _ in tables)
    print("check: " + (f"OK — Spark's {', '.join(layer for layer, _ in tables)} tables equal Polars' exactly (every "
                       "column, every row, in order): " if equal else "MISMATCH: ")
          + ", ".join(f"{layer} {cmp[layer]['rows']:,} rows{'' if cmp[layer]['equal'] else ' DIFFER'}"
                      f"{'' if cmp[layer]['equal'] or not cmp[layer]['equal_sorted'] else ' (equal sorted)'}"
                      for layer, _ in tables), flush=True)
    print("quarantined by rule: " + ", ".join(f"{k} {v:,}" for k, v in cmp["by_rule"].items()), flush=True)
    if cmp["by_rule"] != cmp["by_rule_spark"]:
        print(f"  !! Spark's quarantine by rule: {cmp['by_rule_spark']}")
    for engine in ("polars", "spark"):
        shutil.rmtree(work / f"out_{rows}_{engine}", ignore_errors=True)
    return equal


def _row(rows: int, engine: str, r: dict, polars: dict | None, counts: str, notes: str) -> None:
    ratio = f"{r['seconds'] / polars['seconds']:.1f}×" if polars else ""
    print(f"{rows:>11,} {engine:>7} {r['seconds']:>8.1f} {rows / r['seconds']:>10,.0f} "
          f"{r['peak_bytes'] / 2**20:>9,.0f} {r['tree_bytes'] / 2**20:>9,.0f} {counts} {ratio:>9}  {notes}", flush=True)


def bench_collect(n: int, work: Path, master: str, conf: dict) -> bool:
    """Collection at one size; whether both engines agreed."""
    t = time.perf_counter()
    inp = prepare("collect-setup", n, work / f"landing_{n}")
    print(f"\ncollect: a CSV of {n:,} events ({inp['bytes'] / 2**20:,.0f} MiB; {time.perf_counter() - t:.0f} s to "
          "make and land)", flush=True)
    print(f"{'rows':>11} {'engine':>7} {'seconds':>8} {'rows/s':>10} {'peak MiB':>9} {'tree MiB':>9} {'landed':>10} "
          f"{'quarant.':>9} {'÷ polars':>9}  notes", flush=True)
    results, failed = {}, False
    for engine in ("polars", "spark"):
        out = work / f"out_{n}_{engine}"
        shutil.rmtree(out, ignore_errors=True)
        load = load_average()
        r = results[engine] = _spawn("collect", {"engine": engine, "landing": inp["landing"], "out": str(out),
                                                 "master": master, "conf": conf})
        notes = f"load before {load}"
        if engine == "spark":
            notes += f"; + {r['session_seconds']:.1f} s session start (JVM)"
        _row(n, engine, r, results["polars"] if engine == "spark" else None,
             f"{r['landed']:>10,} {r['quarantined']:>9,}", notes)
        if r["rows_read"] != n or r["landed"] + r["quarantined"] != n:
            print(f"  !! {engine}: {r['rows_read']:,} rows read, {r['landed']:,} landed + {r['quarantined']:,} "
                  f"quarantined, of {n:,}")
            failed = True
    if results["spark"]["files"] != results["polars"]["files"]:
        print(f"  !! the file reports differ: {results['polars']['files']} vs {results['spark']['files']}")
        failed = True
    return _compared("collect", work, n) and not failed


def bench_clean(n: int, work: Path, master: str, conf: dict) -> bool:
    """Cleaning at one size; whether both engines agreed."""
    t = time.perf_counter()
    inp = prepare("setup", n, work / f"lake_{n}")
    rows = inp["raw_rows"]
    print(f"\nclean: shop of {n:,} events (1 day) → {rows:,} raw events ({time.perf_counter() - t:.0f} s "
          "to generate, land and collect)", flush=True)
    print(f"{'rows':>11} {'engine':>7} {'seconds':>8} {'rows/s':>10} {'peak MiB':>9} {'tree MiB':>9} {'clean':>10} "
          f"{'quarant.':>9} {'÷ polars':>9}  notes", flush=True)
    results, failed = {}, False
    for engine in ("polars", "spark"):
        out = work / f"out_{rows}_{engine}"
        shutil.rmtree(out, ignore_errors=True)
        load = load_average()
        payload = {"lake": inp["lake"], "out": str(out), "master": master, "conf": conf}
        r = results[engine] = _spawn(engine, payload)
        notes = f"load before {load}"
        if engine == "spark":
            notes += f"; + {r['session_seconds']:.1f} s session start (JVM), cleaned on the {r['where']}"
        _row(rows, engine, r, results["polars"] if engine == "spark" else None,
             f"{r['clean']:>10,} {r['quarantined']:>9,}", notes)
        if not r["conserved"] or r["rows_in"] != rows:
            print(f"  !! {engine}: rows in {r['rows_in']:,} ≠ clean + quarantined")
            failed = True
    return _compared("clean", work, rows) and not failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--stages", nargs="*", default=["collect", "clean"], choices=["collect", "clean"])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g", help="spark.driver.memory (local mode: the executor too)")
    parser.add_argument("--arrow-batch", default="100000", help="spark.sql.execution.arrow.maxRecordsPerBatch")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, p = args.child[0], json.loads(args.child[1])
        out = {"setup": lambda: _setup_child(p["rows"], p["root"]),
               "collect-setup": lambda: _collect_setup_child(p["rows"], p["root"]),
               "collect": lambda: _collect_child(p["engine"], p["landing"], p["out"], p["master"], p["conf"]),
               "polars": lambda: _clean_polars_child(p["lake"], p["out"]),
               "spark": lambda: _clean_spark_child(p["lake"], p["out"], p["master"], p["conf"]),
               "compare": lambda: _compare_child(p["left"], p["right"], p["stage"])}[kind]()
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

    print(f"events {' and '.join(args.stages)}: Spark {pyspark.__version__} ({args.master}, {conf}) vs Polars "
          f"{pl.__version__}; {os.cpu_count()} cores, load average {load_average()}", flush=True)
    ok = True
    try:
        for n in args.rows:
            for stage in args.stages:
                ok &= (bench_collect if stage == "collect" else bench_clean)(n, work, args.master, conf)
        print(f"\nload average at the end {load_average()}")
        return 0 if ok else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
