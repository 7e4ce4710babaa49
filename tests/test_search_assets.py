"""The search and experiments stages through Dagster on a small integrated lake (MiniLM on the CPU)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import dagster as dg
import polars as pl
import pytest

from assets import experiments as experiments_stage
from assets import search as search_stage
from assets.resources import governance_resources
from governance.integration.config import IntegrationConfig
from governance.integration.pipeline import integrate
from governance.search.cli import main as search_cli
from governance.settings import DEMO_PSEUDONYM_SECRET, Settings
from synthetic_data.integration_lake import write_synthetic_clean

warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    settings = Settings.load(data_root=str(root), demo="1")
    write_synthetic_clean(settings.lake(), 5_000, days=2, seed=5)
    integrate(settings.lake(), IntegrationConfig().with_(pseudonym_secret=DEMO_PSEUDONYM_SECRET),
              now=datetime(2026, 10, 20, tzinfo=UTC))
    return root


def _metadata(result, key: list[str]) -> dict:
    event = next(m for m in result.get_asset_materialization_events() if m.asset_key.path == key)
    return {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}


@pytest.mark.slow
def test_stages_materialize_tables_page_and_command(root, capsys):
    daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")
    settings = Settings.load(data_root=str(root), demo="1")
    defs = [search_stage.stage_definitions(daily, settings), experiments_stage.stage_definitions(daily, settings)]
    assets = [a for d in defs for a in d.assets]
    assert {k.to_user_string() for a in assets for k in a.keys} == {
        "search/index", "search/evaluation", "experiments/off_policy", "experiments/search_ab_test",
        "experiments/report"}
    result = dg.materialize(assets, resources=governance_resources(data_root=str(root), demo="1"),
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    settings = Settings.load(data_root=str(root), demo="1")
    lake = settings.lake()

    index_md = _metadata(result, ["search", "index"])
    products = lake.read("integrated", "products").height
    assert index_md["products"] == products == lake.read("search", "index").height
    assert index_md["dense_method"] == "exact"

    evaluation = lake.read("search", "evaluation")
    shop = evaluation.filter(pl.col("dataset") == "shop")
    assert set(shop["method"]) == {"bm25", "dense", "hybrid", "rrf"}  # rrf: the previous hybrid, for reference
    assert shop["ndcg@10"].is_between(0, 1).all() and shop["recall@100"].is_between(0, 1).all()
    assert (shop["p95_ms"] >= shop["p50_ms"]).all()

    results = lake.read("experiments", "ab_results")
    assert {"metric", "cuped", "guardrail"} == set(results["kind"])
    assert results.filter(pl.col("kind") == "metric")["p_value"].is_between(0, 1).all()
    assignments = lake.read("experiments", "assignments")
    assert assignments["user_key"].n_unique() == assignments.height == lake.read("integrated", "users").height
    log = lake.read("experiments", "exploration_log")
    assert log["propensity"].is_between(0, 1, closed="right").all()
    ab_md = _metadata(result, ["experiments", "search_ab_test"])
    assert ab_md["online_winner"] in ("control", "treatment")
    offline = lake.read("experiments", "offline_estimates")
    assert set(offline["estimator"]) == {"IPS", "SNIPS", "DM", "DR"}

    page = (settings.reports_dir / "experiments.html").read_text()
    assert "Experiments and search" in page and "<svg" in page and "sample-ratio" in page.lower()
    assert not any(key in page for key in assignments["user_key"].head(50).to_list())  # no user keys on the page

    assert search_cli(["--data", str(root), "search", "shoes", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "bm25_rank" in out and "dense_rank" in out
