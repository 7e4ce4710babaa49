"""What partition commits cost a write: the lake's transactional write (version folder, SHA-256,
fsync, manifest, commit record, link swing, view tree) against a bare "write a temporary file and
rename it"; and what publishing the catalog's view tree costs one commit in a lake of many partitions.

    nice .venv/bin/python bench/storage.py [--rows 10000 1000000] [--repeat 5] [--tables 30 --days 365]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from governance.storage import PARQUET_COMPRESSION, PARQUET_COMPRESSION_LEVEL, Lake


def frame(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({
        "event_id": [f"e{i}" for i in range(rows)],
        "session_id": rng.integers(0, rows // 10 + 1, rows).astype(str),
        "item_id": rng.integers(0, 50_000, rows).astype(str),
        "price": rng.random(rows) * 100,
        "event_time": pl.datetime_range(pl.datetime(2026, 11, 10), pl.datetime(2026, 11, 10, 23), interval="1s",
                                        eager=True).sample(rows, with_replacement=True, seed=0),
    })


def bare(root: Path, df: pl.DataFrame) -> None:
    path = root / "bare" / "date=2026-11-10" / "data.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    df.write_parquet(tmp, compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tables", type=int, default=30, help="tables of the big lake for the view-tree figure")
    parser.add_argument("--days", type=int, default=365, help="daily partitions per table of the big lake")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    for rows in args.rows:
        df = frame(rows)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            lake = Lake.at(root / "lake")
            t_bare, t_lake, t_tx3 = [], [], []
            for _ in range(args.repeat):
                t = time.perf_counter(); bare(root, df); t_bare.append(time.perf_counter() - t)
                t = time.perf_counter(); lake.write("raw", "events", df, "2026-11-10"); t_lake.append(time.perf_counter() - t)
                t = time.perf_counter()
                with lake.transaction():  # a stage's three outputs, published together
                    for layer in ("clean", "quarantine", "audit"):
                        lake.write(layer, "events", df, "2026-11-10")
                t_tx3.append(time.perf_counter() - t)
            size = (root / "bare" / "date=2026-11-10" / "data.parquet").stat().st_size
            b, l, x = statistics.median(t_bare), statistics.median(t_lake), statistics.median(t_tx3)
            print(f"{rows:>10,} rows ({size / 2**20:.1f} MiB): bare write+rename {b * 1000:8.1f} ms, lake write "
                  f"{l * 1000:8.1f} ms (+{(l - b) * 1000:.1f} ms, {100 * (l - b) / b:+.0f}%), 3-table transaction "
                  f"{x * 1000:8.1f} ms")

    view_tree_cost(args.tables, args.days, args.repeat)


def view_tree_cost(tables: int, days: int, repeat: int) -> None:
    """One small commit in a lake of ``tables`` × ``days`` partitions: the whole write, and the view
    tree's share (a new folder of links for the touched table, one link per table, one rename)."""
    tiny = pl.DataFrame({"a": [1]})
    dates = [(date(2024, 1, 1) + timedelta(days=d)).isoformat() for d in range(days)]
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake.at(Path(tmp) / "lake")
        with lake.transaction():
            for t in range(tables):
                for d in dates:
                    lake.write("clean", f"table_{t:03d}", tiny, d)
        t_write, t_tree = [], []
        for i in range(repeat):
            t = time.perf_counter(); lake.write("clean", "table_000", tiny, dates[i]); t_write.append(time.perf_counter() - t)
            version = lake.partition_dir("clean", "table_000", dates[i]) / os.readlink(
                lake.partition_dir("clean", "table_000", dates[i]) / "current")
            t = time.perf_counter(); lake.views.publish([version]); t_tree.append(time.perf_counter() - t)
        print(f"lake of {tables} tables x {days} days ({tables * days:,} partitions): one 1-row commit "
              f"{statistics.median(t_write) * 1000:.1f} ms, of which the view tree "
              f"{statistics.median(t_tree) * 1000:.1f} ms (median of {repeat})")


if __name__ == "__main__":
    main()
