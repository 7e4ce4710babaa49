"""Raw → clean throughput and peak memory: our Polars cleaning engine vs pandas 3 vs DuckDB SQL.

Input: a shop from the repo's seeded generator (`ShopConfig(n_events=N, days=1)`: the whole events
partition is one day), landed, collected (`ingest_partition`) for products, users and the events
partition; products and users cleaned (`clean_partition`) to get the reference tables
(`load_references`). Every implementation then gets the same raw events Parquet file and the same
references, applies the events rules (rules.py, in order: a row leaves through the first quarantine
rule that matches it; fixes audited with their originals) and writes the clean table, the cleaning
quarantine and the audit as Parquet:

  polars  `clean_frame("events", raw, ctx)` + the three writes `clean_partition` does
  pandas  bench/clean_baselines.py: vectorised pandas 3 on Arrow-backed dtypes
  duckdb  bench/clean_baselines.py: the rules as one SQL pipeline (windows, anti-joins), COPY … TO parquet

Each run is its own subprocess (peak RSS is that implementation's alone; imports happen before the
clock starts). The three must agree — clean rows, a fingerprint of the clean values, the quarantined
rows per rule (the same rows, not only the same number) and the audit counts — or the script exits 1.
Then the Polars engine is profiled rule by rule (and step by step inside each rule, with the process
peak after each rule) at the largest size, next to the pandas baseline's time for the same rule.

    python bench/clean.py                    # 1M and 10M events, then the 10M profile
    python bench/clean.py --quick            # 1M only
    python bench/clean.py --rows 3000000     # any sizes
    python bench/clean.py --huge             # 100 daily partitions of 1M (generated day by day), Polars
                                             # partition by partition vs one DuckDB statement over all
                                             # 100M with memory_limit 4GB (--duckdb-memory); resumable
    --workdir DIR keeps the generated inputs (reused by the next run with the same sizes)
    --no-profile, --impl polars pandas, --repeat N (fastest of N)

Timing (2 cores): generating, landing and collecting the 10M input takes ~2 min (once per --workdir);
with the inputs in place the default run took 3.3 min on quiet cores and ~12 min (an older engine)
while other jobs kept the load average at ~8 — compare rows of one run, never runs (the load average
is printed). --huge spends
~20 min generating and collecting the 100 days first; Polars then took ~5 min. The one DuckDB
statement over all 100M ran out of memory at 4GB and was still spilling (>55 GB) after 12 min at 8GB;
--duckdb-temp (default 30GB) caps its spill so a shared disk does not fill up.
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

import polars as pl

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))

from measure import load_average, vm_hwm  # noqa: E402 - bench/ is on the path now

SEED = 7
DAY = date(2026, 11, 10)
NOW = datetime(2026, 11, 11, 6, tzinfo=UTC)  # the cleaning run's time (future events are judged against it)
RUN_ID = "bench-clean"
REF_NAMES = ("products", "product_ids", "users", "user_ids", "product_id_map")
SQL_REFS = ("products", "product_ids", "user_ids", "product_id_map")
IMPLS = ("polars", "pandas", "duckdb")
HUGE_START = date(2026, 8, 1)


# ------------------------------------------------------------------------------------------------
# input: generated shop → landed → raw events partition + clean references


def _land_and_collect(rows: int, seed: int, day: date, work: Path, raw_out: Path, refs_out: Path) -> int:
    """One day's shop through generation, landing and collection; the raw events partition is
    copied to ``raw_out`` and the events' reference tables written under ``refs_out``."""
    from governance.cleaning import clean_partition, load_references
    from governance.collection import ingest_partition
    from governance.contracts import CONTRACTS
    from governance.shop import ShopConfig, generate_shop, land_shop
    from governance.storage import Lake

    shutil.rmtree(work, ignore_errors=True)
    shop = generate_shop(ShopConfig(n_events=rows, days=1, seed=seed, end_date=day))
    land_shop(shop, work / "landing", work / "truth")
    del shop
    lake = Lake.at(work / "lake")
    ingested_at = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
    for source in ("products", "users"):
        ingest_partition(lake, CONTRACTS[source], work / "landing", None, run_id=RUN_ID, ingested_at=ingested_at)
        clean_partition(lake, source, None, run_id=RUN_ID, now=ingested_at)
    result = ingest_partition(lake, CONTRACTS["events"], work / "landing", day.isoformat(), run_id=RUN_ID,
                              ingested_at=ingested_at)
    raw_out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lake.part_path("raw", "events", day.isoformat()), raw_out)
    refs_out.mkdir(parents=True, exist_ok=True)
    for name, frame in load_references(lake, "events").items():
        frame.write_parquet(refs_out / f"{name}.parquet")
    shutil.rmtree(work)
    del result  # collection may hand back its rows in batches: count the partition that was written
    return pl.scan_parquet(raw_out).select(pl.len()).collect().item()


def prepare(rows: int, root: Path) -> dict:
    """The input of one size, generated once (reused from ``root`` when already there)."""
    ready = root / "ready.json"
    if ready.exists():
        info = json.loads(ready.read_text())
        if info.get("n_events") == rows and info.get("seed") == SEED:
            return info
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    started = time.perf_counter()
    info = _spawn("setup", {"rows": rows, "root": str(root)})
    info["setup_seconds"] = time.perf_counter() - started
    ready.write_text(json.dumps(info))
    return info


def _setup_child(rows: int, root: str) -> dict:
    root = Path(root)
    raw_rows = _land_and_collect(rows, SEED, DAY, root / "work", root / "raw.parquet", root / "refs")
    return {"n_events": rows, "seed": SEED, "raw_rows": raw_rows, "raw": str(root / "raw.parquet"),
            "refs": str(root / "refs"), "partition": DAY.isoformat(), "peak_bytes": vm_hwm()}


# ------------------------------------------------------------------------------------------------
# the three implementations (each run in a fresh subprocess)


def run_polars(inp: dict, out: Path, timings: dict) -> dict:
    from governance.cleaning import clean_frame
    from governance.cleaning.engine import Context
    from governance.storage import Lake, read_contiguous

    t = time.perf_counter()
    raw = read_contiguous(inp["raw"])  # as Lake.read
    refs = {name: pl.read_parquet(Path(inp["refs"]) / f"{name}.parquet") for name in REF_NAMES}
    timings["read"] = time.perf_counter() - t
    ctx = Context(source="events", partition=inp["partition"], run_id=RUN_ID, now=NOW, references=refs)
    handed_over = [raw]  # as clean_partition: no reference kept here while the engine runs
    del raw
    result = clean_frame("events", handed_over.pop(), ctx)
    timings["clean_frame"] = time.perf_counter() - t - timings["read"]
    lake = Lake.at(out)
    paths = {
        "clean": lake.write("clean", "events", result.clean, inp["partition"]),
        "quarantine": lake.write("quarantine", "events", result.quarantine, inp["partition"], part="cleaning"),
        "audit": lake.write("audit", "events", result.audit, inp["partition"], part="cleaning"),
    }
    timings["write"] = time.perf_counter() - t - timings["read"] - timings["clean_frame"]
    if not result.conserved:
        raise AssertionError("polars: rows in != clean + quarantined")
    return {"rows_in": result.rows_in, **paths}


def run_pandas(inp: dict, out: Path, timings: dict) -> dict:
    from clean_baselines import clean_pandas

    return clean_pandas(Path(inp["raw"]), Path(inp["refs"]), out, now=NOW, run_id=RUN_ID, timings=timings)


def run_duckdb(inp: dict, out: Path, timings: dict) -> dict:
    from clean_baselines import clean_duckdb

    refs = {name: Path(inp["refs"]) / f"{name}.parquet" for name in SQL_REFS}
    return clean_duckdb([Path(inp["raw"])], refs, out, now=NOW, run_id=RUN_ID, timings=timings,
                        memory_limit=inp.get("duckdb_memory"))


IMPLEMENTATIONS = {"polars": run_polars, "pandas": run_pandas, "duckdb": run_duckdb}


def _impl_child(impl: str, inp: dict, out: str) -> dict:
    # libraries are imported before the clock starts: the benchmark times the work, not imports
    import duckdb  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.compute  # noqa: F401

    import clean_baselines  # noqa: F401
    import governance.cleaning  # noqa: F401
    import governance.storage  # noqa: F401

    timings: dict[str, float] = {}
    started = time.perf_counter()
    result = IMPLEMENTATIONS[impl](inp, Path(out), timings)
    seconds = time.perf_counter() - started
    return {**{k: str(v) if isinstance(v, Path) else v for k, v in result.items()}, "seconds": seconds,
            "peak_bytes": vm_hwm(), "timings": timings}


def _spawn(kind: str, payload: dict) -> dict:
    proc = subprocess.run([sys.executable, str(HERE), "--child", kind, json.dumps(payload)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(impl: str, inp: dict, out: Path) -> dict:
    """Run one implementation in a subprocess: wall time and that process's peak RSS."""
    shutil.rmtree(out, ignore_errors=True)
    return _spawn("impl", {"impl": impl, "inp": inp, "out": str(out)})


# ------------------------------------------------------------------------------------------------
# agreement: the same clean rows, the same quarantined rows per rule, the same audit counts


def summarise(paths: dict) -> dict:
    clean = pl.scan_parquet(paths["clean"])
    fingerprint = clean.select(
        rows=pl.len(),
        row_numbers=pl.col("_row_number").sum(),
        cents=(pl.col("price") * 100).round().cast(pl.Int64).sum(),
        priced=pl.col("price").is_not_null().sum(),
        quantity=pl.col("quantity").sum(),
        usd=(pl.col("currency") == "USD").sum(),
        converted=pl.col("price_usd_converted").sum(),
        anonymous=pl.col("is_anonymous").sum(),
        purchases=(pl.col("event_type") == "purchase").sum(),
        carts=(pl.col("event_type") == "add_to_cart").sum(),
        web=(pl.col("device") == "web").sum(),
        items=pl.col("item_id").n_unique(),
    ).collect().to_dicts()[0]
    quarantine = (pl.scan_parquet(paths["quarantine"]).select("rule", "file", "row_number")
                  .sort("rule", "file", "row_number").collect())
    audit = pl.scan_parquet(paths["audit"]).group_by("rule", "column").len().collect()
    return {
        "clean_rows": fingerprint["rows"],
        "fingerprint": fingerprint,
        "quarantined": quarantine.height,
        "by_rule": dict(quarantine.group_by("rule").len().sort("rule").iter_rows()),
        "quarantine_rows": quarantine,
        "audit": {f"{r}.{c}": n for r, c, n in audit.sort("rule", "column").iter_rows()},
    }


def disagreements(summaries: dict[str, dict]) -> list[str]:
    names = list(summaries)
    ref_name, ref = names[0], summaries[names[0]]
    problems = []
    for name in names[1:]:
        other = summaries[name]
        for field in ("fingerprint", "by_rule", "audit"):
            if other[field] != ref[field]:
                keys = sorted(set(ref[field]) | set(other[field]))
                diff = {k: (ref[field].get(k), other[field].get(k)) for k in keys
                        if ref[field].get(k) != other[field].get(k)}
                problems.append(f"{name} vs {ref_name}: {field} differs {diff}")
        if other["by_rule"] == ref["by_rule"] and not other["quarantine_rows"].equals(ref["quarantine_rows"]):
            only = ref["quarantine_rows"].join(other["quarantine_rows"], on=["rule", "file", "row_number"], how="anti")
            problems.append(f"{name} vs {ref_name}: same counts per rule but different rows, "
                            f"e.g. {only.head(5).to_dicts()}")
    return problems


# ------------------------------------------------------------------------------------------------
# the Polars engine, rule by rule and step by step (through `apply_rules`' on_step hook)


def profile_polars(inp: dict) -> dict:
    from governance.cleaning import RULES
    from governance.cleaning.engine import Context, apply_rules
    from governance.contracts import CONTRACTS, LINEAGE_COLUMNS
    from governance.storage import read_contiguous

    raw = read_contiguous(inp["raw"])  # as Lake.read
    rows_in, raw_bytes = raw.height, raw.estimated_size()
    refs = {name: pl.read_parquet(Path(inp["refs"]) / f"{name}.parquet") for name in REF_NAMES}
    ctx = Context(source="events", partition=inp["partition"], run_id=RUN_ID, now=NOW, references=refs)
    contract = CONTRACTS["events"]
    start_peak = vm_hwm()
    steps: dict[str, dict[str, float]] = {}
    peaks: dict[str, int] = {}
    last = time.perf_counter()

    def on_step(rule: str, name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        by_rule = steps.setdefault(rule, {})
        by_rule[name] = by_rule.get(name, 0.0) + now - last
        peaks[rule] = vm_hwm()
        last = now

    handed_over = [raw]  # as clean_frame: the engine may free raw columns as it replaces them
    del raw
    result = apply_rules(handed_over.pop(), RULES["events"], ctx, key=contract.key,
                         record_columns=[*contract.column_names, *LINEAGE_COLUMNS], on_step=on_step)
    rules = [{"rule": o.rule, "action": o.action, "rows": o.rows, "steps": steps.get(o.rule, {}),
              "peak": peaks.get(o.rule, 0)} for o in result.outcomes]
    if "(end)" in steps:
        rules.append({"rule": "(end)", "action": "", "rows": result.clean.height, "steps": steps["(end)"],
                      "peak": peaks["(end)"]})
    return {"rules": rules, "rows_in": rows_in, "raw_bytes": raw_bytes, "start_peak": start_peak}


# ------------------------------------------------------------------------------------------------
# --huge: 100 daily partitions, cleaned out of core


def _huge_setup_child(days: int, rows: int, root: str) -> dict:
    root = Path(root)
    total = 0
    for d in range(days):
        day = HUGE_START + timedelta(days=d)
        raw = root / "raw" / f"date={day.isoformat()}.parquet"
        refs = root / "refs" / day.isoformat()
        if raw.exists() and (refs / "product_id_map.parquet").exists():
            total += pl.scan_parquet(raw).select(pl.len()).collect().item()
            continue
        t = time.perf_counter()
        total += _land_and_collect(rows, SEED + d, day, root / "work", raw, refs)
        print(f"  day {d + 1}/{days} {day}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    # the references of every day, with its partition, for one SQL statement over all days
    (root / "refs_all").mkdir(exist_ok=True)
    for name in SQL_REFS:
        pl.concat([pl.read_parquet(root / "refs" / (HUGE_START + timedelta(days=d)).isoformat() / f"{name}.parquet")
                   .with_columns(_partition=pl.lit((HUGE_START + timedelta(days=d)).isoformat()))
                   for d in range(days)], how="diagonal_relaxed").write_parquet(root / "refs_all" / f"{name}.parquet")
    return {"raw_rows": total, "days": days, "rows": rows}


def _huge_polars_child(root: str, out: str) -> dict:
    from governance.cleaning import clean_frame
    from governance.cleaning.engine import Context
    from governance.storage import Lake

    root, lake = Path(root), Lake.at(out)
    seconds, rows_in, slowest = 0.0, 0, 0.0
    for raw_path in sorted((root / "raw").glob("date=*.parquet")):
        partition = raw_path.stem.removeprefix("date=")
        started = time.perf_counter()
        raw = pl.read_parquet(raw_path)
        refs = {name: pl.read_parquet(root / "refs" / partition / f"{name}.parquet") for name in REF_NAMES}
        ctx = Context(source="events", partition=partition, run_id=RUN_ID, now=NOW, references=refs)
        result = clean_frame("events", raw, ctx)
        lake.write("clean", "events", result.clean, partition)
        lake.write("quarantine", "events", result.quarantine, partition, part="cleaning")
        lake.write("audit", "events", result.audit, partition, part="cleaning")
        rows_in += result.rows_in
        del raw, refs, ctx, result
        took = time.perf_counter() - started
        seconds += took
        slowest = max(slowest, took)
    return {"seconds": seconds, "slowest_partition": slowest, "rows_in": rows_in, "peak_bytes": vm_hwm(),
            "clean": str(Path(out) / "clean" / "events" / "*" / "data.parquet"),
            "quarantine": str(Path(out) / "quarantine" / "events" / "*" / "cleaning.parquet"),
            "audit": str(Path(out) / "audit" / "events" / "*" / "cleaning.parquet")}


def _huge_duckdb_child(root: str, out: str, memory_limit: str, max_temp: str) -> dict:
    from clean_baselines import clean_duckdb

    root = Path(root)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    result = clean_duckdb(sorted((root / "raw").glob("date=*.parquet")),
                          {name: root / "refs_all" / f"{name}.parquet" for name in SQL_REFS}, Path(out),
                          now=NOW, run_id=RUN_ID, by_partition=True, memory_limit=memory_limit,
                          preserve_insertion_order=False, max_temp=max_temp, timings=timings)
    return {**{k: str(v) if isinstance(v, Path) else v for k, v in result.items()},
            "seconds": time.perf_counter() - started, "peak_bytes": vm_hwm(), "timings": timings}


def huge(args, work: Path) -> int:
    root = work / f"huge_{args.huge_days}x{args.huge_rows}"
    root.mkdir(parents=True, exist_ok=True)
    print(f"--huge: {args.huge_days} daily partitions of {args.huge_rows:,} generated events "
          f"(generation, landing and collection first; resumable with --workdir)", flush=True)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE), "--child", "huge-setup",
                           json.dumps({"days": args.huge_days, "rows": args.huge_rows, "root": str(root)})],
                          stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode:
        raise RuntimeError("huge setup failed")
    setup = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = setup["raw_rows"]
    print(f"input: {rows:,} raw events in {args.huge_days} partitions ({time.perf_counter() - started:.0f} s)",
          flush=True)
    results, summaries = {}, {}
    print(f"{'rows':>12} {'impl':>22} {'seconds':>8} {'rows/s':>11} {'peak MiB':>9} {'clean':>12} {'quarant.':>10}")
    impls = [("polars", "polars by partition", "huge-polars", {}),
             ("duckdb", f"duckdb all ({args.duckdb_memory})", "huge-duckdb",
              {"memory_limit": args.duckdb_memory, "max_temp": args.duckdb_temp})]
    for impl, label, kind, extra in impls:
        saved = root / f"result_{impl}.json"
        if impl in args.huge_impl:
            out = root / f"out_{impl}"
            shutil.rmtree(out, ignore_errors=True)
            try:
                r = _spawn(kind, {"root": str(root), "out": str(out), **extra})
            except RuntimeError as exc:  # e.g. DuckDB out of memory: a result too
                shutil.rmtree(out, ignore_errors=True)
                lines = str(exc).strip().splitlines()
                error = next((line for line in reversed(lines) if "Error" in line or "Exception" in line), lines[-1])
                print(f"{rows:>12,} {label:>22}  FAILED: {error[:200]}", flush=True)
                continue
            saved.write_text(json.dumps(r))
        elif saved.exists():  # measured by an earlier run (its outputs are still there): shown for the check
            r = json.loads(saved.read_text())
            label += " (earlier run)"
        else:
            continue
        results[impl] = r
        s = summarise(r)
        summaries[impl] = s
        print(f"{rows:>12,} {label:>22} {r['seconds']:>8.1f} {rows / r['seconds']:>11,.0f} "
              f"{r['peak_bytes'] / 2**20:>9,.0f} {s['clean_rows']:>12,} {s['quarantined']:>10,}", flush=True)
        if impl == "polars":
            print(f"{'':>35} slowest partition {r['slowest_partition']:.1f} s", flush=True)
        else:
            print(f"{'':>35} {', '.join(f'{k} {v:.0f} s' for k, v in r['timings'].items())}", flush=True)
    for impl, r in results.items():
        if r["rows_in"] != rows or summaries[impl]["clean_rows"] + summaries[impl]["quarantined"] != rows:
            print(f"!! {impl}: conservation broken ({r['rows_in']:,} in)")
            return 1
    if len(summaries) > 1:
        problems = disagreements(summaries)
        print("check: " + ("OK — clean rows, fingerprint, quarantined rows per rule and audit counts agree"
                           if not problems else "MISMATCH"))
        for p in problems:
            print("  !! " + p)
        if problems:
            return 1
    return 0


# ------------------------------------------------------------------------------------------------


def _fmt_steps(steps: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(steps.items(), key=lambda kv: -kv[1]) if v >= 0.005)


def print_profile(profile: dict, pandas_timings: dict | None, rows: int) -> None:
    total = sum(sum(r["steps"].values()) for r in profile["rules"])
    print(f"\nPolars engine rule by rule at {rows:,} rows (apply_rules with its on_step hook; total {total:.1f} s), "
          f"next to the pandas baseline's time for the same rule")
    print(f"process peak RSS after reading the input: {profile['start_peak'] / 2**20:,.0f} MiB "
          f"(raw frame {profile['raw_bytes'] / 2**20:,.0f} MiB); 'peak MiB' is the process peak after each rule")
    print(f"{'rule':>24} {'action':>10} {'rows':>8} {'polars s':>9} {'pandas s':>9} {'peak MiB':>9}  polars steps (s)")
    for r in profile["rules"]:
        t = sum(r["steps"].values())
        p = (pandas_timings or {}).get(r["rule"])
        flag = "  <-- slower than pandas" if p is not None and t > p * 1.2 and t - p > 0.1 else ""
        print(f"{r['rule']:>24} {r['action']:>10} {r['rows']:>8,} {t:>9.2f} "
              f"{(f'{p:.2f}' if p is not None else ''):>9} {r['peak'] / 2**20:>9,.0f}  {_fmt_steps(r['steps'])}{flag}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=None, help="event counts (default 1M and 10M)")
    parser.add_argument("--quick", action="store_true", help="1M only")
    parser.add_argument("--impl", nargs="*", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--repeat", type=int, default=1, help="runs per implementation and size; the fastest counts")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-rule profile of the Polars engine")
    parser.add_argument("--workdir", type=Path, help="keep generated inputs here (reused when present)")
    parser.add_argument("--huge", action="store_true", help="100M events as daily partitions, out of core")
    parser.add_argument("--huge-days", type=int, default=100)
    parser.add_argument("--huge-rows", type=int, default=1_000_000)
    parser.add_argument("--duckdb-memory", default=None,
                        help="DuckDB memory_limit (default 8GB; 4GB for --huge): without one DuckDB took 80%% of "
                             "the machine and was OOM-killed at 10M events on a shared 24 GiB machine")
    parser.add_argument("--duckdb-temp", default="30GB", help="DuckDB max_temp_directory_size for --huge")
    parser.add_argument("--huge-impl", nargs="*", default=["polars", "duckdb"], choices=["polars", "duckdb"],
                        help="--huge: which to (re)run; the other's earlier result in --workdir is reused")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, payload = args.child[0], json.loads(args.child[1])
        if kind == "setup":
            out = _setup_child(payload["rows"], payload["root"])
        elif kind == "impl":
            out = _impl_child(payload["impl"], payload["inp"], payload["out"])
        elif kind == "profile":
            out = profile_polars(payload["inp"])
        elif kind == "huge-setup":
            out = _huge_setup_child(payload["days"], payload["rows"], payload["root"])
        elif kind == "huge-polars":
            out = _huge_polars_child(payload["root"], payload["out"])
        elif kind == "huge-duckdb":
            out = _huge_duckdb_child(payload["root"], payload["out"], payload["memory_limit"], payload["max_temp"])
        else:
            raise SystemExit(f"unknown child {kind}")
        print(json.dumps(out))
        return 0

    tmp = None
    if args.workdir:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_clean_")
        work = Path(tmp.name)
    print(f"raw → clean, events rules ({os.cpu_count()} cores, load average "
          f"{load_average()}); Polars {pl.__version__}", flush=True)
    try:
        if args.huge:
            args.duckdb_memory = args.duckdb_memory or "4GB"
            return huge(args, work)
        args.duckdb_memory = args.duckdb_memory or "8GB"
        sizes = args.rows or ([1_000_000] if args.quick else [1_000_000, 10_000_000])
        failed = False
        for n in sizes:
            t = time.perf_counter()
            inp = prepare(n, work / f"input_{n}")
            rows = inp["raw_rows"]
            print(f"\ninput: shop of {n:,} events (1 day) → {rows:,} raw events after collection "
                  f"({time.perf_counter() - t:.0f} s to generate, land and collect)", flush=True)
            print(f"{'rows':>11} {'impl':>7} {'seconds':>8} {'rows/s':>11} {'peak MiB':>9} {'clean':>11} "
                  f"{'quarant.':>9} {'÷ polars':>9}  time split (s)", flush=True)
            results, summaries = {}, {}
            for impl in args.impl:
                runs = []
                for _ in range(args.repeat):
                    runs.append(measure(impl, {**inp, "duckdb_memory": args.duckdb_memory}, work / f"out_{n}_{impl}"))
                best = min(runs, key=lambda r: r["seconds"])
                best["peak_bytes"] = max(r["peak_bytes"] for r in runs)
                results[impl] = best
                summaries[impl] = s = summarise(best)
                ratio = (best["seconds"] / results["polars"]["seconds"]
                         if "polars" in results and impl != "polars" else None)
                split = best["timings"] if impl != "pandas" else {
                    k: v for k, v in best["timings"].items() if k in ("read", "write")} | {
                    "rules": sum(v for k, v in best["timings"].items() if k not in ("read", "write"))}
                print(f"{rows:>11,} {impl:>7} {best['seconds']:>8.2f} {rows / best['seconds']:>11,.0f} "
                      f"{best['peak_bytes'] / 2**20:>9,.0f} {s['clean_rows']:>11,} {s['quarantined']:>9,} "
                      f"{(f'{ratio:.2f}×' if ratio else ''):>9}  "
                      f"{', '.join(f'{k} {v:.1f}' for k, v in split.items())}", flush=True)
                if best["rows_in"] != rows or s["clean_rows"] + s["quarantined"] != rows:
                    print(f"  !! {impl}: rows in {best['rows_in']:,} ≠ clean + quarantined")
                    failed = True
            problems = disagreements(summaries)
            by_rule = summaries[args.impl[0]]["by_rule"]
            rules_text = ", ".join(f"{k} {v:,}" for k, v in by_rule.items())
            print("check: " + (f"OK — {', '.join(summaries)} agree: {summaries[args.impl[0]]['clean_rows']:,} clean, "
                               f"the same quarantined rows per rule ({rules_text}), the same audit counts and clean "
                               "fingerprint" if not problems else "MISMATCH between the implementations"), flush=True)
            for p in problems:
                print("  !! " + p)
            failed |= bool(problems)
            if "polars" in results:
                goals = [f"{rows / results['polars']['seconds'] / 1e6:.2f}M rows/s (goal ≥ 1M)",
                         f"peak {results['polars']['peak_bytes'] / 2**30:.2f} GiB (goal ≤ 4)"]
                if "pandas" in results:
                    goals.append(f"{results['pandas']['seconds'] / results['polars']['seconds']:.2f}× faster than "
                                 "pandas (goal ≥ 2)")
                if "duckdb" in results:
                    goals.append(f"{results['duckdb']['seconds'] / results['polars']['seconds']:.2f}× faster than "
                                 "DuckDB (goal ≥ 1)")
                print("polars vs goals: " + "; ".join(goals), flush=True)
            for out in work.glob(f"out_{n}_*"):
                shutil.rmtree(out, ignore_errors=True)
            if n == sizes[-1] and not args.no_profile and "polars" in args.impl:
                profile = _spawn("profile", {"inp": inp})
                counts = {r["rule"]: r["rows"] for r in profile["rules"] if r["action"] == "quarantine" and r["rows"]}
                if "polars" in summaries and counts != summaries["polars"]["by_rule"]:
                    print(f"  !! the profile harness disagrees with the engine: {counts}")
                    failed = True
                print_profile(profile, results.get("pandas", {}).get("timings"), rows)
        return 1 if failed else 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
