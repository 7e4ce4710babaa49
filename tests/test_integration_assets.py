"""The Dagster layer of the integration stage: definitions load, partitions and checks run, metadata shows."""

from __future__ import annotations

import warnings

import dagster as dg
import pytest

from assets import integration
from assets.partitions import daily_partitions
from assets.resources import governance_resources
from synthetic_data.integration_lake import write_synthetic_clean
from governance.settings import Settings

warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def _keys(assets_def) -> set[str]:
    return {k.path[1] for k in assets_def.keys}


def _partitioned(check) -> bool:
    return any(spec.partitions_def is not None for spec in check.check_specs)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_synthetic_clean(Settings.load(data_root=str(root)).lake(), 20_000, days=3, seed=5, with_reviews=True)
    return root


@pytest.fixture(scope="module")
def stage(root) -> dg.Definitions:
    """The integration stage over partitions that follow the days in the lake, with every resource."""
    settings = Settings.load(data_root=str(root), demo="1")
    return dg.Definitions.merge(integration.stage_definitions(daily_partitions(settings), settings),
                                dg.Definitions(resources=governance_resources(data_root=str(root), demo="1")))


@pytest.fixture(scope="module")
def warehouse(stage):
    return stage.resources["warehouse"]


def test_definitions_resolve_with_keys_groups_and_checks(stage):
    defs = stage
    integration_assets, integration_checks = list(defs.assets), list(defs.asset_checks)
    graph = defs.resolve_asset_graph()
    ours = {k for a in integration_assets for k in a.keys}
    assert {k.path[1] for k in ours} == {"user_keys", "product_history", "product_keys", "interactions", "anonymous_events",
                                         "product_activity", "sessions", "query_clicks", "products", "users",
                                         "catalog_findings", "embedding_cache"}
    for k in ours:
        node = graph.get(k)
        assert k.path[0] == "integrated" and node.group_name == "integration"
        assert node.owners and node.description
    assert graph.get(dg.AssetKey(["integrated", "interactions"])).partitions_def is not None
    assert graph.get(dg.AssetKey(["integrated", "users"])).partitions_def is None
    parents = graph.get(dg.AssetKey(["integrated", "users"])).parent_keys
    assert dg.AssetKey(["labelled", "reviews"]) in parents and dg.AssetKey(["integrated", "interactions"]) in parents
    blocking = [s for c in integration_checks for s in c.check_specs if s.blocking]
    assert {s.name for s in blocking} >= {"references_exist", "reconciles_with_clean",
                                          "aggregates_possible", "every_reference_resolves"}
    warn_only = [s for c in integration_checks for s in c.check_specs if not s.blocking]
    assert len(warn_only) >= 6


def test_materialize_partitions_and_snapshots_with_checks(stage, warehouse):
    instance = dg.DagsterInstance.ephemeral()
    resources = stage.resources
    integration_assets, integration_checks = list(stage.assets), list(stage.asset_checks)
    dims = [a for a in integration_assets if _keys(a) & {"user_keys", "product_history"}]
    dim_checks = [c for c in integration_checks if not _partitioned(c)
                  and {s.asset_key.path[1] for s in c.check_specs} & {"user_keys", "product_history", "product_keys"}]
    result = dg.materialize([*dims, *dim_checks], resources=resources, instance=instance)
    assert result.success
    daily = [a for a in integration_assets if a.partitions_def is not None]
    daily_checks = [c for c in integration_checks if _partitioned(c)]
    days = warehouse.lake.partitions("clean", "events")
    for day in days:
        result = dg.materialize([*daily, *daily_checks], partition_key=day, resources=resources, instance=instance)
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        failed_blocking = [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
        assert not failed_blocking, [(e.asset_key, e.check_name, e.metadata) for e in failed_blocking]
        assert {e.check_name for e in evaluations} >= {"reconciles_with_clean", "references_exist",
                                                       "purchase_price_matches_catalog"}
        # one primary-key check per table: the suite's, named by its columns
        assert "primary_key_unique" not in {e.check_name for e in evaluations}
    inter = next(m for m in result.get_asset_materialization_events()
                 if m.asset_key.path[1] == "interactions").step_materialization_data.materialization.metadata
    for key in ("dagster/row_count", "reconciliation", "quarantined_by_rule", "distinct_users", "preview",
                "primary_key", "duplicate_keys"):
        assert key in inter
    assert inter["duplicate_keys"].value == 0

    snapshots = [a for a in integration_assets if a.partitions_def is None and a not in dims
                 and "catalog_findings" not in _keys(a)]
    snap_checks = [c for c in integration_checks if not _partitioned(c)
                   and {s.asset_key.path[1] for s in c.check_specs} & {"users", "products"}]
    result = dg.materialize([*snapshots, *snap_checks], resources=resources, instance=instance)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert all(e.passed for e in evaluations if e.severity == dg.AssetCheckSeverity.ERROR)
    names = {e.check_name for e in evaluations}
    assert {"every_reference_resolves", "no_activity_before_signup", "every_product_seen",
            "reviews_are_verified"} <= names
    meta = {m.asset_key.path[1]: m.step_materialization_data.materialization.metadata
            for m in result.get_asset_materialization_events()}
    assert meta["users"]["build_mode"].value == "full" and "incremental" in meta["users"]
    assert "sentiment_notes" in meta["products"]
    # the DuckDB catalog has the views
    n = warehouse.catalog.query("SELECT count(*) AS n FROM integrated.users")["n"].item()
    assert n == warehouse.lake.read("integrated", "users").height
    q = warehouse.catalog.query("SELECT rule, count(*) AS n FROM quarantine.events GROUP BY rule")
    assert "anonymous_event" not in q["rule"].to_list()  # rejections only; anonymous events are routed aside

    # a second run with nothing changed reuses the snapshots
    result = dg.materialize(snapshots, resources=resources, instance=instance)
    meta = {m.asset_key.path[1]: m.step_materialization_data.materialization.metadata
            for m in result.get_asset_materialization_events()}
    assert meta["users"]["build_mode"].value == "unchanged"


def test_blocking_check_fails_when_rows_vanish(stage, warehouse, monkeypatch):
    integration_assets, integration_checks = list(stage.assets), list(stage.asset_checks)
    import assets.integration as module

    real = module.integrate_events_day

    def lossy(lake, day, source, config, **kw):  # a bug that drops ten rows after counting them
        result = real(lake, day, source, config, **kw)
        lake.write("integrated", "interactions", result.interactions.head(result.interactions.height - 10), day)
        return result

    monkeypatch.setattr(module, "integrate_events_day", lossy)
    day = warehouse.lake.partitions("clean", "events")[0]
    owner = next(a for a in integration_assets if "interactions" in _keys(a))
    check = next(c for c in integration_checks if any(s.name == "reconciles_with_clean" for s in c.check_specs))
    result = dg.materialize([owner, check], partition_key=day, resources=stage.resources,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success  # blocking: the run fails, nothing downstream would start
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["difference"].value > 0
    monkeypatch.undo()
    assert dg.materialize([owner, check], partition_key=day, resources=stage.resources,
                          instance=dg.DagsterInstance.ephemeral()).success


def test_sessions_partition_reads_neighbouring_days(stage):
    graph = stage.resolve_asset_graph()
    sessions = dg.AssetKey(["integrated", "sessions"])
    events = dg.AssetKey(["clean", "events"])
    node = graph.get(sessions)
    mapping = graph.get_partition_mapping(sessions, events)
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert (mapping.start_offset, mapping.end_offset) == (-1, 1)
    assert node.partitions_def is not None
