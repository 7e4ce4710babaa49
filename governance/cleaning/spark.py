"""Cleaning on Apache Spark: the same rules and the same engine, one day partition per Spark task.

What runs where:

* **driver** (the Dagster run worker, or whoever calls `clean_partitions`): resolves the committed
  raw files of the partitions, loads the reference tables once (`load_references`: the clean
  catalog and users, the ids ever landed, the product-id map) and broadcasts them as Arrow IPC;
  collects the per-rule counts at the end.
* **Spark** reads the raw Parquet files (its own reader: the files may be anywhere Spark reads),
  tags each row with its position in its file (Parquet ``_metadata.row_index``) and groups the rows
  by partition (``groupBy(day).applyInArrow``): a shuffle that brings each day to one task.
* **executors** (Python workers): each task gets one day's rows as Arrow, restores the landing
  order from the row index, adds the day's look-back window from the lake (the key index of the
  earlier raw days, `partition_references` — what the Polars path reads), runs `clean_frame` — the
  rules of `governance/cleaning/rules.py` through the engine of `engine.py`, nothing re-expressed —
  and publishes the day's clean, quarantine and audit tables into the lake as one transaction
  (`publish`, the same commit protocol as the Polars path). It returns only the counts.

So the rules exist once, and a Spark result equals the Polars result row for row by construction;
`tests/test_spark.py` checks it. Why not compile the rules to Spark SQL: the blocks are Polars
expressions plus frame-level steps (hash-narrowed windows, per-value maps, scatter of findings), and
a second rendering would be the hand-maintained copy the rules must not have. The price: a day is
the unit of parallelism (a day must fit one executor's memory: about 3.4 GiB at 10M events), which
is also the unit every rule that looks at other rows (duplicates, sessions, price spreads) needs.

The lake must be reachable from the executors at the same root (a shared file system or object
storage), and the executors' Python must have this package (and Polars) installed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator, Tuple  # noqa: UP035 - pyspark infers the UDF's kind from these hints

import polars as pl
import pyarrow as pa

from governance.cleaning import clean_frame, clean_partition, load_references, partition_references, publish
from governance.cleaning.engine import CleaningResult, Context, RuleOutcome
from governance.cleaning.keyindex import DEFAULT_LOOKBACK_DAYS
from governance.storage import Lake

#: a raw row's position in its partition's file (the landing order the duplicate rules keep)
ORDER = "__spark_row"
#: the partition a raw row belongs to ("" for a snapshot source)
DAY = "__spark_day"
OUTCOME_SCHEMA = ("partition string, position int, rule string, action string, rows long, skipped string, "
                  "rows_in long, rows_clean long, rows_quarantined long, rows_audit long")


@dataclass
class PartitionCleaning:
    """What cleaning one partition did (the tables themselves are in the lake)."""

    partition: str | None
    outcomes: list[RuleOutcome] = field(default_factory=list)
    rows_in: int = 0
    rows_clean: int = 0
    rows_quarantined: int = 0
    rows_audit: int = 0
    #: "spark" when an executor cleaned it; "driver" for a partition without raw rows (no task to run)
    where: str = "spark"

    @property
    def conserved(self) -> bool:
        return self.rows_in == self.rows_clean + self.rows_quarantined


def _ipc(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    return buffer.getvalue()


def _from_ipc(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


def _clean_group(lake_root: str, source: str, run_id: str, now: datetime, lookback_days: int, shared):
    """The function each Spark task runs over one partition's rows (see the module docstring)."""

    def run(key: Tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:  # noqa: UP006
        day = key[0].as_py()
        partition = day or None
        # each Arrow batch released once converted; then the landing order, which Spark's shuffle does
        # not keep and the Parquet row index does, restored column by column (one contiguous chunk
        # each, as `Lake.read` gives the Polars path) so the day is never held three times
        arrived = pl.concat([pl.from_arrow(batch) for batch in batches], how="vertical", rechunk=False)
        order = arrived.get_column(ORDER).arg_sort()
        columns = []
        for name in [c for c in arrived.columns if c not in (ORDER, DAY)]:
            columns.append(arrived.get_column(name).gather(order))
            arrived = arrived.drop(name)
        del arrived, order
        raw = pl.DataFrame(columns)
        del columns
        lake = Lake.at(lake_root)
        refs = partition_references(lake, source, partition, lookback_days,
                                    shared={name: _from_ipc(data) for name, data in shared.value.items()})
        ctx = Context(source=source, partition=partition, run_id=run_id, now=now, references=refs)
        handed_over = [raw]  # as clean_partition: the engine frees raw columns as it replaces them
        del raw
        result = clean_frame(source, handed_over.pop(), ctx)
        publish(lake, source, partition, result)
        outcomes = result.outcomes
        yield pa.RecordBatch.from_pydict({
            "partition": [day] * len(outcomes),
            "position": list(range(len(outcomes))),
            "rule": [o.rule for o in outcomes],
            "action": [o.action for o in outcomes],
            "rows": [o.rows for o in outcomes],
            "skipped": [o.skipped for o in outcomes],
            "rows_in": [result.rows_in] * len(outcomes),
            "rows_clean": [result.clean.height] * len(outcomes),
            "rows_quarantined": [result.quarantine.height] * len(outcomes),
            "rows_audit": [result.audit.height] * len(outcomes),
        }, schema=pa.schema([("partition", pa.string()), ("position", pa.int32()), ("rule", pa.string()),
                             ("action", pa.string()), ("rows", pa.int64()), ("skipped", pa.string()),
                             ("rows_in", pa.int64()), ("rows_clean", pa.int64()),
                             ("rows_quarantined", pa.int64()), ("rows_audit", pa.int64())]))

    return run


def raw_rows(spark, lake: Lake, source: str, partitions: Iterable[str | None]):
    """The raw partitions as one Spark DataFrame, each row tagged with its partition (``DAY``) and its
    position in the partition's file (``ORDER``). The committed files are resolved here, once, so a
    commit while Spark reads cannot mix two versions."""
    from pyspark.sql import functions as F

    frames = []
    for partition in partitions:
        path = lake.part_path("raw", source, partition).resolve(strict=True)
        # file:// + the plain path: Hadoop reads "date=…" literally (as_uri would escape the "=")
        frames.append(spark.read.parquet(f"file://{path}").select(
            "*", F.col("_metadata.row_index").alias(ORDER), F.lit(partition or "").alias(DAY)))
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def clean_partitions(spark, lake: Lake, source: str, partitions: Iterable[str | None], *, run_id: str,
                     now: datetime, lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> dict[str | None, PartitionCleaning]:
    """Clean ``partitions`` of ``source`` on Spark and publish each into the lake (one transaction per
    partition, as `clean_partition`); returns what each partition's rules did."""
    if getattr(lake, "url", None):  # governance.object_store.ObjectLake
        raise RuntimeError(f"engine=spark needs a lake on a file system the driver and executors share; the lake is "
                           f"{lake.url}: Spark would read it through s3a (hadoop-aws), which is not set up or tested "
                           "here — clean with engine=polars, or put the lake on a shared file system")
    partitions = list(dict.fromkeys(partitions))
    for partition in partitions:
        if not lake.exists("raw", source, partition):
            raise FileNotFoundError(f"raw.{source} ({partition or 'snapshot'}) has not been collected")
    shared = spark.sparkContext.broadcast(
        {name: _ipc(frame) for name, frame in load_references(lake, source).items()})
    try:
        rows = raw_rows(spark, lake, source, partitions)
        job = rows.groupBy(DAY).applyInArrow(
            _clean_group(str(lake.root), source, run_id, now, lookback_days, shared), schema=OUTCOME_SCHEMA)
        counts = pl.from_arrow(job.toArrow())
    finally:
        shared.unpersist()
    done: dict[str | None, PartitionCleaning] = {}
    for (day,), group in counts.sort("partition", "position").group_by("partition", maintain_order=True):
        first = group.row(0, named=True)
        done[day or None] = PartitionCleaning(
            partition=day or None,
            outcomes=[RuleOutcome(r["rule"], r["action"], r["rows"], r["skipped"]) for r in group.iter_rows(named=True)],
            rows_in=first["rows_in"], rows_clean=first["rows_clean"], rows_quarantined=first["rows_quarantined"],
            rows_audit=first["rows_audit"])
    for partition in partitions:
        if partition not in done:  # no raw rows: no group, so no task; the (empty) tables are written here
            result = clean_partition(lake, source, partition, run_id=run_id, now=now, lookback_days=lookback_days)
            done[partition] = PartitionCleaning(partition, result.outcomes, result.rows_in, result.clean.height,
                                                result.quarantine.height, result.audit.height, where="driver")
    return {p: done[p] for p in partitions}


def clean_partition_on_spark(spark, lake: Lake, source: str, partition: str | None, *, run_id: str, now: datetime,
                             lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> CleaningResult:
    """One partition cleaned on Spark, returned as `clean_partition` returns it: the tables as they
    were published (read back from the lake) and the rules' outcomes from the executor."""
    done = clean_partitions(spark, lake, source, [partition], run_id=run_id, now=now,
                            lookback_days=lookback_days)[partition]
    result = CleaningResult(
        clean=lake.read("clean", source, partition),
        quarantine=lake.read("quarantine", source, partition, part="cleaning"),
        audit=lake.read("audit", source, partition, part="cleaning"),
        outcomes=done.outcomes, rows_in=done.rows_in)
    if (result.clean.height, result.quarantine.height) != (done.rows_clean, done.rows_quarantined):
        raise RuntimeError(f"clean.{source} {partition}: the lake holds {result.clean.height:,} clean and "
                           f"{result.quarantine.height:,} quarantined rows, the Spark task wrote "
                           f"{done.rows_clean:,} and {done.rows_quarantined:,} (another run replaced it meanwhile?)")
    return result
