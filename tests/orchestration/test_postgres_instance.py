"""A PostgreSQL-backed Dagster instance (``dagster.postgres.yaml``): runs, the event log and
schedules live in PostgreSQL, and one setting (``GOVERNANCE_POSTGRES_URL``) points both the
instance and the quality store at one server. Runs against the server ``.ci/run`` starts
(``GOVERNANCE_TEST_POSTGRES_URL``; locally ``bash .ci/postgres.sh`` prints it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from assets.definitions import build_definitions
from governance.settings import Settings
from governance.shop import ShopConfig, generate_shop, land_shop

ROOT = Path(__file__).resolve().parents[2]
TEST_URL = os.environ.get("GOVERNANCE_TEST_POSTGRES_URL")


def test_the_postgres_instance_file_differs_from_dagster_yaml_only_in_its_storage():
    plain = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    postgres = yaml.safe_load((ROOT / "dagster.postgres.yaml").read_text())
    assert postgres.pop("storage") == {"postgres": {"postgres_url": {"env": "GOVERNANCE_POSTGRES_URL"}}}
    assert postgres == plain  # monitoring, retries, queue limits, pools, freshness: the same in both


def test_one_setting_names_the_server_for_the_quality_store():
    url = "postgresql+psycopg2://u:secret@db.example:5432/shop"
    settings = Settings.load(env={"GOVERNANCE_POSTGRES_URL": url, "GOVERNANCE_DATA_ROOT": "/tmp/x"})
    assert settings.quality_url == url and settings.postgres_url == url
    assert "secret" not in settings.describe()["postgres_url"]
    explicit = Settings.load(env={"GOVERNANCE_POSTGRES_URL": url, "GOVERNANCE_QUALITY_DB_URL": "sqlite:///q.db"})
    assert explicit.quality_url == "sqlite:///q.db"  # a quality store named on its own wins


@pytest.fixture
def schema_url():
    """A schema of its own on the test server (dropped afterwards): its URL selects it by search_path."""
    if not TEST_URL:
        pytest.skip("GOVERNANCE_TEST_POSTGRES_URL is not set: no PostgreSQL server (`bash .ci/postgres.sh` starts "
                    "one and prints its URL; .ci/run sets it)")
    schema = f"dagster_{uuid.uuid4().hex[:10]}"
    plain = TEST_URL
    engine = sa.create_engine(plain)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema, f"{plain}?options=-csearch_path%3D{schema}", engine
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.mark.slow
def test_runs_events_schedules_and_quality_results_share_one_postgres_server(schema_url, tmp_path, monkeypatch):
    schema, url, engine = schema_url
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    shutil.copy(ROOT / "dagster.postgres.yaml", home / "dagster.yaml")
    land_shop(generate_shop(ShopConfig(n_events=1_000, days=1, seed=2, end_date=date(2026, 11, 1))),
              data / "landing", data / "truth")
    monkeypatch.setenv("GOVERNANCE_POSTGRES_URL", url)  # the one setting
    monkeypatch.delenv("GOVERNANCE_QUALITY_DB_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        defs = build_definitions(data_root=str(data), demo="1")
        assert Settings.load().quality_url == url  # the quality store follows the same variable
        result = defs.resolve_job_def("collection_inputs").execute_in_process(instance=instance)
        assert result.success
        run_id = result.run_id
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "products"])).run_id == run_id
        cleaned = defs.resolve_job_def("cleaning_inputs").execute_in_process(instance=instance)
        assert cleaned.success and cleaned.get_asset_check_evaluations()  # its checks, recorded below too

    # a schedule started from the command line is stored there too (schedule storage)
    env = {**os.environ, "DAGSTER_HOME": str(home), "GOVERNANCE_DATA_ROOT": str(data), "GOVERNANCE_DEMO": "1",
           "GOVERNANCE_POSTGRES_URL": url, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("GOVERNANCE_QUALITY_DB_URL", None)
    started = subprocess.run([str(Path(sys.executable).parent / "dagster"), "schedule", "start", "nightly_lifecycle",
                              "-w", "workspace.yaml"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr[-2000:]

    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names(schema=schema))
        assert {"runs", "event_logs", "jobs", "job_ticks", "asset_keys"} <= tables  # Dagster's storage
        assert {"check_results", "profiles", "incidents"} <= tables  # the quality store, same server and schema
        runs = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".runs WHERE run_id = :r'), {"r": run_id})
        assert runs.scalar() == 1
        events = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".event_logs WHERE run_id = :r'), {"r": run_id})
        assert events.scalar() > 10
        schedule = conn.execute(sa.text(f'SELECT status FROM "{schema}".jobs WHERE job_type = \'SCHEDULE\' '
                                        "AND job_body LIKE '%nightly_lifecycle%'")).scalar()
        assert schedule == "RUNNING"
        stored = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".check_results')).scalar()
        assert stored > 0  # the run's Python checks were recorded in the quality store on this server
