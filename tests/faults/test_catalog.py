"""The catalog is derived state: deleted, stale, broken or held by an analyst, it never loses a view for good
and never fails a materialization."""

import argparse
import shutil
import subprocess
import sys
import time
import warnings

import duckdb
import polars as pl
import pytest

from governance.settings import Settings
from governance.storage import Catalog, CatalogDeferredWarning, Lake
from governance.storage_cli import add_commands, check

TABLES = [("raw", "events"), ("raw", "users"), ("quarantine", "events"), ("audit", "events"), ("clean", "events"),
          ("clean", "users"), ("integrated", "sessions")]


def _lake(tmp_path) -> tuple[Lake, Catalog]:
    lake = Lake.at(tmp_path / "lake")
    for i, (layer, table) in enumerate(TABLES):
        for day in ("2026-11-10", "2026-11-11"):
            lake.write(layer, table, pl.DataFrame({"n": [i] * 3, "day": [day] * 3}), day)
    catalog = Catalog.at(tmp_path / "warehouse.duckdb", lake)
    for layer, table in TABLES:
        catalog.register(layer, table)
    return lake, catalog


def _views(catalog: Catalog) -> set[tuple[str, str]]:
    return {k for k in catalog.views() if k[0] in ("raw", "quarantine", "audit", "clean", "integrated")}


def test_a_deleted_catalog_is_healed_whole_by_the_next_registration(tmp_path):
    lake, catalog = _lake(tmp_path)
    assert _views(catalog) == set(TABLES)
    catalog.path.unlink()
    assert catalog.register("raw", "events") == "written"  # one materialization of one table …
    assert _views(catalog) == set(TABLES)  # … re-creates every view the lake has
    for layer, table in TABLES:
        assert catalog.query(f"select count(*) as n from {layer}.{table}")["n"][0] == 6
    assert catalog.register("raw", "events") == "current"  # and then nothing is written


def test_catalog_rebuild_command_recreates_every_view_and_check_finds_nothing(tmp_path, capsys):
    lake, catalog = _lake(tmp_path)
    catalog.path.unlink()
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["catalog", "check"])
    args.settings = Settings.load(data_root=str(tmp_path), lake_root=str(tmp_path / "lake"))
    assert args.func(args) == 1 and "missing or stale" in capsys.readouterr().out
    args = parser.parse_args(["catalog", "rebuild"])
    args.settings = Settings.load(data_root=str(tmp_path), lake_root=str(tmp_path / "lake"))
    assert args.func(args) == 0
    assert _views(catalog) == set(TABLES) and check(catalog) == []


def test_stale_and_orphan_views_are_repaired(tmp_path):
    lake, catalog = _lake(tmp_path)
    lake.write("clean", "gone", pl.DataFrame({"n": [1]}))
    catalog.register("clean", "gone")
    shutil.rmtree(lake.table_dir("clean", "gone"))  # its view no longer reads
    con = duckdb.connect(str(catalog.path))
    con.execute("CREATE OR REPLACE VIEW raw.events AS SELECT 1 AS stale")  # e.g. the lake moved
    con.execute("CREATE OR REPLACE VIEW clean.analysts_own AS SELECT 42 AS answer")  # not the catalog's
    con.close()
    assert catalog.register("clean", "users") == "written"
    assert catalog.query("select count(*) as n from raw.events")["n"][0] == 6
    assert ("clean", "gone") not in catalog.views()
    catalog.rebuild()
    assert catalog.query("select answer from clean.analysts_own")["answer"][0] == 42  # an analyst's view stays


def test_a_broken_catalog_file_is_moved_aside_and_made_again(tmp_path):
    lake, catalog = _lake(tmp_path)
    catalog.path.write_bytes(b"this is not a duckdb file" * 100)
    assert catalog.register("raw", "events") == "written"
    assert _views(catalog) == set(TABLES)
    assert list(tmp_path.glob("warehouse.duckdb.broken-*"))


HOLD = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1], read_only=True)
con.sql("select count(*) from raw.events").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_an_analyst_session_defers_views_with_a_warning_and_never_fails_the_write(tmp_path):
    lake, catalog = _lake(tmp_path)
    analyst = subprocess.Popen([sys.executable, "-c", HOLD, str(catalog.path), "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert analyst.stdout.readline().strip() == "holding"
        lake.write("clean", "products", pl.DataFrame({"n": [1]}))  # a new table while the analyst reads
        quick = Catalog(catalog.path, lake, lock_timeout_s=1.0)
        started = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert quick.register("clean", "products") == "deferred"
        assert time.monotonic() - started < 10
        assert any(issubclass(w.category, CatalogDeferredWarning) for w in caught)
        assert "clean.products" in str(caught[0].message)
    finally:
        analyst.kill()
        analyst.wait()
    assert catalog.register("clean", "users") == "written"  # the next run creates the deferred view
    assert catalog.query("select count(*) as n from clean.products")["n"][0] == 1


@pytest.mark.parametrize("layer", ["nope"])
def test_an_unknown_layer_is_refused(tmp_path, layer):
    with pytest.raises(ValueError, match="unknown layer"):
        Catalog.at(tmp_path / "w.duckdb", Lake.at(tmp_path)).register(layer, "x")
