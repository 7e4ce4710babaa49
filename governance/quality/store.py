"""The quality store: every check result, every partition profile and every incident, in SQL.

SQLite (``<data_root>/quality.db``) by default, any SQLAlchemy URL (PostgreSQL) by configuration.
The schema is the project's: ``QualityStore(url)`` applies the ordered migrations below that the
database has not seen yet, recording each in ``schema_version``; nobody writes SQL by hand. Adding a
change means appending a migration (never editing an applied one).

Concurrency: Dagster runs checks in parallel processes. SQLite runs in WAL mode with a busy timeout
and every transaction starts ``BEGIN IMMEDIATE`` (writers queue instead of failing); on PostgreSQL
migrations hold an advisory lock so two processes never migrate at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from governance.quality.profile import ColumnProfile, TableProfile

SNAPSHOT_KEY = "all"  # partition_key of unpartitioned (snapshot) tables
_ADVISORY_LOCK = 72_031_104  # arbitrary, constant: "quality store migrations"
_ENGINES: dict[str, Engine] = {}


def _id_type():
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts():
    return sa.DateTime(timezone=True)


# ------------------------------------------------------------------------------------ migrations
# Each migration builds its own tables/DDL (never the "current" definitions), so replaying them on an
# empty database always gives the same schema as upgrading step by step.

def _m1_core(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "check_results", md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("partition_key", sa.String(32), nullable=False),
        sa.Column("check_name", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),  # expectation | anomaly
        sa.Column("expectation_type", sa.String(120)),
        sa.Column("column_name", sa.String(200)),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("observed_value", sa.Text()),
        sa.Column("element_count", sa.BigInteger()),
        sa.Column("unexpected_count", sa.BigInteger()),
        sa.Column("unexpected_percent", sa.Float()),
        sa.Column("examples", sa.Text()),
        sa.Column("details", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("notes", sa.Text()),
        sa.Column("run_id", sa.String(64)),
        sa.Column("evaluated_at", _ts(), nullable=False),
    )
    sa.Table(
        "profiles", md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("partition_key", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("computed_at", _ts(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("column_count", sa.Integer(), nullable=False),
        sa.Column("schema_json", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Float()),
    )
    sa.Table(
        "column_profiles", md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("profile_id", _id_type(), sa.ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("column_name", sa.String(200), nullable=False),
        sa.Column("segment", sa.String(300), nullable=False, default=""),
        sa.Column("dtype", sa.String(80)),
        sa.Column("kind", sa.String(20)),
        sa.Column("row_count", sa.BigInteger()),
        sa.Column("null_count", sa.BigInteger()),
        sa.Column("null_rate", sa.Float()),
        sa.Column("distinct_count", sa.BigInteger()),
        sa.Column("distinct_approx", sa.Boolean()),
        sa.Column("min_value", sa.Text()),
        sa.Column("max_value", sa.Text()),
        sa.Column("mean", sa.Float()),
        sa.Column("std", sa.Float()),
        sa.Column("quantiles", sa.Text()),
        sa.Column("top_values", sa.Text()),
    )
    sa.Table(
        "quarantine_counts", md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("profile_id", _id_type(), sa.ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(120), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
    )
    md.create_all(conn)


def _m2_incidents(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "incidents", md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("partition_key", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # open | resolved
        sa.Column("failing", sa.Text(), nullable=False),  # JSON list of failing checks
        sa.Column("first_seen", _ts(), nullable=False),
        sa.Column("last_seen", _ts(), nullable=False),
        sa.Column("first_run_id", sa.String(64)),
        sa.Column("last_run_id", sa.String(64)),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("notified_at", _ts()),
        sa.Column("notify_result", sa.Text()),
    )
    md.create_all(conn)


def _m3_indexes(conn: Connection) -> None:
    md = sa.MetaData()
    checks = sa.Table("check_results", md, autoload_with=conn)
    profiles = sa.Table("profiles", md, autoload_with=conn)
    column_profiles = sa.Table("column_profiles", md, autoload_with=conn)
    incidents = sa.Table("incidents", md, autoload_with=conn)
    sa.Index("ix_check_results_table_partition", checks.c.table_name, checks.c.partition_key,
             checks.c.evaluated_at).create(conn)
    sa.Index("ix_profiles_table_partition", profiles.c.table_name, profiles.c.partition_key,
             profiles.c.computed_at).create(conn)
    sa.Index("ix_column_profiles_profile", column_profiles.c.profile_id).create(conn)
    sa.Index("ix_incidents_open", incidents.c.table_name, incidents.c.partition_key, incidents.c.status).create(conn)


def _m4_histograms(conn: Connection) -> None:
    conn.execute(sa.text("ALTER TABLE column_profiles ADD COLUMN histogram TEXT"))


MIGRATIONS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "check results, profiles, column profiles, quarantine counts", _m1_core),
    (2, "incidents", _m2_incidents),
    (3, "indexes for history queries", _m3_indexes),
    (4, "numeric histograms on a fixed grid (drift tests)", _m4_histograms),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _version_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "schema_version", md,
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("applied_at", _ts(), nullable=False),
    )


def migrate(engine: Engine) -> list[int]:
    """Apply pending migrations in order, each recorded in schema_version. Returns those applied."""
    applied: list[int] = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        md = sa.MetaData()
        versions = _version_table(md)
        md.create_all(conn, checkfirst=True)
        done = {r[0] for r in conn.execute(sa.select(versions.c.version))}
        for version, description, step in MIGRATIONS:
            if version in done:
                continue
            step(conn)
            conn.execute(versions.insert().values(version=version, description=description,
                                                  applied_at=datetime.now(UTC)))
            applied.append(version)
    return applied


def _engine(url: str, schema: str | None = None) -> Engine:
    key = f"{url}#{schema or ''}"
    if key in _ENGINES:
        return _ENGINES[key]
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
            dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" below control transactions
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if schema:
            kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
        engine = sa.create_engine(url, **kwargs)
    _ENGINES[key] = engine
    return engine


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def partition_key(partition: str | None) -> str:
    return partition or SNAPSHOT_KEY


@dataclass
class CheckRecord:
    """One evaluated check (an expectation or an anomaly test) as stored."""

    table: str
    partition: str | None
    check_name: str
    kind: str
    severity: str
    passed: bool
    expectation_type: str | None = None
    column: str | None = None
    observed_value: Any = None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: Any = None
    details: Any = None
    description: str | None = None
    notes: str | None = None
    run_id: str | None = None
    evaluated_at: datetime | None = None


_SHARED: dict[str, QualityStore] = {}


class QualityStore:
    """Metric history over SQLAlchemy (see module doc)."""

    def __init__(self, url: str, schema: str | None = None, migrate_schema: bool = True):
        self.url = url
        self.engine = _engine(url, schema)
        md = sa.MetaData()
        self._md = md
        if migrate_schema:
            migrate(self.engine)
        self.t = {name: sa.Table(name, md, autoload_with=self.engine) for name in (
            "check_results", "profiles", "column_profiles", "quarantine_counts", "incidents", "schema_version")}

    def __repr__(self) -> str:
        return f"QualityStore({self.engine.url.render_as_string(hide_password=True)})"

    @classmethod
    def shared(cls, url: str) -> QualityStore:
        """One store (one engine, one migration) per URL in this process."""
        if url not in _SHARED:
            _SHARED[url] = cls(url)
        return _SHARED[url]

    # ------------------------------------------------------------------------------ writing
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(self.t["schema_version"].c.version))).scalar() or 0

    def record_checks(self, records: Iterable[CheckRecord]) -> int:
        rows = []
        now = datetime.now(UTC)
        for r in records:
            rows.append({
                "table_name": r.table, "partition_key": partition_key(r.partition), "check_name": r.check_name,
                "kind": r.kind, "expectation_type": r.expectation_type, "column_name": r.column,
                "severity": r.severity, "passed": bool(r.passed), "observed_value": _dump(r.observed_value),
                "element_count": r.element_count, "unexpected_count": r.unexpected_count,
                "unexpected_percent": r.unexpected_percent, "examples": _dump(r.examples), "details": _dump(r.details),
                "description": r.description, "notes": r.notes, "run_id": r.run_id,
                "evaluated_at": r.evaluated_at or now,
            })
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self.t["check_results"].insert(), rows)
        return len(rows)

    def record_profile(self, profile: TableProfile, run_id: str | None = None) -> int:
        t = self.t
        with self.engine.begin() as conn:
            profile_id = conn.execute(t["profiles"].insert().values(
                table_name=profile.table, partition_key=partition_key(profile.partition),
                run_id=run_id or profile.run_id, computed_at=profile.computed_at, row_count=profile.row_count,
                column_count=len(profile.schema), schema_json=_dump(profile.schema), duration_s=profile.duration_s,
            ).returning(t["profiles"].c.id)).scalar_one()
            cols = [{
                "profile_id": profile_id, "column_name": c.column, "segment": c.segment, "dtype": c.dtype,
                "kind": c.kind, "row_count": c.rows, "null_count": c.null_count, "null_rate": c.null_rate,
                "distinct_count": c.distinct_count, "distinct_approx": c.distinct_approx,
                "min_value": _dump(c.min), "max_value": _dump(c.max), "mean": c.mean, "std": c.std,
                "quantiles": _dump(c.quantiles), "histogram": _dump(c.histogram), "top_values": _dump(c.top_values),
            } for c in profile.columns]
            if cols:
                conn.execute(t["column_profiles"].insert(), cols)
            q = [{"profile_id": profile_id, "stage": stage, "rule": rule, "rows": n}
                 for stage, rules in profile.quarantine.items() for rule, n in rules.items()]
            if q:
                conn.execute(t["quarantine_counts"].insert(), q)
        return int(profile_id)

    # ------------------------------------------------------------------------------ reading
    def _latest_profile_ids(self, conn: Connection, table: str, partitions: Iterable[str] | None = None,
                            before: str | None = None) -> dict[str, int]:
        """The newest profile id of each partition of a table (snapshots: only their newest)."""
        p = self.t["profiles"]
        q = sa.select(p.c.partition_key, sa.func.max(p.c.id)).where(p.c.table_name == table)
        if partitions is not None:
            q = q.where(p.c.partition_key.in_(list(partitions)))
        if before is not None:
            q = q.where(p.c.partition_key < before)
        return {k: int(i) for k, i in conn.execute(q.group_by(p.c.partition_key))}

    def _profiles_by_ids(self, conn: Connection, ids: list[int]) -> list[TableProfile]:
        if not ids:
            return []
        t = self.t
        heads = conn.execute(sa.select(t["profiles"]).where(t["profiles"].c.id.in_(ids))).mappings().all()
        cols = conn.execute(sa.select(t["column_profiles"]).where(t["column_profiles"].c.profile_id.in_(ids))
                            .order_by(t["column_profiles"].c.id)).mappings().all()
        quar = conn.execute(sa.select(t["quarantine_counts"]).where(
            t["quarantine_counts"].c.profile_id.in_(ids))).mappings().all()
        by_profile: dict[int, list[ColumnProfile]] = {}
        for c in cols:
            by_profile.setdefault(c["profile_id"], []).append(ColumnProfile(
                column=c["column_name"], segment=c["segment"] or "", dtype=c["dtype"], kind=c["kind"],
                rows=c["row_count"] or 0, null_count=c["null_count"] or 0, distinct_count=c["distinct_count"],
                distinct_approx=bool(c["distinct_approx"]), min=_load(c["min_value"]), max=_load(c["max_value"]),
                mean=c["mean"], std=c["std"], quantiles=_load(c["quantiles"]), histogram=_load(c["histogram"]),
                top_values=[tuple(x) for x in _load(c["top_values"])] if c["top_values"] else None,
            ))
        q_by: dict[int, dict[str, dict[str, int]]] = {}
        for q in quar:
            q_by.setdefault(q["profile_id"], {}).setdefault(q["stage"], {})[q["rule"]] = int(q["rows"])
        out = []
        for h in heads:
            out.append(TableProfile(
                table=h["table_name"], partition=None if h["partition_key"] == SNAPSHOT_KEY else h["partition_key"],
                row_count=int(h["row_count"]), columns=by_profile.get(h["id"], []), schema=_load(h["schema_json"]),
                quarantine=q_by.get(h["id"], {}), computed_at=_utc(h["computed_at"]), duration_s=h["duration_s"] or 0.0,
                run_id=h["run_id"],
            ))
        return sorted(out, key=lambda p: (p.partition or "", p.computed_at))

    def profile_history(self, table: str, before: str | None = None, limit: int | None = None) -> list[TableProfile]:
        """Newest profile of each partition (oldest first); only partitions before ``before`` if given.

        For snapshot tables (one partition, 'all') the history is every profile, oldest first.
        """
        p = self.t["profiles"]
        with self.engine.connect() as conn:
            keys = self._latest_profile_ids(conn, table, before=before)
            if set(keys) == {SNAPSHOT_KEY}:
                q = sa.select(p.c.id).where(p.c.table_name == table).order_by(p.c.id.desc())
                ids = [int(r[0]) for r in conn.execute(q.limit(limit) if limit else q)]
            else:
                ids = [keys[k] for k in sorted(keys)]
                if limit:
                    ids = ids[-limit:]
            return self._profiles_by_ids(conn, ids)

    def latest_profile(self, table: str, partition: str | None) -> TableProfile | None:
        with self.engine.connect() as conn:
            ids = self._latest_profile_ids(conn, table, [partition_key(partition)])
            got = self._profiles_by_ids(conn, list(ids.values()))
            return got[0] if got else None

    def tables(self) -> list[str]:
        with self.engine.connect() as conn:
            a = {r[0] for r in conn.execute(sa.select(self.t["profiles"].c.table_name).distinct())}
            b = {r[0] for r in conn.execute(sa.select(self.t["check_results"].c.table_name).distinct())}
        return sorted(a | b)

    def check_results(self, table: str | None = None, partition: str | None = None, latest_only: bool = True,
                      kind: str | None = None) -> list[CheckRecord]:
        """Stored check results; by default the latest evaluation of each (table, partition, check)."""
        c = self.t["check_results"]
        q = sa.select(c)
        if table is not None:
            q = q.where(c.c.table_name == table)
        if partition is not None:
            q = q.where(c.c.partition_key == partition)
        if kind is not None:
            q = q.where(c.c.kind == kind)
        if latest_only:
            newest = sa.select(sa.func.max(c.c.id)).group_by(c.c.table_name, c.c.partition_key, c.c.check_name)
            if table is not None:
                newest = newest.where(c.c.table_name == table)
            q = q.where(c.c.id.in_(newest))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.c.id)).mappings().all()
        return [CheckRecord(
            table=r["table_name"], partition=None if r["partition_key"] == SNAPSHOT_KEY else r["partition_key"],
            check_name=r["check_name"], kind=r["kind"], severity=r["severity"], passed=bool(r["passed"]),
            expectation_type=r["expectation_type"], column=r["column_name"], observed_value=_load(r["observed_value"]),
            element_count=r["element_count"], unexpected_count=r["unexpected_count"],
            unexpected_percent=r["unexpected_percent"], examples=_load(r["examples"]), details=_load(r["details"]),
            description=r["description"], notes=r["notes"], run_id=r["run_id"], evaluated_at=_utc(r["evaluated_at"]),
        ) for r in rows]

    def row_counts(self, table: str, limit: int | None = None) -> pl.DataFrame:
        """partition, row_count of the newest profile of each partition (the last ``limit`` partitions)."""
        hist = self.profile_history(table, limit=limit)
        return pl.DataFrame({"partition": [p.partition or SNAPSHOT_KEY for p in hist],
                             "row_count": [p.row_count for p in hist]},
                            schema={"partition": pl.String, "row_count": pl.Int64})

    def null_rates(self, table: str, limit: int | None = None) -> pl.DataFrame:
        """partition, column, null_rate (whole columns, newest profile per partition)."""
        rows = [(p.partition or SNAPSHOT_KEY, c.column, c.null_rate) for p in self.profile_history(table, limit=limit)
                for c in p.columns if not c.segment]
        return pl.DataFrame(rows, schema={"partition": pl.String, "column": pl.String, "null_rate": pl.Float64},
                            orient="row")

    def segment_null_rates(self, table: str, limit: int | None = None) -> pl.DataFrame:
        """partition, column, segment, rows, null_rate of the per-group null counts (profile ``nulls_by``)."""
        rows = [(p.partition or SNAPSHOT_KEY, c.column, c.segment, c.rows, c.null_rate)
                for p in self.profile_history(table, limit=limit) for c in p.columns if c.kind == "nulls"]
        return pl.DataFrame(rows, schema={"partition": pl.String, "column": pl.String, "segment": pl.String,
                                          "rows": pl.Int64, "null_rate": pl.Float64}, orient="row")

    def quarantine_history(self, table: str | None = None, limit: int | None = None) -> pl.DataFrame:
        """table, partition, stage, rule, rows (newest profile per partition)."""
        tables = [table] if table else self.tables()
        rows = []
        for t in tables:
            for p in self.profile_history(t, limit=limit):
                for stage, rules in p.quarantine.items():
                    for rule, n in rules.items():
                        rows.append((t, p.partition or SNAPSHOT_KEY, stage, rule, n))
        return pl.DataFrame(rows, schema={"table": pl.String, "partition": pl.String, "stage": pl.String,
                                          "rule": pl.String, "rows": pl.Int64}, orient="row")

    # ------------------------------------------------------------------------------ incidents
    def upsert_incident(self, table: str, partition: str | None, failing: list[Mapping[str, Any]], run_id: str | None,
                        seen_at: datetime | None = None) -> dict[str, Any]:
        """Open (or update) the incident of a table partition; returns it, with ``new`` telling which."""
        i = self.t["incidents"]
        seen_at = seen_at or datetime.now(UTC)
        key = partition_key(partition)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(i).where(i.c.table_name == table, i.c.partition_key == key,
                                                  i.c.status == "open").order_by(i.c.id.desc()).limit(1)
                               ).mappings().first()
            if row is None:
                incident_id = conn.execute(i.insert().values(
                    table_name=table, partition_key=key, status="open", failing=_dump(list(failing)),
                    first_seen=seen_at, last_seen=seen_at, first_run_id=run_id, last_run_id=run_id, occurrences=1,
                ).returning(i.c.id)).scalar_one()
                new = True
            else:
                incident_id = row["id"]
                merged = {f["check_name"]: f for f in _load(row["failing"]) or []}
                merged.update({f["check_name"]: dict(f) for f in failing})
                same_run = row["last_run_id"] == run_id
                conn.execute(i.update().where(i.c.id == incident_id).values(
                    failing=_dump(list(merged.values())), last_seen=seen_at, last_run_id=run_id,
                    occurrences=row["occurrences"] + (0 if same_run else 1)))
                new = False
        incident = self.incident(int(incident_id))
        incident["new"] = new
        return incident

    def mark_notified(self, incident_id: int, result: str) -> None:
        i = self.t["incidents"]
        with self.engine.begin() as conn:
            conn.execute(i.update().where(i.c.id == incident_id).values(notified_at=datetime.now(UTC),
                                                                        notify_result=result))

    def resolve_incidents(self, table: str, partition: str | None) -> int:
        i = self.t["incidents"]
        with self.engine.begin() as conn:
            return conn.execute(i.update().where(i.c.table_name == table, i.c.partition_key == partition_key(partition),
                                                 i.c.status == "open").values(status="resolved")).rowcount

    def incident(self, incident_id: int) -> dict[str, Any]:
        i = self.t["incidents"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(i).where(i.c.id == incident_id)).mappings().one()
        return self._incident_dict(row)

    def incidents(self, status: str | None = None) -> list[dict[str, Any]]:
        i = self.t["incidents"]
        q = sa.select(i).order_by(i.c.id)
        if status:
            q = q.where(i.c.status == status)
        with self.engine.connect() as conn:
            return [self._incident_dict(r) for r in conn.execute(q).mappings().all()]

    @staticmethod
    def _incident_dict(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": int(row["id"]), "table": row["table_name"],
            "partition": None if row["partition_key"] == SNAPSHOT_KEY else row["partition_key"],
            "status": row["status"], "failing": _load(row["failing"]), "first_seen": _utc(row["first_seen"]),
            "last_seen": _utc(row["last_seen"]), "first_run_id": row["first_run_id"], "last_run_id": row["last_run_id"],
            "occurrences": row["occurrences"], "notified_at": _utc(row["notified_at"]),
            "notify_result": row["notify_result"],
        }
