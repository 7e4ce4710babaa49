"""One partition through collection, cleaning and the catalog, in a child process that can be
killed (SIGKILL) at a chosen write point: ``python pipeline.py DATA_ROOT DAY SOURCES KILL_AT``.

``SOURCES`` is a comma-separated list (snapshot sources take no day). ``KILL_AT`` is ``none``,
``count`` (print the write points of the run, one per line), ``wait`` (print ``ready`` once imported,
then run: the parent kills at a random moment), or ``N``: kill this process at the N-th write point —
the N-th call of a filesystem or catalog mutation made by the lake or the catalog (``write_parquet``,
``os.replace``, ``os.symlink``, ``os.link``, ``os.mkdir``, ``os.unlink``, ``shutil.rmtree``, a catalog
write), each counted once before it runs and once after.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
POINTS: list[str] = []


def _arm(kill_at: int | None) -> None:
    def point(label: str) -> None:
        POINTS.append(label)
        if kill_at is not None and len(POINTS) == kill_at:
            print(f"killed at {kill_at}: {label}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner, name, label):
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.endswith("pathlib.py"):
                caller = caller.f_back
            if not caller.f_code.co_filename.endswith("storage.py"):
                return original(*args, **kwargs)  # only the lake's and the catalog's own writes are points
            where = f"{label} in {caller.f_code.co_name}"
            point(f"before {where}")
            result = original(*args, **kwargs)
            point(f"after {where}")
            return result

        setattr(owner, name, wrapped)

    from governance import storage

    wrap(pl.DataFrame, "write_parquet", "write_parquet")
    for name in ("replace", "symlink", "link", "mkdir", "unlink"):
        wrap(os, name, f"os.{name}")
    wrap(shutil, "rmtree", "rmtree")
    wrap(storage.Catalog, "_with_write_connection", "catalog write")


def run(data_root: Path, day: str, sources: tuple[str, ...] = ("products", "users", "events")) -> None:
    from governance.cleaning import clean_partition
    from governance.collection import ingest_partition
    from governance.contracts import CONTRACTS
    from governance.storage import Catalog, Lake

    lake = Lake.at(data_root / "lake")
    catalog = Catalog.at(data_root / "warehouse.duckdb", lake)
    landing = data_root / "landing"
    for source in sources:
        contract = CONTRACTS[source]
        partition = day if contract.partitioned else None
        ingest_partition(lake, contract, landing, partition, run_id="fault-suite", ingested_at=NOW)
        for layer in ("raw", "quarantine", "audit"):
            catalog.register(layer, source)
        clean_partition(lake, source, partition, run_id="fault-suite", now=NOW)
        for layer in ("clean", "quarantine", "audit"):
            catalog.register(layer, source)


if __name__ == "__main__":
    root, day, sources, kill = Path(sys.argv[1]), sys.argv[2], tuple(sys.argv[3].split(",")), sys.argv[4]
    _arm(int(kill) if kill.isdigit() else None)
    from governance.cleaning import clean_partition  # noqa: F401 - imports done before "ready"
    from governance.collection import ingest_partition  # noqa: F401

    if kill == "wait":
        print("ready", flush=True)
    run(root, day, sources)
    if kill == "count":
        for p in POINTS:
            print(p)
