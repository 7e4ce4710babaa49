"""The lake and the DuckDB catalog: atomic replacement, and no single-writer failures in parallel."""

import multiprocessing as mp
import os
from pathlib import Path

import polars as pl
import pytest

from governance.storage import Catalog, Lake


def test_write_replaces_partition_and_leaves_no_temporary_files(tmp_path):
    lake = Lake.at(tmp_path)
    lake.write("raw", "events", pl.DataFrame({"a": [1, 2, 3]}), "2026-11-10")
    lake.write("raw", "events", pl.DataFrame({"a": [4]}), "2026-11-10")
    assert lake.read("raw", "events", "2026-11-10")["a"].to_list() == [4]
    folder = tmp_path / "raw" / "events" / "date=2026-11-10"
    versions = [p.name for p in folder.iterdir() if p.name.startswith("v-")]
    assert len(versions) == 1 and os.readlink(folder / "current") == versions[0]
    assert sorted(p.name for p in folder.iterdir()) == sorted([".lock", "current", versions[0]])
    assert sorted(p.name for p in (folder / versions[0]).iterdir()) == ["_manifest.json", "data.parquet"]


def test_a_failed_write_keeps_the_previous_partition_readable(tmp_path, monkeypatch):
    lake = Lake.at(tmp_path)
    lake.write("raw", "events", pl.DataFrame({"a": [1]}), "2026-11-10")

    def crash(self, path, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(OSError):
        lake.write("raw", "events", pl.DataFrame({"a": [2]}), "2026-11-10")
    monkeypatch.undo()
    assert lake.read("raw", "events", "2026-11-10")["a"].to_list() == [1]
    folder = tmp_path / "raw" / "events" / "date=2026-11-10"
    assert len([p for p in folder.iterdir() if p.name.startswith("v-")]) == 1


def test_reading_a_missing_partition_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="raw.events .partition 2026-01-01. has not been materialized"):
        Lake.at(tmp_path).read("raw", "events", "2026-01-01")


def _write_and_register(root: str, day: int) -> None:
    lake = Lake.at(root)
    lake.write("raw", "events", pl.DataFrame({"day": [day] * 10}), f"2026-11-{day:02d}")
    Catalog.at(Path(root) / "warehouse.duckdb", lake).register("raw", "events")
    # a second, distinct table from every process too: every process must get the write lock
    lake.write("clean", f"t{day}", pl.DataFrame({"day": [day]}), None)
    Catalog.at(Path(root) / "warehouse.duckdb", lake).register("clean", f"t{day}")


def test_parallel_writers_never_fail_on_the_duckdb_lock(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_and_register, args=(str(tmp_path), d)) for d in range(1, 7)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 6
    catalog = Catalog.at(tmp_path / "warehouse.duckdb", Lake.at(tmp_path))
    assert catalog.query("select count(*) as n from raw.events")["n"][0] == 60
    assert catalog.query("select count(*) as n from clean.t6")["n"][0] == 1


def test_a_partition_written_before_commits_is_adopted_by_its_next_write_or_a_rebuild(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    for day in ("2026-11-10", "2026-11-11"):  # the old layout: <partition>/<part>.parquet
        folder = tmp_path / "lake" / "raw" / "events" / f"date={day}"
        folder.mkdir(parents=True)
        pl.DataFrame({"a": [1, 2]}).write_parquet(folder / "data.parquet")
    pl.DataFrame({"r": ["x"]}).write_parquet(tmp_path / "lake" / "raw" / "events" / "date=2026-11-10" / "extra.parquet")
    assert lake.partitions("raw", "events") == []  # not committed: absent
    lake.write("raw", "events", pl.DataFrame({"a": [9]}), "2026-11-10", part="other")
    assert lake.read("raw", "events", "2026-11-10")["a"].to_list() == [1, 2]  # adopted, carried forward
    assert lake.read("raw", "events", "2026-11-10", part="extra")["r"].to_list() == ["x"]
    catalog = Catalog.at(tmp_path / "warehouse.duckdb", lake)
    assert catalog.rebuild()["adopted"] == 1  # the other day
    assert lake.partitions("raw", "events") == ["2026-11-10", "2026-11-11"]
    assert not list((tmp_path / "lake" / "raw" / "events" / "date=2026-11-11").glob("*.parquet"))
    assert lake.verify("raw", "events", "2026-11-11") == []


def test_an_error_after_the_commit_point_keeps_the_new_version_for_recovery(tmp_path, monkeypatch):
    lake = Lake.at(tmp_path)
    lake.write("raw", "events", pl.DataFrame({"a": [1]}), "2026-11-10")

    def broken_publish(self, txid, versions):
        raise OSError("disk went away after the commit record")

    monkeypatch.setattr(Lake, "_publish", broken_publish)
    with pytest.raises(OSError):
        with lake.transaction():
            lake.write("raw", "events", pl.DataFrame({"a": [2]}), "2026-11-10")
            lake.write("quarantine", "events", pl.DataFrame({"q": [2]}), "2026-11-10", part="collection")
    monkeypatch.undo()
    assert lake.recover() == 1  # the committed transaction is rolled forward, whole
    assert lake.read("raw", "events", "2026-11-10")["a"].to_list() == [2]
    assert lake.read("quarantine", "events", "2026-11-10", part="collection")["q"].to_list() == [2]


def test_a_crash_during_a_days_first_write_leaves_the_day_absent_and_the_next_day_unharmed(tmp_path, monkeypatch):
    lake = Lake.at(tmp_path)
    lake.write("raw", "events", pl.DataFrame({"a": [1]}), "2026-11-09")

    def crash(self, path, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("killed")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(OSError):
        lake.write("raw", "events", pl.DataFrame({"a": [2]}), "2026-11-10")
    monkeypatch.undo()
    day = tmp_path / "raw" / "events" / "date=2026-11-10"
    (day / "v-00000000000000000001-1-deadbeef").mkdir()  # what a SIGKILL (no clean-up at all) leaves
    (day / "v-00000000000000000001-1-deadbeef" / "data.parquet").write_bytes(b"half a file")
    assert lake.partitions("raw", "events") == ["2026-11-09"]  # a folder without a commit is absent
    assert lake.scan("raw", "events").collect()["a"].to_list() == [1]  # and breaks no reader
    catalog = Catalog.at(tmp_path / "w.duckdb", lake)
    catalog.register("raw", "events")
    assert catalog.query("select count(*) as n from raw.events")["n"][0] == 1
    lake.write("raw", "events", pl.DataFrame({"a": [3]}), "2026-11-10")  # the next run of the day
    assert [p.name for p in day.iterdir() if p.name.startswith("v-")] == [os.readlink(day / "current")]
    assert catalog.query("select count(*) as n from raw.events")["n"][0] == 2


def test_the_view_tree_publishes_a_transaction_whole_and_never_another_writers_half(tmp_path):
    """The catalog's views read one tree of links swung by one rename: a transaction appears in every
    table at once, and a commit never picks up another writer's half-swung partitions."""
    lake = Lake.at(tmp_path / "lake")
    with lake.transaction():
        lake.write("raw", "events", pl.DataFrame({"a": [1, 2]}), "2026-01-01")
        lake.write("quarantine", "events", pl.DataFrame({"a": [9]}), "2026-01-01", part="collection")
    lake.write("raw", "events", pl.DataFrame({"a": [3]}), "2026-01-02")
    published = lake.views.published()
    assert set(published) == {("raw", "events"), ("quarantine", "events")}
    assert lake.views.differences() == []
    # another writer swung day 1's `current` but died before publishing (its record is gone): a later
    # commit of day 2 must carry day 1's PUBLISHED link, not the half-published one
    day1 = lake.partition_dir("raw", "events", "2026-01-01")
    shown_before = published[("raw", "events")]["date=2026-01-01"]
    stray = day1 / "v-stray"
    stray.mkdir()
    (day1 / "current").unlink()
    os.symlink("v-stray", day1 / "current")
    day2 = lake.partition_dir("raw", "events", "2026-01-02")
    lake.views.publish([day2 / os.readlink(day2 / "current")])  # day 2's (already committed) version again
    assert lake.views.published()[("raw", "events")]["date=2026-01-01"] == shown_before
    assert lake.views.differences() == [
        f"view tree: raw.events date=2026-01-01 shows {shown_before}, committed v-stray"]
    # DuckDB reads through the tree, and the catalog's views follow it
    catalog = Catalog.at(tmp_path / "warehouse.duckdb", lake)
    os.unlink(day1 / "current")
    os.symlink(shown_before, day1 / "current")
    catalog.register("raw", "events")
    assert catalog.query('select sum(a) as s from raw.events')["s"].item() == 6
    assert catalog.query('select sum(a) as s from quarantine.events')["s"].item() == 9
    # old trees beyond the kept ones are removed
    for i in range(5):
        lake.write("raw", "events", pl.DataFrame({"a": [i]}), "2026-01-03")
    assert len(list((lake.root / "_meta" / "views").glob("g-*"))) == lake.views.KEEP_TREES
