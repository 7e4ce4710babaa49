"""Collection on Apache Spark: the same contracts and the same reader, one landed file or one batch of a
large file per Spark task.

What runs where:

* **driver** (the Dagster run worker, or whoever calls `ingest_partition_on_spark`): lists the
  partition's landed files (`landed_files`), refuses what is not a regular file, and for every CSV/JSON
  Lines file over ``batch_bytes`` does what the batched Polars collection does before it reads: one
  pass for the SHA-256 and the encoding decision (`_scan_text`), the compression check of the head, the
  header line, and the record-aligned batches (`_record_batches`: the driver keeps their byte ranges,
  not their bytes). Each smaller file (and each large one whose encoding needs its whole text) is one
  work item, each batch another.
* **Spark** runs the work items in a few tasks per core, consecutive items each
  (``spark.range(n).mapInArrow``), and keeps the results on its executors' disks
  (``persist(DISK_ONLY)``) until the driver has read them.
* **executors** (Python workers): a task reads its file or byte range from the landing zone and runs
  `read_bounded` — the record limits, the encoding, the reader and `enforce_contract` of
  governance/collection.py, nothing re-expressed — numbering its records from 1 (the one thing it
  cannot know is how many records the batches before it hold). It returns the raw, quarantine and
  audit rows as Arrow IPC and the file report as JSON.
* **driver** again: reads the results in landing order (``toLocalIterator``: one task's results at a
  time, the next task's prefetched) and does what `_Collector` does with its own reads: content
  already ingested (here or in another partition) is skipped, a batch's row numbers are moved on by
  the records of the batches before it, the batches' reports are merged, and the raw rows go to
  `ingest_partition`'s transaction as they come — raw, quarantine and audit published together, the
  ledger last, exactly as collection on Polars publishes them (`ingest_partition` is given
  `SparkCollector` to make).

So a Spark collection equals the Polars one row for row, lineage columns included;
`tests/test_spark.py` checks it on every injected fault. The landing zone must be readable from the
executors at the same path (a shared file system); the lake is written by the driver alone.
"""

from __future__ import annotations

import io
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa

from governance.collection import (
    FORMATS,
    CollectionError,
    FileReport,
    _Collector,
    _file_quarantine,
    _header_line,
    _merge_reports,
    _open_regular,
    _pread_full,
    _record_batches,
    _scan_text,
    file_hash,
    ingest_partition,
    read_bounded,
    refuse_before_reading,
    refused_file,
)
from governance.contracts import SourceContract
from governance.storage import Lake

RESULT_SCHEMA = "item long, digest string, refusal string, raw binary, quarantine binary, audit binary, report string"
_RESULT_ARROW = pa.schema([("item", pa.int64()), ("digest", pa.string()), ("refusal", pa.string()),
                           ("raw", pa.binary()), ("quarantine", pa.binary()), ("audit", pa.binary()),
                           ("report", pa.string())])


@dataclass
class _Item:
    """One Spark task's work: a whole file (``length`` None) or ``length`` bytes from ``start``."""

    path: str
    start: int = 0
    length: int | None = None
    header: bytes = b""
    digest: str = ""
    encoding: dict | None = None
    first: bool = True


@dataclass
class _Planned:
    """A landed entry as the driver found it: refused, read whole (one item), or batched (its items)."""

    path: Path
    rel: str
    refusal: str | None = None
    whole: int | None = None  # the item reading it whole
    fmt: str = ""
    digest: str = ""
    head_refusal: tuple[str, str] | None = None
    batches: list[int] = field(default_factory=list)  # items, in file order
    stat: tuple[int, int] | None = None


def _ipc(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="lz4")
    return buffer.getvalue()


def _from_ipc(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


def _read_item(contract: SourceContract, ctx: dict, item: _Item) -> dict:
    """What `_Collector` reads for one file or batch, read here (on an executor)."""
    path = Path(item.path)
    opened = _open_regular(path)
    if isinstance(opened, str):
        return {"refusal": opened}
    try:
        if item.length is None:  # as `_Collector._whole`
            size = os.fstat(opened).st_size
            data = _pread_full(opened, size, 0) if size else b""
            digest = file_hash(data)
            raw, quarantine, audit, report = read_bounded(path, contract, data=data, digest=digest, **ctx)
        else:  # as one batch of `_Collector._batched`, its records numbered from 1
            body = _pread_full(opened, item.length, item.start)
            if len(body) != item.length:
                raise CollectionError(f"{path}: the file changed while it was collected (still being written?); "
                                      "nothing of this partition was published, collect it again")
            digest = item.digest
            raw, quarantine, audit, report = read_bounded(
                path, contract, data=item.header + body if item.header else body, digest=digest,
                encoding={**item.encoding, "note": ""}, first_batch=item.first, **ctx)
    finally:
        os.close(opened)
    return {"digest": digest, "raw": _ipc(raw), "quarantine": _ipc(quarantine), "audit": _ipc(audit),
            "report": json.dumps(report.as_dict())}


def _read_items(contract: SourceContract, ctx: dict, items: list[_Item]):
    """The function each Spark task runs over its work items' numbers (see the module docstring)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for n in batch.column("id").to_pylist():  # work items (files, batches), never data rows
                yield pa.RecordBatch.from_pylist([{"item": n, "refusal": None, **_read_item(contract, ctx, items[n])}],
                                                 schema=_RESULT_ARROW)

    return run


class SparkCollector(_Collector):
    """`_Collector` with the reading done by Spark tasks; everything else is the collector's own."""

    def __init__(self, spark, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spark = spark

    def _plan(self) -> tuple[list[_Planned], list[_Item]]:
        """The landed entries in order and the work items they need (see the module docstring)."""
        planned, items = [], []
        known = dict(self.seen)  # content the driver already knows is ingested: its batches are not read
        for path in self.files:
            entry = _Planned(path, self._rel(path))
            planned.append(entry)
            opened = _open_regular(path)
            if isinstance(opened, str):
                entry.refusal = opened
                continue
            try:
                size = os.fstat(opened).st_size
                entry.fmt = FORMATS.get(path.suffix.lower()) or ""
                if entry.fmt in ("csv", "jsonl") and size > self.batch_bytes:
                    self._plan_batched(entry, opened, size, items, known)
            finally:
                os.close(opened)
            if not entry.digest and entry.whole is None:  # read whole (the task hashes it)
                entry.whole = len(items)
                items.append(_Item(str(path)))
        return planned, items

    def _plan_batched(self, entry: _Planned, fd: int, size: int, items: list[_Item], known: dict) -> None:
        """As the part of `_Collector._batched` before the reading; leaves ``entry.digest`` empty when
        the file is read whole after all."""
        before = os.fstat(fd)
        digest, encoding, start = _scan_text(fd, size)
        if encoding is None:  # the encoding needs the whole text to be decided: read whole
            return
        entry.digest, entry.stat = digest, (before.st_size, before.st_mtime_ns)
        if digest in known:  # a duplicate: reported when the results are walked, never read
            return
        known[digest] = entry.rel
        entry.head_refusal = refuse_before_reading(_pread_full(fd, 16, start), entry.fmt, self.ctx["max_record_bytes"])
        if entry.head_refusal is not None:
            return
        header = b""
        if entry.fmt == "csv":  # every batch is read under the file's header line
            first = _pread_full(fd, min(size - start, self.ctx["max_record_bytes"] + 1), start)
            if b"\n" not in first:  # a header line over the record limit: as a file read whole
                entry.digest, entry.stat = "", None
                del known[digest]
                return
            header = _header_line(first)
            start += len(header) + 1
            header += b"\n"
        offset = start
        for body in _record_batches(fd, start, size, self.batch_bytes, csv=entry.fmt == "csv"):
            if not body.isspace():
                entry.batches.append(len(items))
                items.append(_Item(str(entry.path), offset, len(body), header, digest, encoding,
                                   first=not entry.batches[:-1]))
            offset += len(body)

    def _results(self, items: list[_Item]) -> Iterator:
        """The tasks' results in item order, read one by one from where Spark keeps them."""
        if not items:
            return
        from pyspark import StorageLevel

        # a few tasks per core (consecutive items each, so the order holds): many small files or batches
        # do not pay a task's overhead each
        tasks = min(len(items), 4 * self.spark.sparkContext.defaultParallelism)
        job = self.spark.range(0, len(items), 1, numPartitions=tasks).mapInArrow(
            _read_items(self.contract, self.ctx, items), RESULT_SCHEMA).persist(StorageLevel.DISK_ONLY)
        try:
            job.count()  # every task runs now, in parallel; the driver then reads them in order
            for n, result in enumerate(job.toLocalIterator(prefetchPartitions=True)):
                if result["item"] != n:
                    raise RuntimeError(f"Spark returned work item {result['item']} where {n} was due")
                yield result
        finally:
            job.unpersist()

    def raw_frames(self) -> Iterator[pl.DataFrame]:
        planned, items = self._plan()
        results = self._results(items)
        try:
            yield from self._walk(planned, results)
        finally:
            results.close()  # a failure before the end: Spark's copies of the results are dropped all the same
        self.finished = True

    def _walk(self, planned: list[_Planned], results: Iterator) -> Iterator[pl.DataFrame]:
        """The results in landing order, as `_Collector.raw_frames` handles its own reads."""
        for entry in planned:
            if entry.refusal is not None:
                self._refused(entry.rel, entry.refusal)
            elif entry.whole is not None:
                raw = self._whole_result(entry, next(results))
                if raw is not None:
                    yield raw
            else:
                mine = itertools.islice(results, len(entry.batches))
                yield from self._batched_results(entry, mine)
                for _ in mine:  # the batches of a file found to be a duplicate: read, dropped
                    pass

    def _refused(self, rel: str, why: str) -> None:
        """As `_Collector.raw_frames` with an entry that is not a regular file."""
        quarantine, report = refused_file(self.contract, rel, why, run_id=self.ctx["run_id"],
                                          partition=self.ctx["partition"], ingested_at=self.ctx["ingested_at"])
        self.quarantines.append(quarantine)
        self.reports.append(report)

    def _whole_result(self, entry: _Planned, result) -> pl.DataFrame | None:
        """As `_Collector._whole`, with the task's reading."""
        if result["refusal"] is not None:  # replaced by a link or a pipe after the driver listed it
            self._refused(entry.rel, result["refusal"])
            return None
        digest = result["digest"]
        if digest in self.seen:
            self.reports.append(FileReport(entry.rel, digest, entry.fmt, "duplicate_skipped",
                                           note=f"same content as {self.seen[digest]}, already ingested"))
            return None
        self.seen[digest] = entry.rel
        self.quarantines.append(_from_ipc(result["quarantine"]))
        self.audits.append(_from_ipc(result["audit"]))
        self.reports.append(FileReport(**json.loads(result["report"])))
        return self._landed(_from_ipc(result["raw"]))

    def _batched_results(self, entry: _Planned, results: Iterator) -> Iterator[pl.DataFrame]:
        """As the rest of `_Collector._batched`, with the tasks' reading."""
        digest = entry.digest
        if digest in self.seen:
            self.reports.append(FileReport(entry.rel, digest, entry.fmt, "duplicate_skipped",
                                           note=f"same content as {self.seen[digest]}, already ingested"))
            return
        self.seen[digest] = entry.rel
        if entry.head_refusal is not None:
            rule, why = entry.head_refusal
            self.quarantines.append(_file_quarantine(
                self.contract, entry.rel, rule, f"{entry.rel}: {why}", run_id=self.ctx["run_id"],
                partition=self.ctx["partition"], quarantined_at=self.ctx["ingested_at"]))
            self.reports.append(FileReport(entry.rel, digest, entry.fmt, "unreadable", rows_in_file=1,
                                           rows_quarantined=1, note=f"{entry.rel}: {why}"))
            return
        reports: list[FileReport] = []
        offset = 0
        for result in results:
            if result["refusal"] is not None:  # the path leads elsewhere now: not the file the driver cut
                raise CollectionError(f"{entry.rel}: the file changed while it was collected ({result['refusal']}); "
                                      "nothing of this partition was published, collect it again")
            report = FileReport(**json.loads(result["report"]))
            # the records of the batches before this one: what `row_offset` adds when Polars reads them
            shift = pl.col("row_number") + offset
            raw = _from_ipc(result["raw"]).with_columns(pl.col("_row_number") + offset)
            self.quarantines.append(_from_ipc(result["quarantine"]).with_columns(shift))
            self.audits.append(_from_ipc(result["audit"]).with_columns(shift))
            offset += report.rows_in_file
            reports.append(report)
            if raw.height:
                yield self._landed(raw)
        now = os.lstat(entry.path)
        if (now.st_size, now.st_mtime_ns) != entry.stat:
            raise CollectionError(f"{entry.rel}: the file changed while it was collected (still being written?); "
                                  "nothing of this partition was published, collect it again")
        if not reports:  # blank text only: the one "empty_file" row of a file read whole
            _, quarantine, _, report = read_bounded(entry.path, self.contract, data=b"", digest=digest, **self.ctx)
            self.quarantines.append(quarantine)
            reports = [report]
        self.reports.append(_merge_reports(reports, len(reports)))


def ingest_partition_on_spark(spark, lake: Lake, contract: SourceContract, landing_root: Path, partition: str | None,
                              **kwargs):
    """`ingest_partition` with the files read by Spark tasks (keywords as there); returns what it returns."""
    if getattr(lake, "url", None):  # governance.object_store.ObjectLake
        raise RuntimeError(f"engine=spark needs a lake on a file system the driver and executors share; the lake is "
                           f"{lake.url}: collection on Spark is not set up or tested with object storage — collect "
                           "with engine=polars, or put the lake and the landing zone on a shared file system")

    def collector(*args, **kw) -> SparkCollector:
        return SparkCollector(spark, *args, **kw)

    return ingest_partition(lake, contract, Path(landing_root), partition, make_collector=collector, **kwargs)
