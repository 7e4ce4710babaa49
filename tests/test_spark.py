"""Cleaning on Apache Spark (local mode, ``local[2]``) equals the Polars engine exactly: the clean rows,
the quarantine rows with their rules and reasons, the audit and the per-rule counts, on the generated
shop (every injected fault kind, three days) and on the cross-day duplicate fixture; the landing order
survives Spark's shuffle; the settings choose the engine.

Collection on Spark equals collection on Polars exactly — raw rows with their lineage, quarantine rows
with rule and reason, audit, file reports, counts and ledger — on the generated shop's landed events
plus every collection fault (the malformed corpus of tests/security: encodings, compressed streams,
records over the limit, unparsable lines, links and pipes; files over the batch size, with faults in
them, so they are read in batches; duplicates within and across partitions).

One SparkSession for the module (starting the JVM is most of the cost); the fixtures are small."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from governance.cleaning import clean_partition, clean_with_settings
from governance.cleaning.spark import DAY, ORDER, clean_partitions, raw_rows
from governance.collection import (
    _record_batches,
    collect_with_settings,
    ingest_partition,
    landed_partitions,
    ledger_dir,
)
from governance.collection_spark import ingest_partition_on_spark
from governance.contracts import CONTRACTS
from governance.settings import Settings
from governance.shop import ShopConfig, generate_shop, land_shop
from governance.spark import session
from governance.storage import Lake

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "security"))
import test_collection as collection_cases  # noqa: E402 - the mixed files read in batches there
import test_cross_day as cross_day  # noqa: E402 - the cross-day fixture, landed the same way here
import test_malformed as malformed  # noqa: E402 - the malformed corpus

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 21, 6, tzinfo=UTC)
RUN = "spark-equality"
SOURCES = ("events", "reviews", "queries")


@pytest.fixture(scope="module")
def spark():
    spark = session("local[2]", {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4",
                                 "spark.driver.memory": "1g"})
    yield spark
    spark.stop()


def frames_equal(left: pl.DataFrame, right: pl.DataFrame, where: str) -> None:
    try:
        assert_frame_equal(left, right)
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from None


def tables(lake: Lake, source: str, partition: str | None) -> dict[str, pl.DataFrame]:
    return {"clean": lake.read("clean", source, partition),
            "quarantine": lake.read("quarantine", source, partition, part="cleaning"),
            "audit": lake.read("audit", source, partition, part="cleaning")}


def assert_same(polars: dict[str, pl.DataFrame], spark: dict[str, pl.DataFrame], where: str) -> None:
    """Equal as written (same rows, same order, same types) and equal sorted (the issue's wording)."""
    for name in ("clean", "quarantine", "audit"):
        frames_equal(spark[name], polars[name], f"{where} {name}")
        order = ["_source_file", "_row_number"] if name == "clean" else ["rule", "file", "row_number", "reason"]
        if name == "audit":
            order = ["rule", "column", "file", "row_number"]
        frames_equal(spark[name].sort(order), polars[name].sort(order), f"{where} {name} (sorted)")


def counts(outcomes) -> list[tuple]:
    return [(o.rule, o.action, o.rows, o.skipped) for o in outcomes]


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Lake, Path]:
    """A generated shop (every fault kind the generator injects) over three days, collected; the
    snapshots (products, users) cleaned — the references both engines read."""
    root = tmp_path_factory.mktemp("spark_shop")
    land_shop(generate_shop(ShopConfig(n_events=12_000, days=3, seed=11, end_date=date(2026, 11, 20))),
              root / "landing", root / "truth")
    lake = Lake.at(root / "lake")
    for source in ("products", "users"):
        ingest_partition(lake, CONTRACTS[source], root / "landing", None, run_id="t", ingested_at=NOW)
        assert clean_partition(lake, source, None, run_id="t", now=NOW).conserved
    for source in SOURCES:
        for day in landed_partitions(root / "landing", source):
            ingest_partition(lake, CONTRACTS[source], root / "landing", day, run_id="t", ingested_at=NOW)
    return lake, root


@pytest.mark.parametrize("source", SOURCES)
def test_spark_cleaning_equals_polars_on_the_generated_shop(spark, shop, source):
    lake, _ = shop
    days = lake.partitions("raw", source)
    assert len(days) >= 3
    polars = {}
    for day in days:  # the Polars path, day by day, as the daily assets run it
        result = clean_partition(lake, source, day, run_id=RUN, now=NOW)
        polars[day] = (tables(lake, source, day), counts(result.outcomes), result.rows_in)
    done = clean_partitions(spark, lake, source, days, run_id=RUN, now=NOW)  # all days in one Spark job
    assert list(done) == days
    quarantined = 0
    for day in days:
        expected, expected_counts, rows_in = polars[day]
        assert done[day].where == "spark"
        assert_same(expected, tables(lake, source, day), f"{source} {day}")
        assert counts(done[day].outcomes) == expected_counts
        assert (done[day].rows_in, done[day].rows_clean, done[day].rows_quarantined, done[day].rows_audit) == (
            rows_in, expected["clean"].height, expected["quarantine"].height, expected["audit"].height)
        assert done[day].conserved
        quarantined += expected["quarantine"].height
    # the fixture exercises the rules: rows leave through several rules on every source
    rules = {r for day in days for r in polars[day][0]["quarantine"]["rule"].unique()}
    assert quarantined > 0 and len(rules) >= 2, rules
    if source == "events":
        assert {"exact_duplicate", "key_duplicate", "bot_session", "unknown_item", "price_outlier"} <= rules


def test_spark_finds_duplicates_across_days_like_polars(spark, tmp_path):
    """The look-back window (the key index of earlier raw days) reaches the Spark tasks: re-sent rows
    on later days are quarantined with the same reasons, naming the earlier day's file and row."""
    days = list(cross_day.DAYS)
    polars = cross_day.run(tmp_path / "polars", days)
    landing, lake = cross_day.land(tmp_path / "spark"), Lake.at(tmp_path / "spark" / "lake")
    for source in ("products", "users"):
        ingest_partition(lake, CONTRACTS[source], landing, None, run_id="t", ingested_at=NOW)
        clean_partition(lake, source, None, run_id="t", now=NOW)
    for source in ("events", "reviews"):
        landed = landed_partitions(landing, source)
        for day in landed:
            ingest_partition(lake, CONTRACTS[source], landing, day, run_id="t", ingested_at=NOW)
        clean_partitions(spark, lake, source, list(reversed(landed)), run_id="t", now=NOW)
        for day in landed:
            mine, theirs = tables(lake, source, day), tables(polars, source, day)
            for name in mine:  # different lakes: the run's times differ, nothing else may
                drop = [c for c in ("quarantined_at", "fixed_at", "_ingested_at") if c in mine[name].columns]
                frames_equal(mine[name].drop(drop), theirs[name].drop(drop), f"{source} {day} {name}")
    reasons = lake.read("quarantine", "events", "2026-11-02", part="cleaning")["reason"].to_list()
    assert any("partition 2026-11-01" in r for r in reasons), reasons


def test_landing_order_survives_the_shuffle(spark, shop):
    """The duplicate rules keep the first delivery in landing order; Spark's shuffle does not keep row
    order, the Parquet row index does: shuffled rows sorted by it are the raw partition again."""
    lake, _ = shop
    day = lake.partitions("raw", "events")[0]
    rows = raw_rows(spark, lake, "events", [day]).repartition(5)
    shuffled = pl.from_arrow(rows.toArrow())
    restored = shuffled.sort(ORDER).drop(ORDER, DAY)
    raw = lake.read("raw", "events", day)
    assert not shuffled.drop(ORDER, DAY).equals(raw)  # the shuffle did reorder: the test can fail
    assert_frame_equal(restored, raw)


def test_settings_choose_the_engine(spark, shop, tmp_path):
    """engine=spark (GOVERNANCE_ENGINE) sends the asset's call to Spark at spark_master; the result
    it returns is what the lake holds, equal to the Polars engine's."""
    lake, root = shop
    copy = tmp_path / "data"
    shutil.copytree(root / "lake", copy / "lake", symlinks=True)
    day = lake.partitions("raw", "events")[-1]
    settings = Settings.load(env={}, data_root=str(copy))
    on_polars = clean_with_settings(settings, "events", day, run_id=RUN, now=NOW)
    written = tables(settings.lake(), "events", day)
    spark_settings = Settings.load(env={"GOVERNANCE_ENGINE": "spark", "GOVERNANCE_SPARK_MASTER": "local[2]"},
                                   data_root=str(copy))
    assert (spark_settings.engine, spark_settings.spark_master) == ("spark", "local[2]")
    on_spark = clean_with_settings(spark_settings, "events", day, run_id=RUN, now=NOW)
    assert_same(written, {"clean": on_spark.clean, "quarantine": on_spark.quarantine, "audit": on_spark.audit},
                f"events {day} via settings")
    assert_same(written, tables(settings.lake(), "events", day), f"events {day} in the lake")
    assert counts(on_spark.outcomes) == counts(on_polars.outcomes) and on_spark.conserved


def test_an_object_storage_lake_is_refused_with_the_reason(tmp_path):
    """The executors read and publish through the lake's file system; an s3:// lake is not set up for
    Spark (s3a): refused before any job starts, naming the lake and what to do."""
    from governance.object_store import ObjectLake

    lake = ObjectLake.at("s3://bucket/lake", cache=tmp_path)
    with pytest.raises(RuntimeError, match="s3://bucket/lake.*shared file system"):
        clean_partitions(None, lake, "events", ["2026-11-01"], run_id=RUN, now=NOW)
    with pytest.raises(RuntimeError, match="s3://bucket/lake.*shared file system"):
        ingest_partition_on_spark(None, lake, CONTRACTS["events"], tmp_path / "landing", "2026-11-01", run_id=RUN,
                                  ingested_at=NOW)


# ---------------------------------------------------------------------------------------------
# collection

#: small limits, so the fixture's files are read in batches and its long records are cut
BATCH_BYTES = 16 << 10
MAX_RECORD_BYTES = 600
COLLECTION_TABLES = (("raw", "data"), ("quarantine", "collection"), ("audit", "collection"))


@pytest.fixture(scope="module")
def landing(shop, tmp_path_factory) -> Path:
    """The shop's landed events (three days, read in batches: CSV, JSON Lines, Parquet) and two more
    days: the malformed corpus, and files over the batch size with faults inside (the mixed files of
    test_collection: unparsable values, missing values, a ragged row, quoted newlines, records over the
    limit, lines that are not JSON; with and without a byte order mark), a large cp1252 file (read
    whole: its encoding needs the whole text), a blank large file, a CSV whose header is over the
    limit, the same content twice, content of another partition, a hidden file and a folder."""
    _, root = shop
    base = tmp_path_factory.mktemp("spark_collection")
    landing = base / "landing"
    shutil.copytree(root / "landing" / "events", landing / "events")
    malformed.land_corpus(landing, MAX_RECORD_BYTES)  # events/2026-11-10
    day = landing / "events" / "2026-11-11"
    day.mkdir()
    mixed_csv, mixed_jsonl = collection_cases._mixed_csv(500).encode(), collection_cases._mixed_jsonl(500).encode()
    (day / "mixed.csv").write_bytes(mixed_csv)
    (day / "mixed-bom.jsonl").write_bytes(b"\xef\xbb\xbf" + mixed_jsonl)
    (day / "mixed-again.csv").write_bytes(mixed_csv)  # the same content: skipped
    (day / "zz-cp1252.csv").write_bytes(malformed._csv([f"e{i},sé{i},u1,p€,view,2026-11-11T10:00:00Z,1,1"
                                                        for i in range(800)]).encode("cp1252"))
    (day / "blank.jsonl").write_bytes(b"\n \n" * (BATCH_BYTES // 2))
    (day / "wide-header.csv").write_bytes((",".join(f"column_{i}" for i in range(80)) + "\n"
                                           + "1,2\n" * BATCH_BYTES).encode())
    shutil.copyfile(root / "landing" / "events" / "2026-11-18" / "events-00.csv", day / "from-another-day.csv")
    (day / ".hidden.csv").write_bytes(mixed_csv)
    (day / "folder").mkdir()
    # lines that start like a bzip2 stream: one begins a batch, whose text is no file head (not refused)
    event = ('{"event_id": "m%d", "session_id": "s1", "item_id": "p1", "event_type": "view", '
             '"event_time": "2026-11-11T10:00:00Z"}')
    (day / "magic-lines.jsonl").write_text("".join(f"{event % i}\nBZh91AY&SY not JSON {i}\n" for i in range(300)))
    return landing


def collected(lake: Lake, partition: str) -> dict[str, pl.DataFrame]:
    return {layer: lake.read(layer, "events", partition, part=part) for layer, part in COLLECTION_TABLES}


def assert_same_collection(polars, spark, where: str) -> None:
    """Two collections' results (`CollectionResult`) equal: rows, reports, counts."""
    for name in ("raw", "quarantine", "audit"):
        frames_equal(getattr(spark, name), getattr(polars, name), f"{where} result.{name}")
    assert [f.as_dict() for f in spark.files] == [f.as_dict() for f in polars.files], where
    assert (spark.rows_landed, spark.rows_read, spark.quarantine_by_rule()) == (
        polars.rows_landed, polars.rows_read, polars.quarantine_by_rule()), where


def test_spark_collection_equals_polars_with_every_collection_fault(spark, landing, tmp_path):
    """Partition by partition, as the assets run it: the raw, quarantine and audit tables the two
    engines publish, the results they return (file reports included) and the ledgers are equal — the
    same rows in the same order, lineage (file, hash, row number, partition, ingest time) included."""
    on_polars, on_spark = Lake.at(tmp_path / "polars"), Lake.at(tmp_path / "spark")
    days = landed_partitions(landing, "events")
    assert len(days) == 5
    rules, statuses, batched = set(), set(), 0
    for day in days:
        kwargs = dict(run_id=RUN, ingested_at=NOW, max_record_bytes=MAX_RECORD_BYTES, batch_bytes=BATCH_BYTES)
        polars = ingest_partition(on_polars, CONTRACTS["events"], landing, day, **kwargs)
        result = ingest_partition_on_spark(spark, on_spark, CONTRACTS["events"], landing, day, **kwargs)
        assert_same_collection(polars, result, day)
        written, theirs = collected(on_spark, day), collected(on_polars, day)
        for name in written:
            frames_equal(written[name], theirs[name], f"{day} {name}")
        assert written["raw"].height == result.rows_landed
        rules |= set(theirs["quarantine"]["rule"])
        statuses |= {f.status for f in polars.files}
        batched += sum("batch(es)" in f.note for f in polars.files)
    ledger = on_spark.read_json_dir(ledger_dir("events"))
    assert ledger == on_polars.read_json_dir(ledger_dir("events")) and set(ledger) == set(days)
    # the fixture has what it claims: every kind of fault, files read in batches and read whole
    assert {"unparsable_value", "missing_required_value", "ragged_row", "unparsable_line", "record_too_large",
            "record_too_deep", "undecodable_bytes", "compressed_file", "not_a_regular_file", "unreadable_file",
            "empty_file", "no_data_rows", "missing_required_column"} <= rules, rules
    assert {"ingested", "duplicate_skipped", "refused", "unreadable", "empty", "skipped"} <= statuses, statuses
    assert batched >= 6
    with open(landing / "events" / "2026-11-11" / "magic-lines.jsonl", "rb") as f:
        starts = [body[:3] for body in _record_batches(f.fileno(), 0, os.fstat(f.fileno()).st_size, BATCH_BYTES, False)]
    assert b"BZh" in starts[1:]


def test_settings_choose_the_engine_for_collection(spark, landing, tmp_path):
    """engine=spark (GOVERNANCE_ENGINE) sends the collection asset's call to Spark — a Spark job runs
    — and what it publishes equals engine=polars, with the settings' record limit."""
    day = landed_partitions(landing, "events")[1]
    env = {"GOVERNANCE_LANDING_ROOT": str(landing), "GOVERNANCE_MAX_RECORD_BYTES": str(MAX_RECORD_BYTES)}
    on_polars = Settings.load(env=env, data_root=str(tmp_path / "polars"))
    on_spark = Settings.load(env={**env, "GOVERNANCE_ENGINE": "spark", "GOVERNANCE_SPARK_MASTER": "local[2]"},
                             data_root=str(tmp_path / "spark"))
    tracker = spark.sparkContext.statusTracker()
    jobs = len(tracker.getJobIdsForGroup())
    polars = collect_with_settings(on_polars, CONTRACTS["events"], day, run_id=RUN, ingested_at=NOW)
    assert len(tracker.getJobIdsForGroup()) == jobs
    result = collect_with_settings(on_spark, CONTRACTS["events"], day, run_id=RUN, ingested_at=NOW)
    assert len(tracker.getJobIdsForGroup()) > jobs  # it ran on Spark
    assert_same_collection(polars, result, day)
    written, theirs = collected(on_spark.lake(), day), collected(on_polars.lake(), day)
    for name in written:
        frames_equal(written[name], theirs[name], f"{day} {name} via settings")
    assert result.rows_landed > 0


def test_a_file_swapped_after_the_driver_listed_it(spark, tmp_path, monkeypatch):
    """A landed file replaced by a link between the driver's listing and a task's read: read whole, it
    is refused with its quarantine row — what the Polars path does with the link; read in batches (the
    driver cut the file it saw), the partition fails and nothing of it is published."""
    from governance.collection import CollectionError
    from governance.collection_spark import SparkCollector

    landing, day = tmp_path / "landing", "2026-11-10"
    folder = landing / "events" / day
    folder.mkdir(parents=True)
    (folder / "small.csv").write_text(collection_cases.GOOD_CSV)
    (folder / "large.csv").write_text(collection_cases._mixed_csv(400))
    (tmp_path / "elsewhere.csv").write_text(collection_cases.GOOD_CSV.replace("e1,", "secret,"))
    plan = SparkCollector._plan

    def swap(name):
        def planned(self):
            out = plan(self)
            (folder / name).unlink()
            (folder / name).symlink_to(tmp_path / "elsewhere.csv")
            return out
        return planned

    kwargs = dict(run_id=RUN, ingested_at=NOW, max_record_bytes=MAX_RECORD_BYTES, batch_bytes=BATCH_BYTES)
    monkeypatch.setattr(SparkCollector, "_plan", swap("small.csv"))
    result = ingest_partition_on_spark(spark, Lake.at(tmp_path / "spark"), CONTRACTS["events"], landing, day, **kwargs)
    polars = ingest_partition(Lake.at(tmp_path / "polars"), CONTRACTS["events"], landing, day, **kwargs)
    assert_same_collection(polars, result, day)
    assert "not_a_regular_file" in result.quarantine["rule"] and "secret" not in result.raw["event_id"]

    monkeypatch.setattr(SparkCollector, "_plan", swap("large.csv"))
    (folder / "small.csv").unlink()
    (folder / "small.csv").write_text(collection_cases.GOOD_CSV)
    lake = Lake.at(tmp_path / "spark-batched")
    with pytest.raises(CollectionError, match="large.csv: the file changed while it was collected"):
        ingest_partition_on_spark(spark, lake, CONTRACTS["events"], landing, day, **kwargs)
    assert not lake.exists("raw", "events", day) and not lake.exists("quarantine", "events", day, part="collection")
