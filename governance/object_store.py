"""The lake on object storage (S3 or any S3-compatible store): ``lake_root = s3://bucket/prefix``.

An object store has no links, no renames and no locks, so partitions are published by *commit
records* instead of ``current`` links::

    <prefix>/<layer>/<table>/<partition>/v-<txid>/<part>.parquet    (written first; nobody reads them)
    <prefix>/<layer>/<table>/<partition>/v-<txid>/_manifest.json     (rows, bytes, SHA-256 per part)
    <prefix>/_meta/commits/<commit time>-<txid>.json                  (the commit point: one PUT)

A transaction uploads its version objects (the parts it did not rewrite are copied server-side from the
published version, as the local lake hard-links them), then PUTs one commit record naming every
partition version it publishes — raw, quarantine and audit of a partition together. An S3 PUT is
atomic: a reader sees the whole record or none of it. Readers fold the records in commit order (the
last one naming a partition wins) and follow only the versions they name, so a version without a
record — a writer still uploading, or one that died — is invisible, and there is nothing to roll
forward. After its commit a writer deletes the versions it superseded and the records no partition
follows any more; a reader that meets a deleted object folds again.

Configuration: the standard S3 environment variables — ``AWS_ENDPOINT_URL`` (an S3-compatible server;
``http://`` allowed), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_REGION`` / ``AWS_DEFAULT_REGION``. Polars and DuckDB read the same objects: Polars through its
own object store client (the same variables), DuckDB through pyarrow's S3 client registered as an
fsspec filesystem under ``s3lake://`` (:func:`duckdb_connect`) — DuckDB's ``httpfs`` extension would
be downloaded at run time, which this project does not do. Secrets are never part of a repr, a log
line or an error message.

Not supported on object storage: two writers of one partition at the same moment (the local lake
serialises them with ``flock``; here the later commit wins and a part the other one wrote meanwhile is
not carried over — Dagster's one-run-per-partition limit keeps them apart), the Spark engine's
cleaning (it reads local paths), and plain DuckDB sessions on the catalog file outside ``governance``
(they need ``httpfs`` and an S3 secret of their own).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import polars as pl

log = logging.getLogger(__name__)

SCHEMES = ("s3",)
#: the protocol DuckDB reads the lake's objects under (pyarrow's S3 client behind fsspec)
DUCKDB_PROTOCOL = "s3lake"
COMMITS = "_meta/commits"
VERSION_PREFIX = "v-"
MANIFEST = "_manifest.json"
SNAPSHOT = "all"
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 1
_COPY_CHUNK = 8 << 20


def is_url(root: str | os.PathLike) -> bool:
    """Whether a lake root names an object store (``s3://…``) rather than a local folder."""
    return urlparse(str(root)).scheme in SCHEMES


def partition_dirname(partition: str | None) -> str:
    return SNAPSHOT if partition is None else f"date={partition}"


@dataclass(frozen=True)
class S3Config:
    """Where the object store is and how to sign in; secrets stay out of the repr."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Config:
        env = os.environ if env is None else env
        return cls(endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                   access_key=env.get("AWS_ACCESS_KEY_ID") or None, secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
                   session_token=env.get("AWS_SESSION_TOKEN") or None)

    @property
    def http(self) -> bool:
        return bool(self.endpoint_url and self.endpoint_url.startswith("http://"))

    def filesystem(self):
        """pyarrow's S3 client (uploads, listings, deletes, server-side copies)."""
        from pyarrow import fs as pafs

        kw: dict = {"region": self.region}
        if self.endpoint_url:
            parsed = urlparse(self.endpoint_url)
            kw["endpoint_override"] = parsed.netloc + parsed.path.rstrip("/")
            kw["scheme"] = parsed.scheme or "https"
        if self.access_key:
            kw.update(access_key=self.access_key, secret_key=self.secret_key, session_token=self.session_token)
        return pafs.S3FileSystem(**kw)

    def storage_options(self) -> dict[str, str]:
        """The same configuration for Polars' object store client."""
        out = {"aws_region": self.region}
        if self.endpoint_url:
            out["aws_endpoint_url"] = self.endpoint_url
            if self.http:
                out["aws_allow_http"] = "true"
        if self.access_key:
            out.update(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key or "")
            if self.session_token:
                out["aws_session_token"] = self.session_token
        return out


def _new_txid() -> str:
    return f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class ObjectPath(str):
    """A committed part's URL (``s3://…``) that answers ``exists()`` like a local path does."""

    lake: ObjectLake

    def __new__(cls, url: str, lake: ObjectLake) -> ObjectPath:
        obj = super().__new__(cls, url)
        obj.lake = lake
        return obj

    def exists(self) -> bool:
        from pyarrow import fs as pafs

        return self.lake.fs.get_file_info(self.lake._key_of(self)).type == pafs.FileType.File

    @property
    def name(self) -> str:
        return self.rsplit("/", 1)[-1]


_ACTIVE: contextvars.ContextVar[ObjectTransaction | None] = contextvars.ContextVar("governance_object_tx", default=None)
#: commit records are immutable: read once per process
_RECORDS: dict[str, dict] = {}


@dataclass
class _Version:
    layer: str
    table: str
    pdir: str
    version: str
    parts: dict[str, dict] = field(default_factory=dict)


class ObjectTransaction:
    """Writes published together by one commit record (see the module docstring)."""

    def __init__(self, lake: ObjectLake) -> None:
        self.lake = lake
        self.id = _new_txid()
        self.touched: dict[tuple[str, str, str], _Version] = {}
        self.committed = False

    def write(self, layer: str, table: str, frame: pl.DataFrame | pl.LazyFrame | Iterable[pl.DataFrame],
              partition: str | None, part: str) -> ObjectPath:
        pdir = partition_dirname(partition)
        entry = self.touched.setdefault((layer, table, pdir),
                                        _Version(layer, table, pdir, f"{VERSION_PREFIX}{self.id}"))
        key = self.lake._key(layer, table, pdir, entry.version, f"{part}.parquet")
        # through a local file: a LazyFrame is streamed to it (bounded memory), and the upload hashes it
        self.lake.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.lake.root, prefix=".upload-", suffix=".parquet") as tmp:
            if isinstance(frame, pl.LazyFrame):
                frame.sink_parquet(tmp.name, compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL)
                rows = pl.scan_parquet(tmp.name).select(pl.len()).collect().item()
            elif not isinstance(frame, pl.DataFrame):  # an iterator of frames (a streamed collection)
                from governance.storage import write_batches

                rows = write_batches(frame, tmp.name)
            else:
                frame.write_parquet(tmp.name, compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL)
                rows = frame.height
            digest, size = self.lake._upload(tmp.name, key)
        entry.parts[part] = {"rows": rows, "bytes": size, "sha256": digest, "txid": self.id}
        return ObjectPath(self.lake._url(key), self.lake)

    def commit(self) -> None:
        if not self.touched:
            return
        state = self.lake._state()
        superseded = []
        for (layer, table, pdir), entry in self.touched.items():
            published = state.get((layer, table, pdir))
            if published is not None:  # carry the parts this transaction did not rewrite over
                superseded.append(self.lake._key(layer, table, pdir, published["version"]))
                for part, info in published["parts"].items():
                    if part not in entry.parts:
                        self.lake.fs.copy_file(self.lake._key(layer, table, pdir, published["version"], f"{part}.parquet"),
                                               self.lake._key(layer, table, pdir, entry.version, f"{part}.parquet"))
                        entry.parts[part] = info
            self.lake._put_json(self.lake._key(layer, table, pdir, entry.version, MANIFEST), {
                "txid": self.id, "layer": layer, "table": table, "partition": pdir,
                "parts": dict(sorted(entry.parts.items()))})
        record = {"txid": self.id, "versions": [
            {"layer": e.layer, "table": e.table, "partition": e.pdir, "version": e.version,
             "parts": dict(sorted(e.parts.items()))} for e in self.touched.values()]}
        name = f"{time.time_ns():020d}-{self.id}.json"
        self.lake._put_json(self.lake._key(COMMITS, name), record)  # ← the commit point (one atomic PUT)
        self.committed = True
        self.lake._tidy(superseded)

    def abort(self) -> None:
        if self.committed:
            return
        for entry in self.touched.values():
            with contextlib.suppress(OSError):
                self.lake.fs.delete_dir(self.lake._key(entry.layer, entry.table, entry.pdir, entry.version))
        self.touched.clear()


@dataclass(frozen=True)
class ObjectLake:
    """The lake's interface (:class:`governance.storage.Lake`) over an S3 bucket and prefix.

    ``root`` is a local folder for what is derived from the lake and cached beside it (key indexes,
    upload staging); the tables live at ``url``."""

    url: str
    root: Path
    config: S3Config = field(default_factory=S3Config.from_env)

    @classmethod
    def at(cls, url: str, cache: str | os.PathLike | None = None, config: S3Config | None = None) -> ObjectLake:
        parsed = urlparse(url)
        if parsed.scheme not in SCHEMES or not parsed.netloc:
            raise ValueError(f"an object-store lake root is s3://<bucket>/<prefix>, got {url!r}")
        if "@" in parsed.netloc or parsed.query:
            raise ValueError("credentials do not go in the lake URL: set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        clean = f"{parsed.scheme}://{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        base = Path(cache or os.environ.get("GOVERNANCE_MODEL_CACHE") or Path.home() / ".cache" / "governance")
        local = (base / "object-lake" / parsed.netloc / parsed.path.strip("/")).expanduser().resolve()
        return cls(clean, local, config or S3Config.from_env())

    # --- addresses ---------------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return urlparse(self.url).netloc

    @property
    def prefix(self) -> str:
        return urlparse(self.url).path.strip("/")

    @property
    def fs(self):
        fs = _FILESYSTEMS.get(self.config)
        if fs is None:
            fs = _FILESYSTEMS[self.config] = self.config.filesystem()
        return fs

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, *parts) if p)

    def _url(self, key: str) -> str:
        return f"s3://{key}"

    def _key_of(self, url: str) -> str:
        return url.removeprefix("s3://")

    def table_dir(self, layer: str, table: str) -> str:
        from governance.storage import LAYERS

        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; layers are {LAYERS}")
        return self._url(self._key(layer, table))

    def partition_dir(self, layer: str, table: str, partition: str | None) -> str:
        return f"{self.table_dir(layer, table)}/{partition_dirname(partition)}"

    # --- object I/O --------------------------------------------------------------------------------

    def _upload(self, local: str, key: str) -> tuple[str, int]:
        h, size = hashlib.sha256(), 0
        with open(local, "rb") as src, self.fs.open_output_stream(key) as out:
            while chunk := src.read(_COPY_CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return h.hexdigest(), size

    def _put_json(self, key: str, payload: dict) -> None:
        with self.fs.open_output_stream(key) as out:
            out.write(json.dumps(payload, indent=1, sort_keys=True, default=str).encode())

    def _get_json(self, key: str) -> dict:
        with self.fs.open_input_stream(key) as f:
            return json.loads(f.read())

    def _list(self, *parts: str) -> list[str]:
        from pyarrow import fs as pafs

        selector = pafs.FileSelector(self._key(*parts), allow_not_found=True, recursive=False)
        return sorted(i.path for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File)

    # --- the published state -----------------------------------------------------------------------

    def _state(self) -> dict[tuple[str, str, str], dict]:
        """(layer, table, partition folder) → the published version and its parts: the commit records
        folded in commit order. A record deleted while it was read (superseded whole) folds again."""
        for attempt in range(5):
            state: dict[tuple[str, str, str], dict] = {}
            try:
                for key in self._list(COMMITS):
                    record = _RECORDS.get(key)
                    if record is None:
                        record = _RECORDS[key] = self._get_json(key)
                    for v in record["versions"]:
                        state[(v["layer"], v["table"], v["partition"])] = {**v, "commit": key}
                return state
            except FileNotFoundError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _tidy(self, superseded: list[str]) -> None:
        """After a commit: delete the versions it superseded and the records no partition follows."""
        for key in superseded:
            with contextlib.suppress(OSError):
                self.fs.delete_dir(key)
        state = self._state()
        followed = {v["commit"] for v in state.values()}
        for key in self._list(COMMITS):
            if key not in followed:
                with contextlib.suppress(OSError):
                    self.fs.delete_file(key)
                _RECORDS.pop(key, None)

    # --- the Lake interface ------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[ObjectTransaction]:
        outer = _ACTIVE.get()
        if outer is not None and outer.lake.url == self.url:
            yield outer
            return
        tx = ObjectTransaction(self)
        token = _ACTIVE.set(tx)
        try:
            yield tx
            tx.commit()
        except BaseException:
            tx.abort()
            raise
        finally:
            _ACTIVE.reset(token)

    def write(self, layer: str, table: str, frame: pl.DataFrame | pl.LazyFrame, partition: str | None = None,
              part: str = "data") -> ObjectPath:
        self.table_dir(layer, table)
        with self.transaction() as tx:
            return tx.write(layer, table, frame, partition, part)

    def recover(self) -> int:
        """Nothing to roll forward: the commit record is the publication."""
        return 0

    def _published(self, layer: str, table: str, partition: str | None) -> dict | None:
        return self._state().get((layer, table, partition_dirname(partition)))

    def part_path(self, layer: str, table: str, partition: str | None, part: str = "data") -> ObjectPath:
        """The published object of one part (a URL; ``exists()`` is False when there is none)."""
        pdir = partition_dirname(partition)
        published = self._published(layer, table, partition)
        version = published["version"] if published else f"{VERSION_PREFIX}unpublished"
        return ObjectPath(self._url(self._key(layer, table, pdir, version, f"{part}.parquet")), self)

    def exists(self, layer: str, table: str, partition: str | None = None, part: str = "data") -> bool:
        published = self._published(layer, table, partition)
        return published is not None and part in published["parts"]

    def partitions(self, layer: str, table: str) -> list[str]:
        self.table_dir(layer, table)
        return sorted(pdir.removeprefix("date=") for (lay, tab, pdir) in self._state()
                      if lay == layer and tab == table and pdir.startswith("date="))

    def files(self, layer: str, table: str, part: str | None = None) -> list[str]:
        """URLs of the published parts of a table (every part, or one), in partition order."""
        return [self._url(self._key(lay, tab, pdir, v["version"], f"{p}.parquet"))
                for (lay, tab, pdir), v in sorted(self._state().items())
                if lay == layer and tab == table for p in sorted(v["parts"]) if part is None or p == part]

    def read(self, layer: str, table: str, partition: str | None = None, part: str = "data") -> pl.DataFrame:
        for attempt in range(3):
            path = self.part_path(layer, table, partition, part)
            if not self.exists(layer, table, partition, part):
                where = f"partition {partition}" if partition else "snapshot"
                raise FileNotFoundError(f"{layer}.{table} ({where}) has not been materialized: {path} is missing")
            try:
                return pl.read_parquet(str(path), storage_options=self.config.storage_options())
            except (FileNotFoundError, OSError, pl.exceptions.ComputeError):  # superseded meanwhile: read the new one
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def scan(self, layer: str, table: str, partitions: Iterable[str] | None = None, part: str = "data") -> pl.LazyFrame:
        if partitions is None:
            paths = self.files(layer, table, part)
        else:
            paths = [str(self.part_path(layer, table, p, part)) for p in partitions if self.exists(layer, table, p, part)]
        if not paths:
            raise FileNotFoundError(f"{layer}.{table}: no materialized {part} files under {self.table_dir(layer, table)}")
        return pl.scan_parquet(paths, storage_options=self.config.storage_options(), missing_columns="insert",
                               extra_columns="ignore")

    def manifest(self, layer: str, table: str, partition: str | None = None) -> dict:
        published = self._published(layer, table, partition)
        if published is None:
            return {}
        return self._get_json(self._key(layer, table, published["partition"], published["version"], MANIFEST))

    def tables(self) -> list[tuple[str, str]]:
        """(layer, table) of every table with a published partition, in the order of the layers."""
        from governance.storage import LAYERS

        found = {(lay, tab) for (lay, tab, _), v in self._state().items() if v["parts"]}
        return sorted(found, key=lambda t: (LAYERS.index(t[0]) if t[0] in LAYERS else len(LAYERS), t[1]))

    def verify(self, layer: str, table: str, partition: str | None = None) -> list[str]:
        """Problems of one published partition (parts missing or not matching the manifest's hash)."""
        published = self._published(layer, table, partition)
        problems = []
        for part, info in (published or {}).get("parts", {}).items():
            key = self._key(layer, table, published["partition"], published["version"], f"{part}.parquet")
            try:
                h = hashlib.sha256()
                with self.fs.open_input_stream(key) as f:
                    while chunk := f.read(_COPY_CHUNK):
                        h.update(chunk)
            except FileNotFoundError:
                problems.append(f"{self._url(key)}: missing")
                continue
            if h.hexdigest() != info["sha256"]:
                problems.append(f"{self._url(key)}: content does not match its manifest")
        return problems

    def adopt_legacy(self) -> int:
        return 0

    def write_json(self, relative: str, payload: dict) -> str:
        key = self._key("_meta", relative)
        self._put_json(key, payload)
        return self._url(key)

    def read_json_dir(self, relative_dir: str) -> dict[str, dict]:
        return {k.rsplit("/", 1)[-1].removesuffix(".json"): self._get_json(k)
                for k in self._list("_meta", relative_dir) if k.endswith(".json")}


_FILESYSTEMS: dict[S3Config, object] = {}


# ---------------------------------------------------------------------------------------------
# DuckDB over the object store, without httpfs


def _fsspec_filesystem(lake: ObjectLake):
    from fsspec.implementations.arrow import ArrowFSWrapper

    class LakeFileSystem(ArrowFSWrapper):
        """pyarrow's S3 client for DuckDB, under ``s3lake://`` (``s3://`` is DuckDB's httpfs)."""

        protocol = DUCKDB_PROTOCOL

        @classmethod
        def _strip_protocol(cls, path):
            if isinstance(path, list):
                return [cls._strip_protocol(p) for p in path]
            return str(path).removeprefix(f"{DUCKDB_PROTOCOL}://").rstrip("/")

    return LakeFileSystem(lake.fs)


def duckdb_connect(lake: ObjectLake, database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads the lake's objects (``s3lake://bucket/key``) through pyarrow's
    S3 client; extension auto-install and auto-load are off, so nothing is downloaded."""
    con = duckdb.connect(database, read_only=read_only, config={"autoinstall_known_extensions": False,
                                                                "autoload_known_extensions": False})
    con.register_filesystem(_fsspec_filesystem(lake))
    return con


def duckdb_url(url: str) -> str:
    return DUCKDB_PROTOCOL + "://" + url.removeprefix("s3://")


@dataclass(frozen=True)
class ObjectCatalog:
    """The DuckDB catalog of an object-store lake: one view per table over the *published* objects.

    There is no glob to follow (a version is published by a record, not by where it sits), so each
    view names its table's published files; every registration re-creates the views whose files
    changed and drops those whose table has none. Queries go through :meth:`query` (or
    :func:`duckdb_connect` on the file), which registers the object store's filesystem first."""

    path: Path
    lake: ObjectLake
    lock_timeout_s: float = 20.0

    @classmethod
    def at(cls, path: str | os.PathLike, lake: ObjectLake) -> ObjectCatalog:
        return cls(Path(path).resolve(), lake)

    def view_sql(self, layer: str, table: str) -> str:
        files = ", ".join("'" + duckdb_url(f).replace("'", "''") + "'" for f in self.lake.files(layer, table))
        return f'CREATE OR REPLACE VIEW "{layer}"."{table}" AS SELECT * FROM read_parquet([{files}], union_by_name = true)'

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                if not read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                return duckdb_connect(self.lake, str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def views(self) -> dict[tuple[str, str], str]:
        if not self.path.exists():
            return {}
        con = self._connect(read_only=True)
        try:
            rows = con.execute("SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
        finally:
            con.close()
        return {(s, v): sql for s, v, sql in rows}

    def _sync(self, everything: bool) -> dict[str, int]:
        from governance.storage import LAYERS

        wanted = {t: self.view_sql(*t) for t in self.lake.tables()}
        existing = self.views()
        ours = f"{DUCKDB_PROTOCOL}://{self.lake.bucket}/"
        create = [t for t, sql in wanted.items() if everything or _files_in(existing.get(t)) != _files_in(sql)]
        drop = [t for t, sql in existing.items() if t[0] in LAYERS and t not in wanted and ours in (sql or "")]
        if create or drop:
            con = self._connect(read_only=False)
            try:
                for layer, table in drop:
                    con.execute(f'DROP VIEW IF EXISTS "{layer}"."{table}"')
                for layer, table in create:
                    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
                    con.execute(wanted[(layer, table)])
            finally:
                con.close()
        return {"views": len(create), "dropped": len(drop), "adopted": 0}

    def register(self, layer: str, table: str) -> str:
        """Make every view match the published objects; "current" when nothing changed, else "written"."""
        self.lake.table_dir(layer, table)
        try:
            done = self._sync(everything=False)
        except duckdb.IOException as exc:
            message = f"catalog views deferred to the next run: {str(exc).splitlines()[0]}"
            log.warning(message)
            from governance.storage import CatalogDeferredWarning

            warnings.warn(message, CatalogDeferredWarning, stacklevel=2)
            return "deferred"
        return "written" if done["views"] or done["dropped"] else "current"

    def rebuild(self) -> dict[str, int]:
        return self._sync(everything=True)

    def query(self, sql: str) -> pl.DataFrame:
        con = self._connect(read_only=True)
        try:
            return con.sql(sql).pl()
        finally:
            con.close()


def _files_in(sql: str | None) -> list[str]:
    """The objects a view reads, in order (what decides whether it is current)."""
    return [] if sql is None else re.findall(DUCKDB_PROTOCOL + r"://(?:[^']|'')+", sql)
