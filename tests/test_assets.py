"""The Dagster layer in process: collection and cleaning materialize on a small generated shop,
checks pass, metadata is there, and re-materializing a partition replaces it."""

from datetime import date

import dagster as dg
import polars as pl
import pytest

from assets.definitions import defs
from assets.quality import QualityStoreResource
from assets.resources import WarehouseResource
from governance.shop import ShopConfig, generate_shop, land_shop

DAY_COUNT = 3


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    land_shop(generate_shop(ShopConfig(n_events=20_000, days=DAY_COUNT, seed=5, end_date=date(2026, 11, 20))),
              root / "landing", root / "truth")
    return root


def resources(root) -> dict:
    return {"warehouse": WarehouseResource(data_root=str(root)), "quality_store": QualityStoreResource(data_root=str(root))}


def run(root, keys: list[list[str]], partition: str | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets=[*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(*keys),
        partition_key=partition,
        resources=resources(root),
        instance=dg.DagsterInstance.ephemeral(),
    )


def metadata(result: dg.ExecuteInProcessResult, key: list[str]) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_collection_and_cleaning_materialize_with_passing_conservation_checks(shop_dir):
    snapshots = run(shop_dir, [["raw", "products"], ["raw", "users"], ["clean", "products"], ["clean", "users"]])
    assert snapshots.success
    day = "2026-11-19"
    daily = [[layer, s] for layer in ("raw", "clean") for s in ("events", "reviews", "queries")]
    result = run(shop_dir, daily, day)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.asset_key.path[1] for c in checks if c.check_name == "rows_conserved"} == {"events", "reviews", "queries"}
    assert all(c.passed for c in checks)
    raw = metadata(result, ["raw", "events"])
    assert raw["rows_read"] == raw["rows_landed"] + raw["rows_quarantined"] and raw["rows_read"] > 0
    assert "preview" in raw and "quarantined_by_rule" in raw and raw["files_read"] >= 1
    clean = metadata(result, ["clean", "events"])
    assert clean["rows_in"] == clean["rows_clean"] + clean["rows_quarantined"] == raw["rows_landed"]
    assert "rules_applied" in clean and "top_quarantine_reasons" in clean

    catalog = WarehouseResource(data_root=str(shop_dir)).catalog
    first = catalog.query("select count(*) as n from clean.events")["n"][0]
    assert first == clean["rows_clean"]
    assert run(shop_dir, daily, day).success  # re-materializing replaces, never appends
    assert catalog.query("select count(*) as n from clean.events")["n"][0] == first
    assert catalog.query("select count(*) as n from raw.events")["n"][0] == raw["rows_landed"]
    reasons = catalog.query("select rule, count(*) as n from quarantine.events group by 1")
    assert {"exact_duplicate", "unparsable_value"} <= set(reasons["rule"])


def test_a_broken_conservation_blocks_downstream(shop_dir, monkeypatch):
    """A cleaning step that silently loses rows fails the blocking check."""
    import governance.cleaning as cleaning

    real = cleaning.clean_frame

    def lossy(source, raw, ctx):
        result = real(source, raw, ctx)
        result.clean = result.clean.head(result.clean.height - 1)
        return result

    assert run(shop_dir, [["raw", "products"], ["raw", "users"], ["clean", "products"], ["clean", "users"]]).success
    assert run(shop_dir, [["raw", "queries"]], "2026-11-18").success
    monkeypatch.setattr(cleaning, "clean_frame", lossy)
    result = dg.materialize(
        assets=[*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(["clean", "queries"]),
        partition_key="2026-11-18",
        resources=resources(shop_dir),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "rows_conserved"]
    assert not check.passed and check.metadata["difference"].value == 1


def test_asset_graph_snapshot():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    sources = ("events", "products", "users", "reviews", "queries")
    assert {f"{layer}/{s}" for layer in ("raw", "clean") for s in sources} <= keys
    for s in sources:
        node = graph.get(dg.AssetKey(["clean", s]))
        assert dg.AssetKey(["raw", s]) in node.parent_keys
        assert node.group_name == "cleaning" and node.owners and node.kinds and node.description
        assert (node.partitions_def is not None) == (s in ("events", "reviews", "queries"))
    assert dg.AssetKey(["clean", "products"]) in graph.get(dg.AssetKey(["clean", "events"])).parent_keys
    check_keys = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {(f"clean/{s}", "rows_conserved") for s in sources} <= check_keys
