"""Shared helpers for the quality tests (no tests here): tiny lakes, stores on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from synthetic_data import quality_frames as S
from governance.quality.runner import suites_dir
from governance.quality.store import QualityStore
from governance.storage import Lake

SUITES = suites_dir()
PG_URL = os.environ.get("GOVERNANCE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="GOVERNANCE_TEST_POSTGRES_URL not set (CI sets it via .ci/postgres.sh)"))]


@contextmanager
def quality_store(backend: str, tmp_path: Path):
    """A fresh, migrated store: SQLite in tmp_path, or a throwaway schema on the CI PostgreSQL."""
    if backend == "sqlite":
        yield QualityStore(f"sqlite:///{tmp_path / 'quality.db'}")
        return
    schema = f"quality_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield QualityStore(PG_URL, schema=schema)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def snapshots(n_products: int = 300, n_users: int = 200) -> tuple[pl.DataFrame, pl.DataFrame]:
    return S.products_frame(n_products), S.users_frame(n_users)


def lake_with_snapshots(tmp_path: Path, n_products: int = 300, n_users: int = 200):
    lake = Lake.at(tmp_path / "lake")
    products, users = snapshots(n_products, n_users)
    lake.write("clean", "products", products)
    lake.write("clean", "users", users)
    return lake, products, users


def write_days(lake: Lake, products: pl.DataFrame, users: pl.DataFrame, days: list[str], rows: int = 4000,
               drifts: dict[str, S.Drift] | None = None, seed: int = 3) -> None:
    """Daily clean.events partitions (±7% volume noise) plus their quarantine parts."""
    rng = np.random.default_rng(seed)
    for i, day in enumerate(days):
        n = int(rows * rng.uniform(0.93, 1.07))
        lake.write("clean", "events", S.events_frame(day, n, products, users, drift=(drifts or {}).get(day)), day)
        lake.write("quarantine", "events", S.quarantine_frame(
            "events", day, {"bot_session": 5 + i % 4, "unknown_item": 2 + i % 3}), day, part="cleaning")
        lake.write("quarantine", "events", S.quarantine_frame(
            "events", day, {"unparsable_value": 1 + i % 2}, stage="collection"), day, part="collection")
