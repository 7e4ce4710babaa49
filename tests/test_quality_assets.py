"""The Dagster layer: suites as partitioned, blocking asset checks; the report asset; the incident sensor."""


import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import polars as pl
import pytest

from assets.quality import quality_incident_sensor, quality_report
from assets.resources import WarehouseResource, governance_resources
from assets.suite_checks import suite_checks_for
from governance.quality.report import summary_text
from synthetic_data import quality_frames as S
from governance.quality.anomalies import ANOMALY_CHECKS
from governance.quality.suites import load_suite
from test_quality_support import SUITES, snapshots

GOOD, BAD = "2026-10-04", "2026-10-05"
daily = dg.DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-10")
PRODUCTS, USERS = snapshots()


@dg.asset(key=["clean", "products"])
def products(warehouse: WarehouseResource):
    warehouse.lake.write("clean", "products", PRODUCTS)


@dg.asset(key=["clean", "users"])
def users(warehouse: WarehouseResource):
    warehouse.lake.write("clean", "users", USERS)


@dg.asset(key=["clean", "events"], partitions_def=daily, deps=[products, users])
def events(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    frame = S.events_frame(context.partition_key, 2000, PRODUCTS, USERS)
    if context.partition_key == BAD:  # three impossible event types: an error expectation fails
        frame = frame.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("bogus"))
                                   .otherwise(pl.col("event_type")).alias("event_type"))
    warehouse.lake.write("clean", "events", frame, context.partition_key)


@dg.asset(key=["labelled", "events"], partitions_def=daily, deps=[events])
def downstream():
    return None


EVENT_CHECKS = suite_checks_for(["clean", "events"], "clean.events", daily)
PRODUCT_CHECKS = suite_checks_for(["clean", "products"], "clean.products")
ALL = [products, users, events, downstream, EVENT_CHECKS, PRODUCT_CHECKS, quality_report]


@pytest.fixture()
def env(tmp_path):
    resources = governance_resources(data_root=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([products, users, PRODUCT_CHECKS], instance=instance, resources=resources)
    assert result.success
    return instance, resources, tmp_path


def _run(instance, resources, day):
    return dg.materialize(
        ALL, selection=dg.AssetSelection.assets(events, downstream) | dg.AssetSelection.checks_for_assets(events),
        partition_key=day, instance=instance, resources=resources, raise_on_error=False)


def _materialized(result) -> set[str]:
    return {e.event_specific_data.materialization.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()}


def test_every_expectation_is_a_partitioned_check_with_metadata(env):
    instance, resources, _ = env
    suite = load_suite(SUITES / "clean.events.json")
    result = _run(instance, resources, GOOD)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    names = [e.check_name for e in evaluations]
    assert sorted(names) == sorted([e.check_name for e in suite.expectations] + list(ANOMALY_CHECKS))
    assert {e.partition for e in evaluations} == {GOOD}
    for e in evaluations:
        md = {k: v.value for k, v in e.metadata.items()}
        assert md["severity"] in ("error", "warn")
        if e.check_name in ANOMALY_CHECKS:
            assert e.severity == dg.AssetCheckSeverity.WARN and md["explanation"]
        else:
            assert md["expectation_type"] and md["notes"] and md["expectation"]
    unique = next(e for e in evaluations if e.check_name == "event_id_unique")
    md = {k: v.value for k, v in unique.metadata.items()}
    assert unique.passed and md["unexpected_count"] == 0 and md["element_count"] == 2000
    mean = next(e for e in evaluations if e.check_name == "price_mean")
    assert isinstance(mean.metadata["observed_value"].value, float)
    assert "labelled/events" in _materialized(result)
    # the profile of the partition was recorded, with the check results
    store = resources["quality_store"].store
    assert store.latest_profile("clean.events", GOOD).row_count == 2000
    assert len(store.check_results(table="clean.events", partition=GOOD)) == len(names)


def test_error_failure_blocks_downstream_and_shows_examples(env):
    instance, resources, _ = env
    result = _run(instance, resources, BAD)
    assert not result.success
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    bad = failed["event_type_in_set"]
    assert bad.severity == dg.AssetCheckSeverity.ERROR and bad.partition == BAD
    md = {k: v.value for k, v in bad.metadata.items()}
    assert md["unexpected_count"] == 3 and md["unexpected_percent"] == pytest.approx(0.15)
    assert "| bogus |" in md["examples"] and "event_id" in md["examples"]
    assert "3 of 2,000 rows unexpected" in bad.description
    assert failed["event_types_all_present"].severity == dg.AssetCheckSeverity.WARN
    assert "clean/events" in _materialized(result)
    assert "labelled/events" not in _materialized(result)  # blocked


def test_checks_run_per_partition_and_subset(env):
    instance, resources, _ = env
    assert _run(instance, resources, GOOD).success
    sel = dg.AssetSelection.checks(dg.AssetCheckKey(events.key, "event_id_unique"),
                                   dg.AssetCheckKey(events.key, "volume_anomaly"))
    # with the asset re-materialized (Dagster needs an asset in a partitioned selection), only two checks
    result = dg.materialize(ALL, selection=dg.AssetSelection.assets(events).without_checks() | sel,
                            partition_key=GOOD, instance=instance, resources=resources)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert sorted(e.check_name for e in evaluations) == ["event_id_unique", "volume_anomaly"]
    assert {e.partition for e in evaluations} == {GOOD}


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture()
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/quality", _Hook.received
    server.shutdown()


def _sensor_context(instance, run_id, resources):
    failure = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    return dg.build_run_status_sensor_context(
        sensor_name="quality_incident_sensor", dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance, dagster_run=instance.get_run_by_id(run_id), resources=resources)


def test_sensor_records_incident_and_posts_webhook(env, webhook):
    instance, resources, tmp = env
    url, received = webhook
    resources = governance_resources(data_root=str(tmp), webhook_url=url)
    result = _run(instance, resources, BAD)
    assert not result.success
    with _sensor_context(instance, result.run_id, resources) as context:
        quality_incident_sensor(context)
    store = resources["quality_store"].store
    [incident] = store.incidents(status="open")
    assert incident["table"] == "clean.events" and incident["partition"] == BAD
    assert incident["first_run_id"] == result.run_id and incident["first_seen"] is not None
    assert [f["check_name"] for f in incident["failing"]] == ["event_type_in_set"]
    assert incident["notify_result"].startswith("200")
    [(path, ctype, payload)] = received
    assert path == "/hooks/quality" and ctype == "application/json"
    assert payload["table"] == "clean.events" and payload["partition"] == BAD
    assert payload["failing"][0]["check_name"] == "event_type_in_set" and "incident" in payload["text"]
    # the same partition failing again updates the incident instead of opening a second one
    again = _run(instance, resources, BAD)
    with _sensor_context(instance, again.run_id, resources) as context:
        quality_incident_sensor(context)
    [incident] = store.incidents(status="open")
    assert incident["occurrences"] == 2 and incident["last_run_id"] == again.run_id and len(received) == 2


def test_sensor_without_webhook_only_records(env):
    instance, resources, _ = env
    result = _run(instance, resources, BAD)
    with _sensor_context(instance, result.run_id, resources) as context:
        quality_incident_sensor(context)
    [incident] = resources["quality_store"].store.incidents()
    assert incident["notify_result"] is None


def test_report_asset_and_summary(env, capsys):
    instance, resources, tmp = env
    _run(instance, resources, GOOD)
    _run(instance, resources, BAD)
    result = dg.materialize([quality_report], instance=instance, resources=resources)
    assert result.success
    md = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    path = md["path"].value
    assert path.endswith("reports/quality_report.html") and md["overall_status"].value == "failed"
    html = open(path).read()
    assert "clean.events" in html and "event_type_in_set" in html
    text = summary_text(resources["quality_store"].store)
    assert text.startswith("Quality: FAILED") and "event_type_in_set [error]" in text


def test_definitions_load_with_the_real_stages(tmp_path):
    from assets.definitions import build_definitions

    defs = build_definitions(data_root=str(tmp_path), partition_start="2026-10-01")
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    checks = graph.asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey(["clean", "events"]), "event_id_unique") in checks
    assert dg.AssetCheckKey(dg.AssetKey(["clean", "events"]), "rows_conserved") in checks
    assert graph.get(dg.AssetKey(["quality", "report"])).group_name == "quality"
