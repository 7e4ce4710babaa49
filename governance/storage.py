"""Where every table lives: the Parquet lake (store of record) and the DuckDB catalog over it.

Layout::

    <lake_root>/<layer>/<table>/<partition>/current -> v-<txid>       (the committed version)
    <lake_root>/<layer>/<table>/<partition>/v-<txid>/<part>.parquet   (one file per part)
    <lake_root>/<layer>/<table>/<partition>/v-<txid>/_manifest.json   (rows, bytes, SHA-256 per part)

``<partition>`` is ``date=YYYY-MM-DD`` for daily tables and ``all`` for snapshot tables; ``<part>`` is
``data`` for the table itself (quarantine and audit tables have one part per stage that writes them).

Partition commits. Every write goes into a new version directory ``v-<txid>`` that nobody reads; a
*transaction* (:meth:`Lake.transaction`) may write several tables of several layers (a stage's rows,
quarantine and audit of one partition). Commit: (1) each touched partition's version directory gets
the parts it did not rewrite hard-linked from the committed version and a manifest; (2) one commit
record ``_meta/tx/<txid>.json`` naming every version is written atomically — *the commit point*;
(3) each partition's ``current`` link is swung to its new version (an atomic rename); (4) superseded
versions and the record are removed. A writer killed before (2) leaves only unreferenced version
directories, removed by the next write of that partition; one killed after (2) is rolled forward by
the next reader or writer of the lake. Readers follow only ``current``, so a partition is published
whole, in every layer, or not at all; a folder without ``current`` is absent. The catalog's views read a
:class:`ViewTree` instead — links for the whole lake swung by one rename after step (3) — because a
plain DuckDB session cannot roll a transaction forward. A single :meth:`Lake.write` outside a
transaction is its own transaction.

Each table partition is written under an exclusive ``flock`` on its ``.lock`` file while it is
committed, so two runs of one partition serialise (the last commit wins, whole); a transaction's own
``_meta/tx/<txid>.lock`` is held for its lifetime, which is how a later run tells a live writer's
version directory from a dead one's (the kernel releases the lock of a killed process).

The DuckDB catalog holds only *views* over the view tree's globs: derived state. Writers never write
rows into DuckDB, so any number of partitions can be materialized in parallel; the catalog is
written only when a view is missing or stale, and every registration re-creates whatever views the
lake has and the catalog lacks (nothing trusts a marker file). :meth:`Catalog.rebuild` makes it again
from the lake alone (``governance catalog rebuild``). When the file is held by someone else (an
analyst's open session), views are retried briefly and then deferred to the next run with a warning:
a materialization never fails because of the catalog.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import hashlib
import json
import logging
import os
import random
import shutil
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

log = logging.getLogger(__name__)

#: Layers of the lifecycle; each is a schema in the DuckDB catalog.
LAYERS = ("raw", "quarantine", "audit", "clean", "labelled", "integrated", "quality", "reco", "search", "experiments")

SNAPSHOT = "all"
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 1
CURRENT = "current"
VERSION_PREFIX = "v-"
MANIFEST = "_manifest.json"
PARTITION_LOCK = ".lock"


def read_contiguous(path: Path | str) -> pl.DataFrame:
    """A Parquet file as a frame with one chunk per column (the cleaning engine's expressions realign
    chunked columns at every step), read column by column: rechunking the whole frame at once would
    hold the row-group chunks and the contiguous copy together (10M events: 2.3 instead of 4.2 GiB
    peak, and 2.7 instead of 3.8 s)."""
    names = pl.read_parquet_schema(path)
    return pl.DataFrame([pl.read_parquet(path, columns=[name]).to_series().rechunk() for name in names])


def partition_dirname(partition: str | None) -> str:
    return SNAPSHOT if partition is None else f"date={partition}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_batches(frames: Iterable[pl.DataFrame], path: Path | str) -> int:
    """Write frames of one schema to one Parquet file as they come (one row group or more each),
    encoding batch *n* in a thread while the caller makes batch *n + 1*; at most one batch waits.
    Returns the rows written. The iterable must yield at least one frame (it may be empty)."""
    import queue
    import threading

    import pyarrow.parquet as pq

    pending: queue.Queue = queue.Queue(maxsize=1)
    failed: list[BaseException] = []
    dictionary: list[str] = []  # text columns with few distinct values (decided on the first batch)

    def encode() -> None:
        writer = None
        try:
            while (table := pending.get()) is not None:
                if failed:
                    continue
                if writer is None:
                    # dictionary pages only where they pay: trying them on ids costs more than the rest
                    writer = pq.ParquetWriter(str(path), table.schema, compression=PARQUET_COMPRESSION,
                                              compression_level=PARQUET_COMPRESSION_LEVEL, use_dictionary=dictionary)
                writer.write_table(table.cast(writer.schema))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            failed.append(exc)
            while pending.get() is not None:
                pass
        finally:
            if writer is not None:
                writer.close()

    thread = threading.Thread(target=encode, name="parquet-batches", daemon=True)
    thread.start()
    rows = 0
    try:
        for frame in frames:
            if failed:
                break
            if not rows and not dictionary:
                dictionary.extend(c for c, t in frame.schema.items() if t == pl.String
                                  and frame[c].n_unique() <= max(1, frame.height // 10))
            rows += frame.height
            pending.put(frame.to_arrow())
    finally:
        pending.put(None)
        thread.join()
    if failed:
        raise failed[0]
    if not Path(path).exists():
        raise ValueError(f"no batch to write to {path}")
    return rows


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_tmps(folder: Path, name: str = "*") -> None:
    """Temporary files (``.<name>.<pid>.<hex>.tmp``) left by writers that died before their rename."""
    for tmp in folder.glob(f".{name}.*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 3)[-3])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            tmp.unlink(missing_ok=True)


def _atomic_text(path: Path, text: str, fsync: bool = False) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if fsync:
        _fsync_dir(path.parent)


def _new_txid() -> str:
    # time first, so versions sort by when their transaction began
    return f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _txid_of(version_dir_name: str) -> str:
    return version_dir_name.removeprefix(VERSION_PREFIX)


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


_ACTIVE: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar("governance_lake_tx", default=None)


@dataclass
class _Touched:
    layer: str
    table: str
    pdir: Path
    version: Path
    parts: dict[str, dict] = field(default_factory=dict)


class Transaction:
    """Writes that become visible together (see the module docstring). Use :meth:`Lake.transaction`."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.id = _new_txid()
        self.touched: dict[Path, _Touched] = {}
        self.committed = False
        self._lock_path = lake.tx_dir / f"{self.id}.lock"
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        # locked under a private name, then renamed: the lock file is never visible unlocked, so no
        # other process can take a starting writer for a dead one
        private = self._lock_path.with_name(f".{self.id}.lock.{os.getpid()}.starting.tmp")
        self._lock_fd = os.open(private, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        os.rename(private, self._lock_path)

    def write(self, layer: str, table: str, frame: pl.DataFrame | pl.LazyFrame | Iterable[pl.DataFrame],
              partition: str | None, part: str) -> Path:
        pdir = self.lake.table_dir(layer, table) / partition_dirname(partition)
        entry = self.touched.get(pdir)
        if entry is None:
            pdir.mkdir(parents=True, exist_ok=True)
            self.lake._tidy(pdir)
            entry = _Touched(layer, table, pdir, pdir / f"{VERSION_PREFIX}{self.id}")
            entry.version.mkdir()
            self.touched[pdir] = entry
        path = entry.version / f"{part}.parquet"
        if isinstance(frame, pl.LazyFrame):  # streamed to the file in batches (bounded memory)
            frame.sink_parquet(path, compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL)
            rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        elif not isinstance(frame, pl.DataFrame):  # an iterator of frames, written as they come
            rows = write_batches(frame, path)
        else:
            frame.write_parquet(path, compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL)
            rows = frame.height
        entry.parts[part] = {"rows": rows, "bytes": path.stat().st_size, "sha256": _sha256(path), "txid": self.id}
        return pdir / CURRENT / path.name

    def commit(self) -> None:
        if not self.touched:
            return
        with contextlib.ExitStack() as locks:
            for pdir in sorted(self.touched):  # a global order: no two committers wait on each other
                locks.enter_context(_flock(pdir / PARTITION_LOCK))
            for entry in self.touched.values():
                self._complete(entry)
            # every version's files and folder on disk before the commit record names them (in parallel:
            # each fsync waits on the disk, not the CPU)
            files = [f for e in self.touched.values() for f in e.version.iterdir()]
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(_fsync_file, files))
                list(pool.map(_fsync_dir, [e.version for e in self.touched.values()]))
            missing = [str(e.version) for e in self.touched.values() if not (e.version / MANIFEST).exists()]
            if missing:  # never name a version that is not whole on disk
                raise RuntimeError(f"lake transaction {self.id}: version folder(s) vanished before commit: {missing}")
            record = self.lake.tx_dir / f"{self.id}.json"
            _atomic_text(record, json.dumps({
                "txid": self.id,
                "versions": [str(e.version.relative_to(self.lake.root)) for e in self.touched.values()],
            }), fsync=True)  # ← the commit point
            self.committed = True  # from here on, an error is finished by recovery, never undone
            self.lake._publish(self.id, [e.version for e in self.touched.values()])
            record.unlink(missing_ok=True)

    def _complete(self, entry: _Touched) -> None:
        """Carry the parts this transaction did not rewrite over from the committed version; the manifest."""
        current = entry.pdir / CURRENT
        previous = self.lake._read_manifest(current) if current.exists() else {}
        for old in sorted(current.glob("*.parquet")) if current.exists() else []:
            if old.stem in entry.parts:
                continue
            try:
                os.link(old.resolve(), entry.version / old.name)
            except OSError:
                shutil.copy2(old, entry.version / old.name)
            info = previous.get("parts", {}).get(old.stem)
            entry.parts[old.stem] = info or {"rows": pl.scan_parquet(old).select(pl.len()).collect().item(),
                                             "bytes": old.stat().st_size, "sha256": _sha256(old),
                                             "txid": _txid_of(os.readlink(current))}
        _atomic_text(entry.version / MANIFEST, json.dumps({
            "txid": self.id, "layer": entry.layer, "table": entry.table, "partition": entry.pdir.name,
            "parts": dict(sorted(entry.parts.items())),
        }, indent=1))

    def abort(self) -> None:
        if self.committed:  # published or to be rolled forward by the next reader: keep every version
            return
        for entry in self.touched.values():
            shutil.rmtree(entry.version, ignore_errors=True)
        self.touched.clear()

    def close(self) -> None:
        os.close(self._lock_fd)
        self._lock_path.unlink(missing_ok=True)


VIEWS_DIR = "_meta/views"
VIEWS_HEAD = "head"


@dataclass(frozen=True)
class ViewTree:
    """What the catalog's views read: one tree of links for the whole lake, published by ONE atomic
    rename, so a DuckDB session opened on the catalog never sees half of a transaction — even when its
    writer was killed between two partitions' ``current`` swings (the Lake's own readers roll such a
    transaction forward first; a plain DuckDB session cannot)::

        _meta/views/head -> g-<id>                                   (swung once per transaction)
        _meta/views/g-<id>/<layer>/<table> -> ../../t/<layer>/<table>/<id'>
        _meta/views/t/<layer>/<table>/<id'>/<partition> -> …/<layer>/<table>/<partition>/v-<txid>

    A transaction's tree is the previous tree with its own partitions' links replaced — never read from
    other partitions' ``current``, which another writer may be swinging — and only the tables it touched
    get a new table folder, so a commit costs O(tables + partitions of the touched tables). The previous
    trees stay (:data:`KEEP_TREES`) for queries in flight; older ones and crashed builds are removed.
    Links are relative, so a lake can be copied or moved."""

    root: Path
    KEEP_TREES = 3

    @property
    def base(self) -> Path:
        return self.root / VIEWS_DIR

    @property
    def head(self) -> Path:
        return self.base / VIEWS_HEAD

    def glob(self, layer: str, table: str) -> str:
        return str(self.head / layer / table / "*" / "*.parquet")

    @staticmethod
    def _links(folder: Path) -> dict[str, str]:
        """A table folder of the tree: partition folder → version folder name."""
        return {p.name: os.readlink(p).rsplit("/", 1)[-1] for p in sorted(folder.iterdir()) if p.is_symlink()}

    @staticmethod
    def _committed(table_dir: Path) -> dict[str, str]:
        """A lake table's partitions: partition folder → its ``current`` version folder name."""
        return {p.name: os.readlink(p / CURRENT) for p in sorted(table_dir.iterdir())
                if (p / CURRENT).is_symlink() and (p / CURRENT).exists()}

    def tables(self) -> list[tuple[str, str]]:
        """(layer, table) of every table the published tree shows at least one readable partition of
        (a table folder removed from the lake by hand leaves only dangling links)."""
        if not self.head.is_dir():
            return []
        return [(layer.name, table.name) for layer in sorted(self.head.iterdir()) if layer.name in LAYERS
                for table in sorted(layer.iterdir()) if self._readable(table)]

    @staticmethod
    def _readable(table: Path) -> bool:
        with os.scandir(table) as links:
            return any(os.path.exists(link) for link in links)

    def published(self) -> dict[tuple[str, str], dict[str, str]]:
        """(layer, table) → partition folder → version folder name, as the catalog's views see them."""
        if not self.head.is_dir():
            return {}
        return {(layer_dir.name, table.name): self._links(table)
                for layer_dir in sorted(p for p in self.head.iterdir() if p.is_dir())
                for table in sorted(layer_dir.iterdir())}

    def differences(self) -> list[str]:
        """Where the published tree differs from the lake's committed versions (after a roll-forward
        there should be none; ``governance catalog check`` reports them, ``rebuild`` mends them)."""
        published = self.published()
        problems = []
        for layer in LAYERS:
            for tdir in sorted(p for p in (self.root / layer).glob("*") if p.is_dir()):
                committed = self._committed(tdir)
                shown = published.get((layer, tdir.name), {})
                problems += [f"view tree: {layer}.{tdir.name} {partition} shows {shown.get(partition)}, committed {version}"
                             for partition, version in committed.items() if shown.get(partition) != version]
        return problems

    def publish(self, versions: Iterable[Path] | None) -> None:
        """Publish a transaction's version folders (``None``: rebuild the whole tree from the lake's
        ``current`` links — for ``catalog rebuild`` and a lake without a tree)."""
        self.base.mkdir(parents=True, exist_ok=True)
        with _flock(self.base / PARTITION_LOCK):
            carried = self.head.resolve() if versions is not None and self.head.is_dir() else None
            changed: dict[tuple[str, str], dict[str, str]] = {}
            if carried is None:  # the whole tree, from the lake's current links
                for layer in LAYERS:
                    for tdir in sorted(p for p in (self.root / layer).glob("*") if p.is_dir()):
                        if links := self._committed(tdir):
                            changed[(layer, tdir.name)] = links
            else:  # the published tree with this transaction's partitions replaced
                for version in versions:
                    pdir = version.parent
                    layer, table = pdir.parent.parent.name, pdir.parent.name
                    if (layer, table) not in changed:
                        shown = carried / layer / table
                        changed[(layer, table)] = (self._links(shown) if shown.is_dir()
                                                   else self._committed(pdir.parent))  # new to the tree
                    changed[(layer, table)][pdir.name] = version.name
            gen_id = _new_txid()
            gen = self.base / f"g-{gen_id}"
            new_dirs = []
            for (layer, table), links in sorted(changed.items()):
                tdir = self.base / "t" / layer / table / gen_id
                tdir.mkdir(parents=True)
                for partition, version in sorted(links.items()):
                    os.symlink(f"../../../../../../{layer}/{table}/{partition}/{version}", tdir / partition)
                new_dirs.append(tdir)
            carried = self.head.resolve() if versions is not None and self.head.is_dir() else None
            for layer in LAYERS:
                keys = sorted({t for (lay, t) in changed if lay == layer} |
                              ({t.name for t in (carried / layer).iterdir()} if carried and (carried / layer).is_dir() else set()))
                if not keys:
                    continue
                (gen / layer).mkdir(parents=True)
                for table in keys:
                    target = (f"../../t/{layer}/{table}/{gen_id}" if (layer, table) in changed
                              else os.readlink(carried / layer / table))
                    os.symlink(target, gen / layer / table)
                new_dirs.append(gen / layer)
            gen.mkdir(exist_ok=True)
            with ThreadPoolExecutor(max_workers=8) as pool:  # the new tree on disk before head names it
                list(pool.map(_fsync_dir, [*new_dirs, gen]))
            link = self.base / f".{VIEWS_HEAD}.{gen_id}.tmp"
            os.symlink(gen.name, link)
            os.replace(link, self.head)  # ← the views see the transaction, whole
            _fsync_dir(self.base)
            self._collect_garbage()

    def _collect_garbage(self) -> None:
        """Keep the newest trees (head among them) for queries in flight; remove the rest, the table
        folders no kept tree uses, and links of crashed swings. Call with the tree's lock held."""
        for tmp in self.base.glob(f".{VIEWS_HEAD}.*.tmp"):
            tmp.unlink(missing_ok=True)
        head = os.readlink(self.head) if self.head.is_symlink() else None
        gens = sorted((p for p in self.base.glob("g-*")), key=lambda p: p.name)
        keep = {p.name for p in gens[-self.KEEP_TREES:]} | ({head} if head else set())
        for gen in gens:
            if gen.name not in keep:
                shutil.rmtree(gen, ignore_errors=True)
        used = {os.readlink(link).removeprefix("../../")  # "t/<layer>/<table>/<id>"
                for gen in keep for layer in (self.base / gen).iterdir() if layer.is_dir()
                for link in layer.iterdir()}
        for tdir in self.base.glob("t/*/*/*"):
            if tdir.relative_to(self.base).as_posix() not in used:
                shutil.rmtree(tdir, ignore_errors=True)


@dataclass(frozen=True)
class Lake:
    """Partitioned Parquet files under one root directory, published by partition commits."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike) -> Lake:
        if "://" in str(root):  # an object store (s3://bucket/prefix): governance/object_store.py
            from governance.object_store import ObjectLake

            return ObjectLake.at(str(root))
        return cls(Path(root).resolve())

    @property
    def tx_dir(self) -> Path:
        return self.root / "_meta" / "tx"

    def table_dir(self, layer: str, table: str) -> Path:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; layers are {LAYERS}")
        return self.root / layer / table

    def partition_dir(self, layer: str, table: str, partition: str | None) -> Path:
        return self.table_dir(layer, table) / partition_dirname(partition)

    def part_path(self, layer: str, table: str, partition: str | None, part: str = "data") -> Path:
        """The committed file of one part (through the partition's ``current`` link)."""
        return self.partition_dir(layer, table, partition) / CURRENT / f"{part}.parquet"

    @property
    def views(self) -> ViewTree:
        return ViewTree(self.root)

    def glob(self, layer: str, table: str) -> str:
        """What the catalog's view of a table reads: the published view tree (see :class:`ViewTree`)."""
        self.table_dir(layer, table)  # validates the layer
        return self.views.glob(layer, table)

    # --- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Every :meth:`write` inside the block is published together when it ends without an error
        (nested blocks join the outer one); on an error nothing of it is published."""
        outer = _ACTIVE.get()
        if outer is not None and outer.lake.root == self.root:
            yield outer
            return
        self.recover()
        tx = Transaction(self)
        token = _ACTIVE.set(tx)
        try:
            yield tx
            tx.commit()
        except BaseException:
            tx.abort()
            raise
        finally:
            _ACTIVE.reset(token)
            tx.close()

    def write(
        self, layer: str, table: str, frame: pl.DataFrame, partition: str | None = None, part: str = "data"
    ) -> Path:
        """Write one partition's part, replacing what was there — published when the enclosing
        transaction commits (at once when there is none)."""
        with self.transaction() as tx:
            return tx.write(layer, table, frame, partition, part)

    # --- reading -------------------------------------------------------------------------------

    def exists(self, layer: str, table: str, partition: str | None = None, part: str = "data") -> bool:
        self.recover()
        return self.part_path(layer, table, partition, part).exists()

    def partitions(self, layer: str, table: str) -> list[str]:
        """Daily partition keys with a committed version, sorted."""
        self.recover()
        base = self.table_dir(layer, table)
        if not base.exists():
            return []
        return sorted(p.name.removeprefix("date=") for p in base.iterdir()
                      if p.name.startswith("date=") and (p / CURRENT).exists())

    def read(self, layer: str, table: str, partition: str | None = None, part: str = "data") -> pl.DataFrame:
        """Read one partition's part (eager); a clear error when it was never materialized."""
        self.recover()
        path = self.part_path(layer, table, partition, part)
        if not path.exists():
            where = f"partition {partition}" if partition else "snapshot"
            raise FileNotFoundError(f"{layer}.{table} ({where}) has not been materialized: {path} is missing")
        for attempt in range(3):
            # one version, column by column: resolved once, so a commit meanwhile cannot mix two versions
            try:
                return read_contiguous(path.resolve(strict=True))
            except FileNotFoundError:  # superseded and removed while read: read the new one
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def scan(
        self, layer: str, table: str, partitions: Iterable[str] | None = None, part: str = "data"
    ) -> pl.LazyFrame:
        """Lazily scan the given partitions (all when None) of one part of a table."""
        self.recover()
        if partitions is None:
            paths = sorted(self.table_dir(layer, table).glob(f"*/{CURRENT}/{part}.parquet"))
        else:
            paths = [self.part_path(layer, table, p, part) for p in partitions]
            paths = [p for p in paths if p.exists()]
        if not paths:
            raise FileNotFoundError(f"{layer}.{table}: no materialized {part} files under {self.table_dir(layer, table)}")
        return pl.scan_parquet(paths, missing_columns="insert", extra_columns="ignore")

    def manifest(self, layer: str, table: str, partition: str | None = None) -> dict:
        """The committed version's manifest ({} when the partition is absent)."""
        self.recover()
        return self._read_manifest(self.partition_dir(layer, table, partition) / CURRENT)

    def tables(self) -> list[tuple[str, str]]:
        """(layer, table) of every table with at least one committed partition."""
        out = []
        for layer in LAYERS:
            base = self.root / layer
            if base.is_dir():
                out += [(layer, t.name) for t in sorted(base.iterdir())
                        if t.is_dir() and any(t.glob(f"*/{CURRENT}/*.parquet"))]
        return out

    def verify(self, layer: str, table: str, partition: str | None = None) -> list[str]:
        """Problems of one committed partition (parts missing or not matching the manifest's hash)."""
        self.recover()
        current = self.partition_dir(layer, table, partition) / CURRENT
        manifest = self._read_manifest(current)
        problems = []
        for part, info in manifest.get("parts", {}).items():
            path = current / f"{part}.parquet"
            if not path.exists():
                problems.append(f"{path}: missing")
            elif _sha256(path) != info["sha256"]:
                problems.append(f"{path}: content does not match its manifest")
        return problems

    @staticmethod
    def _read_manifest(version: Path) -> dict:
        try:
            return json.loads((version / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}

    # --- commit machinery -----------------------------------------------------------------------

    def _publish(self, txid: str, versions: list[Path]) -> None:
        """Swing each partition's ``current`` to its new version, then drop the superseded ones."""
        for version in versions:
            if not version.is_dir():
                continue
            pdir = version.parent
            link = pdir / f".{CURRENT}.{txid}.tmp"
            link.unlink(missing_ok=True)
            os.symlink(version.name, link)
            os.replace(link, pdir / CURRENT)
        with ThreadPoolExecutor(max_workers=8) as pool:  # the links on disk before old versions go
            list(pool.map(_fsync_dir, [v.parent for v in versions]))
        self.views.publish([v for v in versions if v.is_dir()])  # the catalog's views: all at once
        for version in versions:
            self._drop_old_versions(version.parent)

    def _drop_old_versions(self, pdir: Path) -> None:
        current = pdir / CURRENT
        keep = os.readlink(current) if current.is_symlink() else None
        for p in pdir.iterdir():
            if p.name.startswith(VERSION_PREFIX) and p.name != keep and not self._alive(_txid_of(p.name)):
                shutil.rmtree(p, ignore_errors=True)

    def _alive(self, txid: str) -> bool:
        """Whether the transaction's writer still runs (holds its lock)."""
        path = self.tx_dir / f"{txid}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def recover(self) -> int:
        """Roll forward transactions that reached their commit point but whose writer died before it
        published them; returns how many. Cheap when there are none (one directory listing)."""
        try:
            entries = list(self.tx_dir.iterdir())
        except FileNotFoundError:
            return 0
        records = [p for p in entries if p.suffix == ".json" and not p.name.startswith(".")]
        if any(p.name.endswith(".tmp") for p in entries):  # a commit record half written: never committed
            _remove_dead_tmps(self.tx_dir)
        done = 0
        for record in sorted(records):
            txid = record.stem
            if self._alive(txid):
                continue
            try:
                versions = [self.root / v for v in json.loads(record.read_text())["versions"]]
                with contextlib.ExitStack() as locks:
                    for pdir in sorted({v.parent for v in versions}):
                        locks.enter_context(_flock(pdir / PARTITION_LOCK))
                    if record.exists():  # another reader may have finished it meanwhile
                        self._publish(txid, versions)
                        record.unlink(missing_ok=True)
                        done += 1
                (self.tx_dir / f"{txid}.lock").unlink(missing_ok=True)
            except (OSError, ValueError, KeyError) as exc:  # a read-only reader cannot repair: say so, go on
                log.warning("could not roll forward lake transaction %s: %s", txid, exc)
        return done

    def _tidy(self, pdir: Path) -> None:
        """Remove what crashed writes left in a partition folder: dead writers' version folders,
        temporary files and links (called by the next write of that partition)."""
        with _flock(pdir / PARTITION_LOCK):
            self._adopt_loose_files(pdir)
            self._drop_old_versions(pdir)
            for p in pdir.iterdir():  # links being swung are made under this same lock: all are leftovers
                if p.name.endswith(".tmp"):
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
        for lock in self.tx_dir.glob("*.lock") if self.tx_dir.exists() else []:
            txid = lock.stem
            if not (self.tx_dir / f"{txid}.json").exists() and not self._alive(txid):
                lock.unlink(missing_ok=True)

    def _adopt_loose_files(self, pdir: Path) -> bool:
        """A partition written before partition commits (``<part>.parquet`` directly in its folder, no
        ``current``) becomes a committed version: its files are linked into a version folder, the link
        is swung, and only then are the loose files removed (a crash on the way leaves them in place).
        Call with the partition's lock held."""
        if (pdir / CURRENT).exists() or (pdir / CURRENT).is_symlink():
            return False
        loose = sorted(p for p in pdir.glob("*.parquet") if p.is_file() and not p.is_symlink())
        if not loose:
            return False
        txid = _new_txid()
        version = pdir / f"{VERSION_PREFIX}{txid}"
        version.mkdir()
        parts = {}
        for f in loose:
            os.link(f, version / f.name)
            parts[f.stem] = {"rows": pl.scan_parquet(f).select(pl.len()).collect().item(), "bytes": f.stat().st_size,
                             "sha256": _sha256(f), "txid": txid}
        _atomic_text(version / MANIFEST, json.dumps({"txid": txid, "partition": pdir.name, "adopted": True,
                                                     "parts": parts}, indent=1), fsync=True)
        self._publish(txid, [version])
        for f in loose:
            f.unlink(missing_ok=True)
        return True

    def adopt_legacy(self) -> int:
        """Adopt every partition written before partition commits (see :meth:`_adopt_loose_files`);
        returns how many. ``governance catalog rebuild`` runs it."""
        adopted = 0
        for layer in LAYERS:
            for pdir in sorted((self.root / layer).glob("*/*")) if (self.root / layer).is_dir() else []:
                if pdir.is_dir() and not (pdir / CURRENT).exists() and any(pdir.glob("*.parquet")):
                    with _flock(pdir / PARTITION_LOCK):
                        adopted += self._adopt_loose_files(pdir)
        return adopted

    # --- bookkeeping documents --------------------------------------------------------------------

    def write_json(self, relative: str, payload: dict) -> Path:
        """Small bookkeeping documents (ledgers, manifests), written atomically."""
        path = self.root / "_meta" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_tmps(path.parent, path.name)
        _atomic_text(path, json.dumps(payload, indent=1, sort_keys=True, default=str))
        return path

    def read_json_dir(self, relative_dir: str) -> dict[str, dict]:
        base = self.root / "_meta" / relative_dir
        if not base.exists():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in sorted(base.glob("*.json"))}


#: per catalog file: (its state when read, its views) — spares a DuckDB connection per registration
_VIEWS_SEEN: dict[Path, tuple[tuple, dict]] = {}


class CatalogLockedError(RuntimeError):
    pass


class CatalogDeferredWarning(UserWarning):
    """The catalog could not be written now (someone holds it); its views are made on the next run."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


@dataclass(frozen=True)
class Catalog:
    """The DuckDB catalog: one schema per layer, one view per table over its lake glob (derived state)."""

    path: Path
    lake: Lake
    #: how long a registration waits for another writer before it defers the views to the next run
    lock_timeout_s: float = 20.0

    @classmethod
    def at(cls, path: str | os.PathLike, lake: Lake) -> Catalog:
        if not isinstance(lake, Lake):  # an object-store lake's catalog: governance/object_store.py
            from governance.object_store import ObjectCatalog

            return ObjectCatalog.at(path, lake)
        return cls(Path(path).resolve(), lake)

    def view_sql(self, layer: str, table: str) -> str:
        return f'CREATE OR REPLACE VIEW "{layer}"."{table}" AS SELECT * FROM {self._source(layer, table)}'

    def _source(self, layer: str, table: str) -> str:
        glob = self.lake.glob(layer, table).replace("'", "''")
        return f"read_parquet('{glob}', union_by_name = true)"

    def _file_state(self) -> tuple | None:
        """The catalog file's identity and last change (and its write-ahead log's): any write changes it."""
        out = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                st = os.stat(path)
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out) if out[0] is not None else None

    def views(self) -> dict[tuple[str, str], str] | None:
        """(schema, view) → SQL of every view in the catalog; None when it cannot be opened now. Read
        again whenever the file changed since this process last read it (not a marker: the file's own
        inode, size and change time, and its log's)."""
        state = self._file_state()
        if state is None:
            return {}
        seen = _VIEWS_SEEN.get(self.path)
        if seen is not None and seen[0] == state:
            return dict(seen[1])
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as exc:
            if _is_lock_error(exc):
                return None
            raise
        try:
            rows = con.execute("SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
        finally:
            con.close()
        views = {(s, v): sql for s, v, sql in rows}
        _VIEWS_SEEN[self.path] = (state, views)
        return dict(views)

    def _plan(self, existing: dict[tuple[str, str], str] | None) -> tuple[
            list[tuple[str, str]], list[tuple[str, str]]]:
        """Views to (re)create — missing or stale — and views to drop (their table has no committed data)."""
        # what the views can read: tables in the published view tree (a table whose first commit has
        # swung its links but not yet published the tree would make DuckDB refuse the view: "No files found")
        wanted = set(self.lake.views.tables())
        existing = existing or {}
        create = sorted(t for t in wanted
                        if existing.get(t) is None or f"read_parquet('{self.lake.glob(*t)}'" not in existing[t])
        # only views this catalog made (over this lake) are dropped: an analyst's own views stay
        ours = f"read_parquet('{str(self.lake.root)}"
        drop = sorted(t for t in existing if t[0] in LAYERS and t not in wanted and ours in (existing[t] or ""))
        return create, drop

    def register(self, layer: str, table: str) -> str:
        """Make sure the table's view exists and is current, and heal every other missing or stale
        view on the way. Returns "current" (nothing to do), "written", or "deferred" (the catalog
        is held by someone else; a warning says so and the next run retries)."""
        self.lake.table_dir(layer, table)  # validates the layer
        self.lake.recover()
        if not self.lake.views.head.is_dir() and self.lake.tables():  # a lake written before the view tree
            self.lake.views.publish(None)
        try:
            existing = self.views()
        except duckdb.Error as exc:  # not a DuckDB file any more: derived state, so make it again
            return self._replace_broken(exc)
        create, drop = self._plan(existing)
        if existing is not None and not create and not drop:
            return "current"
        if existing is None:  # someone holds it read-write: only the writer's retry can tell when it is free
            create, drop = self._plan({})
        return self._apply(create, drop)

    def rebuild(self) -> dict[str, int]:
        """Re-create every view from the lake alone (a deleted, stale or broken catalog heals); a lake
        written before partition commits has its partitions adopted first."""
        self.lake.recover()
        adopted = self.lake.adopt_legacy()
        self.lake.views.publish(None)  # the view tree again, from the lake's committed versions
        try:
            existing = self.views()
        except duckdb.Error as exc:
            self._replace_broken(exc)
            existing = self.views()
        _, drop = self._plan(existing)  # views of ours whose table has no committed data
        create, _ = self._plan({})  # every view, made again
        status = self._apply(create, drop)
        if status == "deferred":
            raise CatalogLockedError(f"the catalog {self.path} is held by another process; close it and retry")
        return {"views": len(create), "dropped": len(drop), "adopted": adopted}

    def _replace_broken(self, exc: Exception) -> str:
        aside = self.path.with_name(f"{self.path.name}.broken-{int(time.time())}")
        log.warning("catalog %s cannot be opened (%s); moved aside to %s and made again from the lake", self.path, exc, aside)
        os.replace(self.path, aside)
        create, drop = self._plan({})
        return self._apply(create, drop)

    def _apply(self, create: list[tuple[str, str]], drop: list[tuple[str, str]]) -> str:
        if not create and not drop:
            return "current"

        def write(con: duckdb.DuckDBPyConnection) -> None:
            for layer, table in drop:
                con.execute(f'DROP VIEW IF EXISTS "{layer}"."{table}"')
            for layer, table in create:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
                con.execute(self.view_sql(layer, table))

        try:
            self._with_write_connection(write)
        except CatalogLockedError as exc:
            message = (f"catalog views deferred to the next run ({', '.join('.'.join(t) for t in create) or 'drops only'}): "
                       f"{exc}")
            log.warning(message)
            warnings.warn(message, CatalogDeferredWarning, stacklevel=3)
            return "deferred"
        return "written"

    def _ensure_created(self) -> None:
        """Create the catalog file atomically. DuckDB writes a new file's header after creating it, so
        a second process opening the file in between finds "not a valid DuckDB database file"; an
        empty database is made under a private name and linked into place (a link never replaces)."""
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a write-ahead log left beside a deleted catalog belongs to that catalog, not the new one
        self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}-{random.randrange(1 << 30)}.tmp")
        try:
            duckdb.connect(str(tmp)).close()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process created it first
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)

    def _with_write_connection(self, action) -> None:
        """Run ``action`` on a short-lived read-write connection, waiting out other writers."""
        self._ensure_created()
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path))
            except duckdb.IOException as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise CatalogLockedError(
                        f"could not open the DuckDB catalog {self.path} for writing within "
                        f"{self.lock_timeout_s:.0f}s (another process holds it: close open duckdb shells). "
                        f"DuckDB said: {str(exc).splitlines()[0]}"
                    ) from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
                continue
            try:
                action(con)
                return
            finally:
                con.close()

    def query(self, sql: str) -> pl.DataFrame:
        """Run a read-only query against the catalog (for tests, the CLI and reports); a transaction
        whose writer died between its commit point and its last published link is rolled forward first."""
        self.lake.recover()
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=True)
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            return con.sql(sql).pl()
        finally:
            con.close()
