"""Landing → raw throughput and peak memory: our Polars collection path vs a vectorised pandas baseline.

Both read the same file, enforce the same events contract (types with failures collected, required
values, a reason per rejected row kept whole), add the same lineage columns and write Parquet. Each
measurement runs in its own subprocess so peak RSS is that implementation's alone.

    python bench/collect.py                 # 3M and 10M events, CSV and Parquet
    python bench/collect.py --rows 1000000 --formats csv --impls polars pandas

``polars`` is collection as the asset runs it (``ingest_partition``: a CSV/JSON Lines file over
``batch_bytes`` read in batches, raw rows streamed to the lake); ``polars-whole`` the same with every
file read whole (collection before batches), the in-run baseline for memory; ``pandas`` the
vectorised pandas baseline. The last column is each one's time over the ``polars`` time.
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
import time
from pathlib import Path

import numpy as np
import polars as pl

BAD_RATE = 0.007
HERE = Path(__file__).resolve()


def make_events(rows: int, seed: int = 0) -> pl.DataFrame:
    """Events as landed text, with ~0.7% unparsable values spread over three columns."""
    rng = np.random.default_rng(seed)
    base = np.datetime64("2026-11-10T00:00:00")
    seconds = rng.integers(0, 86_400, rows)
    types = np.array(["view", "click", "add_to_cart", "purchase"])[rng.choice(4, rows, p=[0.7, 0.2, 0.07, 0.03])]
    carted = (types == "add_to_cart") | (types == "purchase")
    frame = pl.DataFrame({
        "event_id": pl.int_range(rows, eager=True).cast(pl.String),
        "session_id": pl.Series(rng.integers(0, rows // 12 + 1, rows)).cast(pl.String),
        "user_id": pl.Series(rng.integers(0, rows // 60 + 1, rows)).cast(pl.String),
        "item_id": pl.Series(rng.zipf(1.3, rows) % 50_000).cast(pl.String),
        "event_type": types,
        "event_time": (base + seconds.astype("timedelta64[s]")).astype("datetime64[us]"),
        "price": np.where(carted, np.round(rng.lognormal(3.5, 0.8, rows), 2), np.nan),
        "quantity": np.where(carted, rng.integers(1, 4, rows), -1),
        "device": np.array(["web", "ios", "android"])[rng.integers(0, 3, rows)],
    }).with_columns(
        pl.col("event_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        pl.col("price").fill_nan(None).cast(pl.String),
        pl.when(pl.col("quantity") > 0).then(pl.col("quantity").cast(pl.String)).alias("quantity"),
    )
    bad = rng.random(rows) < BAD_RATE
    which = rng.integers(0, 3, rows)
    return frame.with_columns(
        pl.when(pl.Series(bad & (which == 0))).then(pl.lit("n/a")).otherwise(pl.col("event_time")).alias("event_time"),
        pl.when(pl.Series(bad & (which == 1))).then(pl.lit("abc")).otherwise(pl.col("price")).alias("price"),
        pl.when(pl.Series(bad & (which == 2))).then(pl.lit("x")).otherwise(pl.col("quantity")).alias("quantity"),
    )


# ------------------------------------------------------------------------------------------------
# the two implementations (each run in a fresh subprocess)


def _ingest(path: Path, out: Path, batch_bytes: int) -> dict:
    """The collection asset's own call: the landed file → raw + quarantine + audit in one lake commit."""
    from datetime import UTC, datetime

    from governance.collection import ingest_partition
    from governance.contracts import EVENTS
    from governance.storage import Lake

    landing = out / "landing"
    day = landing / "events" / "2026-11-10"
    day.mkdir(parents=True)
    try:
        os.link(path, day / path.name)
    except OSError:
        shutil.copy(path, day / path.name)
    result = ingest_partition(Lake.at(out / "lake"), EVENTS, landing, "2026-11-10", run_id="bench",
                              ingested_at=datetime.now(UTC), batch_bytes=batch_bytes)
    return {"landed": result.rows_landed, "quarantined": result.quarantine.height}


def run_polars(path: Path, out: Path) -> dict:
    """Collection as it runs: a large CSV/JSON Lines file in batches, raw rows streamed to the lake."""
    from governance.collection import DEFAULT_BATCH_BYTES

    return _ingest(path, out, DEFAULT_BATCH_BYTES)


def run_polars_whole(path: Path, out: Path) -> dict:
    """The same with every file read whole (what collection did before batches): the in-run baseline."""
    return _ingest(path, out, 1 << 62)


def run_pandas(path: Path, out: Path) -> dict:
    """What a competent pandas 3 user writes: Arrow-backed read with type inference, then coercion
    of only the columns inference could not type, failures collected per column."""
    import hashlib
    from datetime import UTC, datetime

    import pandas as pd

    types = {"event_time": "timestamp", "price": "float", "quantity": "int"}
    required = ["event_id", "session_id", "item_id", "event_type", "event_time"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.suffix == ".csv":
        # only empty fields are missing: "n/a" in a timestamp column is a failure to report, as in Polars
        df = pd.read_csv(path, engine="pyarrow", dtype_backend="pyarrow", keep_default_na=False, na_values=[""],
                         dtype={c: "string[pyarrow]" for c in ("event_id", "session_id", "user_id", "item_id")})
    else:
        df = pd.read_parquet(path, dtype_backend="pyarrow")
    original = df.copy()
    reasons = pd.Series("", index=df.index, dtype="string[pyarrow]")
    for column, kind in types.items():
        col = df[column]
        if kind == "float" and pd.api.types.is_float_dtype(col):
            continue
        if kind == "int" and pd.api.types.is_integer_dtype(col):
            continue
        if kind == "timestamp" and pd.api.types.is_datetime64_any_dtype(col):
            continue
        if kind == "timestamp":
            parsed = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
        else:
            parsed = pd.to_numeric(col, errors="coerce")
            parsed = parsed.mask(parsed != parsed)  # Arrow-backed to_numeric leaves NaN, not NA, for failures
            if kind == "int":
                parsed = parsed.astype("Int64")
        failed = col.notna() & parsed.isna()
        reasons = reasons.where(~failed, reasons + f"{column}: '" + col.astype("string") + f"' is not a valid {kind}; ")
        df[column] = parsed
    for column in required:
        missing = df[column].isna() & original[column].isna()
        reasons = reasons.where(~missing, reasons + f"{column}: required value is missing; ")
    bad = reasons != ""
    quarantine = pd.DataFrame({
        "rule": "contract", "reason": reasons[bad], "file": path.name,
        "row_number": df.index[bad] + 1, "record": original[bad].to_json(orient="records", lines=True).splitlines(),
    })
    raw = df[~bad].assign(_source_file=path.name, _file_hash=digest, _row_number=df.index[~bad] + 1,
                          _ingested_at=datetime.now(UTC), _partition="2026-11-10")
    out.mkdir(parents=True, exist_ok=True)
    raw.to_parquet(out / "raw.parquet", compression="zstd")
    quarantine.to_parquet(out / "quarantine.parquet", compression="zstd")
    return {"landed": int((~bad).sum()), "quarantined": int(bad.sum())}


IMPLEMENTATIONS = {"polars": run_polars, "polars-whole": run_polars_whole, "pandas": run_pandas}


def measure(impl: str, path: Path) -> dict:
    """Run one implementation in a subprocess: wall time and that process's peak RSS."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, str(HERE), "--child", impl, str(path), out],
                              capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{impl} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(impl: str, path: str, out: str) -> None:
    # libraries are imported before the clock starts: the benchmark times the work, not imports
    import pandas  # noqa: F401

    import governance.collection  # noqa: F401
    import governance.storage  # noqa: F401

    started = time.perf_counter()
    counts = IMPLEMENTATIONS[impl](Path(path), Path(out))
    seconds = time.perf_counter() - started
    print(json.dumps({**counts, "seconds": seconds, "peak_bytes": peak_rss()}))


def peak_rss() -> int:
    """This process's own peak resident memory. Not ``ru_maxrss``: Linux carries the high-water mark of
    the image an ``exec`` replaced — here the forked copy of the parent, which has just made the
    input — into the child's, so a child smaller than its parent reported the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[3_000_000, 10_000_000])
    parser.add_argument("--formats", nargs="*", default=["csv", "parquet"], choices=["csv", "parquet"])
    parser.add_argument("--impls", nargs="*", default=list(IMPLEMENTATIONS), choices=list(IMPLEMENTATIONS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(HERE.parents[1]))
    print(f"landing → raw, events contract, {BAD_RATE:.1%} unparsable values; {os.cpu_count()} cores")
    print(f"{'rows':>11} {'format':>7} {'impl':>12} {'seconds':>8} {'rows/s':>12} {'peak MiB':>9} {'landed':>11} "
          f"{'quarant.':>9} {'× polars time':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            frame = make_events(rows)
            files = {fmt: Path(tmp) / f"events_{rows}.{fmt}" for fmt in args.formats}
            for fmt, path in files.items():
                getattr(frame, f"write_{fmt}")(path)
            del frame
            for fmt, path in files.items():
                print(f"  load average before: {os.getloadavg()[0]:.2f}", flush=True)
                results = {impl: measure(impl, path) for impl in args.impls}
                if len({r["landed"] for r in results.values()}) > 1:
                    print(f"  !! the implementations disagree: {results}")
                for impl, r in results.items():
                    ratio = (r["seconds"] / results["polars"]["seconds"]
                             if impl != "polars" and "polars" in results else None)
                    print(f"{rows:>11,} {fmt:>7} {impl:>12} {r['seconds']:>8.2f} {rows / r['seconds']:>12,.0f} "
                          f"{r['peak_bytes'] / 2**20:>9,.0f} {r['landed']:>11,} {r['quarantined']:>9,} "
                          f"{(f'{ratio:.2f}×' if ratio else ''):>13}", flush=True)
                path.unlink()


if __name__ == "__main__":
    main()
