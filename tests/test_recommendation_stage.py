"""The recommendation stage over a lake: train → register → gate (a failed blocking check blocks
promotion) → serve, through the library and through the Dagster assets."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import dagster as dg
import polars as pl
import pytest

from governance.integration.config import IntegrationConfig
from governance.integration.pipeline import integrate
from governance.labelling.registry import ModelRegistry
from governance.quality import record_check_result
from governance.quality.store import QualityStore
from governance.recommendation.pipeline import run_serving, run_training
from governance.settings import DEMO_PSEUDONYM_SECRET, Settings
from governance.storage import Lake
from synthetic_data.integration_lake import write_synthetic_clean

warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)
FAST = {"ranker_rounds": 10}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("reco")
    lake = Lake.at(root / "lake")
    write_synthetic_clean(lake, 12_000, days=4, seed=11)
    integrate(lake, IntegrationConfig().with_(pseudonym_secret=DEMO_PSEUDONYM_SECRET),
              now=datetime(2026, 10, 20, tzinfo=UTC))
    return root


def test_a_model_trained_on_a_partition_with_a_failed_blocking_check_is_not_promoted(root, tmp_path):
    lake = Lake.at(root / "lake")
    registry = ModelRegistry(tmp_path / "models")
    store = QualityStore(f"sqlite:///{tmp_path / 'quality.db'}")
    days = lake.partitions("integrated", "interactions")
    for day in days:
        record_check_result(store, "integrated.interactions", day, "reconciles_with_clean", True)
    first = run_training(lake, registry, store, **FAST)
    assert first.quality.passed and first.hybrid.promoted
    served_version = registry.current("reco_hybrid")
    assert served_version == first.versions["reco_hybrid"]
    # the metrics and the evaluation table hold every single model and the hybrid
    evaluation = lake.read("reco", "evaluation")
    assert {"popularity", "itemknn", "ease", "sknn", "content", "hybrid"} <= set(evaluation["model"].to_list())
    assert evaluation["ndcg@10"].is_between(0, 1).all()

    # the same day now fails a blocking check: the retrained models are registered but not served
    record_check_result(store, "integrated.interactions", days[-1], "reconciles_with_clean", False,
                        description="rows lost between clean and integrated")
    second = run_training(lake, registry, store, **FAST)
    assert not second.quality.passed
    assert not any(d.promoted for d in second.decisions)
    assert f"integrated.interactions[{days[-1]}]:reconciles_with_clean" in second.hybrid.reason
    assert registry.current("reco_hybrid") == served_version != second.versions["reco_hybrid"]
    assert registry.card("reco_hybrid", second.versions["reco_hybrid"]).notes["input_partitions"][
        "integrated.interactions"] == days

    served = run_serving(lake, registry)
    assert served.version == served_version
    recs = lake.read("reco", "recommendations")
    assert recs.height and set(recs["model_version"].unique().to_list()) == {served_version}
    per_user = recs.group_by("user_key").agg(pl.len(), pl.col("rank").min(), pl.col("product_id").n_unique())
    assert (per_user["len"] <= 10).all() and (per_user["rank"] == 1).all()
    assert (per_user["len"] == per_user["product_id"]).all()  # no product twice in a list
    assert recs["sources"].str.len_chars().min() > 0
    purchased = (lake.scan("integrated", "interactions").filter(pl.col("purchases") > 0)
                 .select("user_key", "product_id").unique().collect())
    assert recs.join(purchased, on=["user_key", "product_id"], how="semi").is_empty()


def test_assets_train_gate_and_serve_with_metadata(root, tmp_path):
    import shutil

    from assets.recommendation import stage_definitions
    from assets.resources import governance_resources

    data_root = tmp_path / "data"
    shutil.copytree(root / "lake", data_root / "lake", symlinks=True)  # the lake publishes through links
    resources = governance_resources(data_root=str(data_root), demo="1")
    defs = stage_definitions(None, Settings.load(data_root=str(data_root), demo="1"))
    graph = dg.Definitions(assets=list(defs.assets), resources=resources).resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys() if k.path[0] == "reco"}
    assert keys == {"reco/models", "reco/recommendations", "reco/similar_items", "reco/public_evaluation"}
    assert all(graph.get(dg.AssetKey(k.split("/"))).group_name == "recommendation" for k in keys)
    selection = [a for a in defs.assets if "reco/public_evaluation" not in {k.to_user_string() for k in a.keys}]
    result = dg.materialize(selection, resources=resources, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    md = {m.asset_key.to_user_string(): m.step_materialization_data.materialization.metadata
          for m in result.get_asset_materialization_events()}
    models = md["reco/models"]
    for name in ("metrics (held-out day)", "promotion decisions", "why not promoted", "quality gate",
                 "hybrid_ndcg@10", "best_single"):
        assert name in models
    assert "hybrid" in models["metrics (held-out day)"].value
    recs = md["reco/recommendations"]
    assert recs["dagster/row_count"].value > 0 and "example (one user)" in recs
    assert md["reco/similar_items"]["dagster/row_count"].value > 0
