"""Configurable resources: where the lake, the landing zone and the DuckDB catalog live.

Configuration is read at run time (never at import), so tests point a resource at a temporary
directory and production points it elsewhere without touching asset code.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from governance.storage import Catalog, Lake

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def default_data_root() -> str:
    return os.environ.get("GOVERNANCE_DATA_ROOT", str(PROJECT_ROOT / "data"))


class WarehouseResource(dg.ConfigurableResource):
    """The embedded warehouse: Parquet lake (store of record) + DuckDB catalog of views over it."""

    data_root: str = ""
    lake_root: str = ""  # defaults to <data_root>/lake; may point at another mount
    landing_root: str = ""  # defaults to <data_root>/landing

    def _data(self) -> Path:
        return Path(self.data_root or default_data_root())

    @property
    def lake(self) -> Lake:
        return Lake.at(self.lake_root or self._data() / "lake")

    @property
    def landing(self) -> Path:
        return Path(self.landing_root or self._data() / "landing").resolve()

    @property
    def catalog(self) -> Catalog:
        return Catalog.at(self._data() / "warehouse.duckdb", self.lake)

    @property
    def data_dir(self) -> Path:
        return self._data().resolve()
