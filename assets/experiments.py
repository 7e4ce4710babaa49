"""Experiments stage: off-policy estimates and a simulated online A/B test (schema ``experiments``).

Assets (group ``experiments``, snapshots):

* ``experiments/off_policy``     — IPS / SNIPS / DM / DR validated on the Open Bandit sample (real logs)
* ``experiments/search_ab_test`` — exploration log → offline estimate of each arm → online test of BM25 against
                                   the hybrid on the shop's users (stable-hash assignment), analysed with
                                   intervals, p-values, SRM, CUPED and a revenue guardrail
* ``experiments/report``         — the "experiments and search" page beside the quality report
"""

import dagster as dg
import polars as pl

from assets.metadata import markdown_table
from assets.resources import WarehouseResource
from governance.settings import Settings
from governance.experiments.report import build_report
from governance.experiments.stage import open_bandit_stage, search_experiment_stage

GROUP = "experiments"
OWNERS = ["team:experimentation"]
TAGS = {"layer": "experiments", "stage": "experiments"}


@dg.asset(
    key=["experiments", "off_policy"], group_name=GROUP, owners=OWNERS, tags=TAGS, kinds={"numpy", "scikit-learn"},
    description=(
        "Validation of the off-policy estimators on real logged bandit feedback (Open Bandit, ZOZOTOWN sample): "
        "Bernoulli TS's click rate estimated from the uniform-random policy's log by IPS, SNIPS, DM (logistic "
        "reward model) and DR with bootstrap intervals, against BTS's own on-policy CTR and the Open Bandit "
        "Pipeline's published relative errors. Writes experiments.open_bandit; skipped where the sample is absent."),
)
def off_policy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    result = open_bandit_stage(warehouse.config, log=context.log.info)
    if result is None:
        context.log.warning("Open Bandit sample not found under shared_data: validation skipped")
        return dg.MaterializeResult(metadata={"skipped": "Open Bandit sample not found under shared_data"})
    return dg.MaterializeResult(metadata={
        "on_policy_ctr_bts": result["on_policy_ctr_bts"],
        "logging_policy_ctr_random": result["logged_ctr_random"],
        "estimates": markdown_table(result["estimates"].with_columns(pl.col(pl.Float64).round(5))),
        "max_importance_weight": round(result["max_weight"], 2),
    })


@dg.asset(
    key=["experiments", "search_ab_test"], group_name=GROUP, owners=OWNERS, tags=TAGS, kinds={"polars", "duckdb"},
    deps=[dg.AssetKey(["search", "index"]), dg.AssetKey(["integrated", "sessions"]),
          dg.AssetKey(["integrated", "users"]), dg.AssetKey(["clean", "queries"])],
    description=(
        "A search-ranker experiment on the generated shop: a week of exploration logs (BM25 with 20% per-slot "
        "exploration, propensities logged) → IPS/SNIPS/DM/DR estimates of each arm's clicks per search → users "
        "assigned by md5(experiment:user_key) to BM25 (control) or the hybrid (treatment) and served for the next "
        "7 simulated days (position-biased clicks and purchases). Read-out: click-through, clicks per search and "
        "conversion with 95% intervals, differences and p-values, SRM check, CUPED on pre-period clicks and "
        "purchases, revenue-per-user guardrail, and whether the offline estimate predicted the winner."),
)
def search_ab_test(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    run = search_experiment_stage(warehouse.config, log=context.log.info)
    exp = run.experiment
    srm = exp.analysis["srm"]
    if srm["mismatch"]:
        context.log.warning(f"sample-ratio mismatch (p = {srm['p_value']:.2g}): the split is broken")
    verdict = exp.verdict
    shown = ["metric", "kind", "control", "treatment", "diff", "diff_low", "diff_high", "relative", "p_value"]
    return dg.MaterializeResult(metadata={
        "users": dg.MetadataValue.json(exp.analysis["users"]),
        "srm": dg.MetadataValue.json(srm),
        "results": markdown_table(run.results.select(shown).with_columns(pl.col(pl.Float64).round(4)), rows=20),
        "guardrail_violated": bool(exp.analysis["guardrail"]["violated"]),
        "offline_estimates": markdown_table(exp.offline.with_columns(pl.col(pl.Float64).round(4))),
        "offline_predicts_winner": dg.MetadataValue.json({k: v["agrees"] for k, v in verdict["by_estimator"].items()}),
        "online_winner": verdict["online_winner"],
        "online_lift": round(verdict["online_lift"], 4),
        "online_p_value": round(verdict["online_p_value"], 4),
        "exploration_searches": exp.log["search"].n_unique(),
        "seconds": round(run.seconds, 1),
    })


@dg.asset(
    key=["experiments", "report"], group_name=GROUP, owners=OWNERS, tags=TAGS, kinds={"html"},
    deps=[dg.AssetKey(["search", "evaluation"]), dg.AssetKey(["experiments", "off_policy"]),
          dg.AssetKey(["experiments", "search_ab_test"])],
    description=(
        "The analysts' \"experiments and search\" page (`<data_root>/reports/experiments.html`, beside the quality "
        "report): search NDCG per component with the anchors, queries with zero or poor results, the Open Bandit "
        "validation, and each experiment's table with a plot of every metric and its interval."),
)
def experiments_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    path = build_report(warehouse.config)
    context.log.info(f"experiments and search page: {path}")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path))})


def stage_definitions(daily: dg.PartitionsDefinition, settings: Settings) -> dg.Definitions:  # noqa: ARG001
    """The off-policy validation, the search experiment and the page."""
    return dg.Definitions(assets=[off_policy, search_ab_test, experiments_report])
