"""The compact key index of a partition: hashes of every raw row's business key and whole contract
row, with where the row was delivered — what finds duplicates that arrive on a later day.

Policy (one, for every duplicate rule): **the earliest delivery wins.** Deliveries are ordered by
partition (landing day), then landed file, then row. A later copy — re-sent on a later day within
the look-back window, or later in the same day — is quarantined with a reason naming the earlier
file, row and day; the earliest copy stays clean. With a look-back only, a day that has been
cleaned never changes when a later day lands, and the index is built from the *raw* partitions (not
from what cleaning kept), so cleaning days in any order gives the same tables.

An index holds two 64-bit hashes of the key (``k1``, ``k2``) and two of the row (``r1``, ``r2``):
128 bits, so a false match needs a collision of both. It is cached beside the lake
(``_meta/keys/<source>/<partition>.parquet``) with the raw partition's content hash and the Polars
version that hashed it, and rebuilt from raw when either changed.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from governance.contracts import CONTRACTS
from governance.storage import Lake

#: default look-back window for duplicates across days (Settings.duplicate_lookback_days)
DEFAULT_LOOKBACK_DAYS = 7
SEEDS = (0, 0x9E3779B9)
INDEX_SCHEMA = {"k1": pl.UInt64, "k2": pl.UInt64, "r1": pl.UInt64, "r2": pl.UInt64,
                "file": pl.String, "row": pl.Int64, "partition": pl.String}


def key_columns(source: str) -> list[str]:
    return [k for k in CONTRACTS[source].key if not k.startswith("_")]


def _hash(columns: list[str], seed: int) -> pl.Expr:
    if len(columns) == 1:
        return pl.col(columns[0]).hash(seed)
    return pl.struct(columns).hash(seed)


def key_hashes(source: str) -> dict[str, pl.Expr]:
    """The index's hash expressions over a raw frame of ``source`` (cleaning uses the same ones)."""
    keys, cols = key_columns(source), CONTRACTS[source].column_names
    return {"k1": _hash(keys, SEEDS[0]), "k2": _hash(keys, SEEDS[1]),
            "r1": _hash(cols, SEEDS[0]), "r2": _hash(cols, SEEDS[1])}


def build_index(source: str, raw: pl.DataFrame, partition: str | None) -> pl.DataFrame:
    return raw.select(**key_hashes(source), file=pl.col("_source_file"), row=pl.col("_row_number"),
                      partition=pl.lit(partition, dtype=pl.String))


def _cache_path(lake: Lake, source: str, partition: str) -> Path:
    return lake.root / "_meta" / "keys" / source / f"{partition}.parquet"


def partition_index(lake: Lake, source: str, partition: str, raw: pl.DataFrame | None = None) -> pl.DataFrame:
    """The key index of one raw partition, from the cache when it still matches the raw content."""
    digest = lake.manifest("raw", source, partition).get("parts", {}).get("data", {}).get("sha256")
    stamp = json.dumps({"raw": digest, "polars": pl.__version__}, sort_keys=True)
    path = _cache_path(lake, source, partition)
    meta = path.with_suffix(".json")
    if digest and path.exists() and meta.exists() and meta.read_text() == stamp:
        return pl.read_parquet(path)
    cols = [*CONTRACTS[source].column_names, "_source_file", "_row_number"]
    frame = raw if raw is not None else lake.scan("raw", source, [partition]).select(cols).collect()
    index = build_index(source, frame, partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    index.write_parquet(tmp)
    os.replace(tmp, path)
    meta.write_text(stamp)
    return index


def earlier_index(lake: Lake, source: str, partition: str | None, lookback_days: int) -> pl.DataFrame | None:
    """The key indexes of the raw partitions in the look-back window before ``partition``."""
    if partition is None or lookback_days <= 0 or CONTRACTS[source].time_column is None:
        return None
    try:
        day = date.fromisoformat(partition)
    except ValueError:
        return None
    start = (day - timedelta(days=lookback_days)).isoformat()
    days = [p for p in lake.partitions("raw", source) if start <= p < partition]
    if not days:
        return None
    return pl.concat([partition_index(lake, source, d) for d in days])


def earlier_raw(lake: Lake, source: str, partition: str | None, lookback_days: int) -> pl.DataFrame | None:
    """The raw rows of the partitions in the look-back window (for rules that compare content, such
    as near-duplicate reviews): raw, not clean, so the result does not depend on the order in which
    days were cleaned."""
    if partition is None or lookback_days <= 0:
        return None
    start = (date.fromisoformat(partition) - timedelta(days=lookback_days)).isoformat()
    days = [p for p in lake.partitions("raw", source) if start <= p < partition]
    if not days:
        return None
    return lake.scan("raw", source, days).collect()
