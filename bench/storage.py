"""What partition commits cost a write: the lake's transactional write (version folder, SHA-256,
fsync, manifest, commit record, link swing) against a bare "write a temporary file and rename it".

    nice .venv/bin/python bench/storage.py [--rows 10000 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
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


if __name__ == "__main__":
    main()
