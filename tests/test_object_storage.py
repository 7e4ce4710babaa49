"""The lake on object storage, against a local S3-compatible server (moto in server mode on 127.0.0.1):
partitions written, read back and replaced by commit records, unpublished versions invisible, a
transaction across layers published by one PUT, the DuckDB catalog's views over the published objects,
and collection + cleaning of a small shop giving the tables the local lake gives."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import polars as pl
import pytest
from moto.server import ThreadedMotoServer

from governance.cleaning import clean_partition
from governance.collection import ingest_partition, landed_partitions
from governance.contracts import CONTRACTS, EVENTS
from governance.object_store import COMMITS, ObjectCatalog, ObjectLake, ObjectTransaction, S3Config, is_url
from governance.settings import Settings
from governance.shop import ShopConfig, generate_shop, land_shop
from governance.storage import Catalog, Lake

NOW = datetime(2026, 11, 21, 6, tzinfo=UTC)
DAY = "2026-11-10"
KEY, SECRET = "governance-test-key", "governance-test-secret-do-not-log"


@pytest.fixture(scope="module")
def s3_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch, request):
    """A fresh bucket, and the standard S3 environment variables pointing at the local server."""
    for name, value in {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    bucket = "lake-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    client = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return {"bucket": bucket, "client": client, "url": f"s3://{bucket}/warehouse"}


def keys(s3, prefix: str = "") -> list[str]:
    pages = s3["client"].get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=prefix)
    # pyarrow's client leaves empty "folder/" marker objects: not data
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/"))


def frame(n: int, tag: str) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"{tag}{i}" for i in range(n)], "value": list(range(n))})


def test_a_lake_root_url_gives_an_object_lake_configured_from_the_environment(s3, tmp_path):
    settings = Settings.load(env={}, data_root=str(tmp_path), lake_root=s3["url"])
    lake = settings.lake()
    assert isinstance(lake, ObjectLake) and is_url(settings.lake_root) and not is_url(tmp_path)
    assert lake.bucket == s3["bucket"] and lake.prefix == "warehouse"
    assert isinstance(settings.catalog(), ObjectCatalog) and isinstance(Lake.at(tmp_path / "x"), Lake)
    config = S3Config.from_env()
    assert config.endpoint_url.startswith("http://127.0.0.1:") and config.access_key == KEY
    assert SECRET not in repr(config) and SECRET not in repr(lake)
    with pytest.raises(ValueError, match="credentials do not go in the lake URL"):
        ObjectLake.at(f"s3://{KEY}:{SECRET}@bucket/x")


def test_a_partition_is_written_read_back_and_replaced_whole(s3, tmp_path):
    lake = ObjectLake.at(s3["url"], cache=tmp_path)
    lake.write("raw", "events", frame(5, "a"), DAY)
    assert lake.read("raw", "events", DAY).equals(frame(5, "a"))
    assert lake.partitions("raw", "events") == [DAY] and lake.exists("raw", "events", DAY)
    first = lake.part_path("raw", "events", DAY)
    assert first.exists() and first.startswith(s3["url"] + "/raw/events/date=2026-11-10/v-")
    lake.write("raw", "events", frame(3, "b"), DAY)
    assert lake.read("raw", "events", DAY).equals(frame(3, "b"))
    assert lake.scan("raw", "events").collect().equals(frame(3, "b"))
    # the superseded version and its record are gone; one version and one record remain
    assert not first.exists()
    versions = {k.split("/")[4] for k in keys(s3, "warehouse/raw/events/")}
    assert len(versions) == 1 and len(keys(s3, f"warehouse/{COMMITS}/")) == 1
    manifest = lake.manifest("raw", "events", DAY)
    assert manifest["parts"]["data"]["rows"] == 3 and lake.verify("raw", "events", DAY) == []


def test_an_unpublished_version_is_invisible(s3, tmp_path):
    lake = ObjectLake.at(s3["url"], cache=tmp_path)
    lake.write("raw", "events", frame(4, "old"), DAY)
    # a writer that uploaded its version and died before its commit record
    crashed = ObjectTransaction(lake)
    crashed.write("raw", "events", frame(9, "new"), DAY, "data")
    crashed.write("raw", "events", frame(2, "other"), "2026-11-11", "data")
    uploaded = keys(s3, "warehouse/raw/events/")
    assert any(crashed.id in k for k in uploaded)  # the objects are in the bucket …
    assert lake.read("raw", "events", DAY).equals(frame(4, "old"))  # … and nobody reads them
    assert lake.partitions("raw", "events") == [DAY] and not lake.exists("raw", "events", "2026-11-11")
    catalog = ObjectCatalog.at(tmp_path / "warehouse.duckdb", lake)
    catalog.register("raw", "events")
    assert catalog.query("select count(*) as n from raw.events")["n"].item() == 4
    # a transaction that fails after its uploads removes them and publishes nothing
    with pytest.raises(RuntimeError, match="boom"), lake.transaction():
        lake.write("raw", "events", frame(7, "failed"), DAY)
        raise RuntimeError("boom")
    assert lake.read("raw", "events", DAY).equals(frame(4, "old"))
    assert not any("failed" in k for k in keys(s3))


def test_a_transaction_across_layers_is_published_by_one_commit_record(s3, tmp_path, monkeypatch):
    lake = ObjectLake.at(s3["url"], cache=tmp_path)
    landing = tmp_path / "landing"
    (landing / "events" / DAY).mkdir(parents=True)
    (landing / "events" / DAY / "a.csv").write_text(
        "event_id,session_id,user_id,item_id,event_type,event_time,price,quantity\n"
        "e1,s1,u1,p1,view,2026-11-10T10:00:00Z,,\n"
        "e2,s1,u1,p1,purchase,2026-11-10T10:05:00Z,\"$1,299.00\",1\n"
        "e3,s1,u1,p2,click,n/a,,\n")
    # killed at the commit point: the three layers' versions are uploaded, none is published
    real_put = lake._put_json

    def no_commit(key, payload):
        if f"/{COMMITS}/" in key:
            raise OSError("killed at the commit point")
        return real_put(key, payload)

    monkeypatch.setattr(ObjectLake, "_put_json", lambda self, key, payload: no_commit(key, payload))
    with pytest.raises(OSError, match="commit point"):
        ingest_partition(lake, EVENTS, landing, DAY, run_id="r1", ingested_at=NOW)
    assert lake.tables() == [] and keys(s3, f"warehouse/{COMMITS}/") == []
    monkeypatch.undo()
    result = ingest_partition(lake, EVENTS, landing, DAY, run_id="r2", ingested_at=NOW)
    records = keys(s3, f"warehouse/{COMMITS}/")
    assert len(records) == 1
    body = s3["client"].get_object(Bucket=s3["bucket"], Key=records[0])["Body"].read().decode()
    assert all(f'"layer": "{layer}"' in body for layer in ("raw", "quarantine", "audit"))
    assert lake.read("raw", "events", DAY)["event_id"].to_list() == ["e1", "e2"] == result.raw["event_id"].to_list()
    assert lake.read("quarantine", "events", DAY, part="collection")["rule"].to_list() == ["unparsable_value"]
    assert lake.read("audit", "events", DAY, part="collection")["original"].to_list() == ["$1,299.00"]
    assert lake.read_json_dir("ledger/raw/events")[DAY]["run_id"] == "r2"


def test_the_duckdb_catalog_views_follow_the_published_objects(s3, tmp_path):
    settings = Settings.load(env={}, data_root=str(tmp_path), lake_root=s3["url"])
    lake, catalog = settings.lake(), settings.catalog()
    with lake.transaction():
        lake.write("raw", "events", frame(5, "a"), DAY)
        lake.write("raw", "events", frame(2, "b"), "2026-11-11")
        lake.write("quarantine", "events", frame(1, "q"), DAY, part="collection")
    assert catalog.register("raw", "events") == "written"
    assert catalog.register("raw", "events") == "current"
    q = "select count(*) as n, count(distinct id) as ids, sum(value) as s from raw.events"
    assert catalog.query(q).row(0) == (7, 7, 10 + 1)
    assert catalog.query("select count(*) as n from quarantine.events")["n"].item() == 1
    lake.write("raw", "events", frame(3, "c"), DAY)  # replace one partition
    assert catalog.register("raw", "events") == "written"
    assert catalog.query(q).row(0) == (5, 5, 3 + 1)
    assert "s3lake://" in catalog.views()[("raw", "events")] and "httpfs" not in str(catalog.views())
    assert catalog.rebuild()["views"] == 2
    ObjectCatalog.at(tmp_path / "warehouse.duckdb", lake).register("raw", "events")
    assert Catalog.at(tmp_path / "warehouse.duckdb", lake).query(q).row(0) == (5, 5, 4)


@pytest.mark.slow
def test_collection_and_cleaning_of_a_small_shop_over_s3_give_the_local_lake_tables(s3, tmp_path):
    land_shop(generate_shop(ShopConfig(n_events=3000, days=3, seed=5, end_date=date(2026, 11, 20))),
              tmp_path / "landing", tmp_path / "truth")
    lakes = {"s3": ObjectLake.at(s3["url"], cache=tmp_path / "cache"), "local": Lake.at(tmp_path / "lake")}
    for lake in lakes.values():
        for source in ("products", "users"):
            ingest_partition(lake, CONTRACTS[source], tmp_path / "landing", None, run_id="t", ingested_at=NOW)
            assert clean_partition(lake, source, None, run_id="t", now=NOW).conserved
        for source in ("events", "reviews"):
            for day in landed_partitions(tmp_path / "landing", source):
                ingest_partition(lake, CONTRACTS[source], tmp_path / "landing", day, run_id="t", ingested_at=NOW)
                assert clean_partition(lake, source, day, run_id="t", now=NOW).conserved
    s3_lake, local = lakes["s3"], lakes["local"]
    assert s3_lake.tables() == local.tables() and len(local.tables()) >= 10
    for layer, table in local.tables():
        for part in ("data", "collection", "cleaning"):
            try:
                want = local.scan(layer, table, part=part).collect()
            except FileNotFoundError:
                continue
            got = s3_lake.scan(layer, table, part=part).collect()
            order = [c for c in want.columns if want.schema[c] in (pl.String, pl.Int64)][:4]
            assert got.sort(order).equals(want.sort(order)), (layer, table, part)
    assert s3_lake.partitions("clean", "events") == local.partitions("clean", "events") != []


def test_a_large_file_is_streamed_to_the_object_store_in_batches(s3, tmp_path):
    landing = tmp_path / "landing"
    (landing / "events" / DAY).mkdir(parents=True)
    lines = ["event_id,session_id,item_id,event_type,event_time,price"]
    lines += [f"e{i},s{i // 5},p{i % 7},view,{'n/a' if i % 29 == 3 else '2026-11-10T10:00:00Z'},{i}.25"
              for i in range(3000)]
    (landing / "events" / DAY / "big.csv").write_text("\n".join(lines) + "\n")
    s3_lake, local = ObjectLake.at(s3["url"], cache=tmp_path / "cache"), Lake.at(tmp_path / "lake")
    streamed = ingest_partition(s3_lake, EVENTS, landing, DAY, run_id="r", ingested_at=NOW, batch_bytes=4096)
    whole = ingest_partition(local, EVENTS, landing, DAY, run_id="r", ingested_at=NOW)
    assert streamed.files[0].note.startswith("collected in ") and "batch" not in whole.files[0].note
    assert streamed.rows_landed == whole.rows_landed == 3000 - 104
    assert s3_lake.read("raw", "events", DAY).equals(local.read("raw", "events", DAY))
    assert s3_lake.read("quarantine", "events", DAY, part="collection").equals(
        local.read("quarantine", "events", DAY, part="collection"))
    assert s3_lake.manifest("raw", "events", DAY)["parts"]["data"]["rows"] == 2896
