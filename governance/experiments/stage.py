"""The experiments stage over a deployment: the off-policy validation and the simulated search A/B test.

``experiments.open_bandit``       IPS / SNIPS / DM / DR estimates of Bernoulli TS's CTR from the random log
``experiments.exploration_log``   the pre-test log: search, slot, product, logged propensity, click, purchase
``experiments.offline_estimates`` each arm's clicks per search estimated from that log, with intervals
``experiments.assignments``       user_key → bucket, variant (stable hash), with the experiment's name
``experiments.ab_users``          per assigned user: pre-period and test-period outcomes
``experiments.ab_results``        per metric: each arm with its interval, the difference, p-value (+ CUPED, guardrail)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from governance.experiments.off_policy import open_bandit_validation
from governance.experiments.simulate import EXPERIMENT, SearchExperiment, run_search_experiment

LAYER = "experiments"
OPEN_BANDIT = "open_bandit_zozotown_sample"


def _write(settings, table: str, frame: pl.DataFrame) -> None:
    settings.lake().write(LAYER, table, frame)
    settings.catalog().register(LAYER, table)


def open_bandit_stage(settings, *, log=print) -> dict | None:
    """The Open Bandit validation where ``shared_data`` has the sample, else None."""
    root = Path(settings.shared_data) / OPEN_BANDIT if settings.shared_data else None
    if root is None or not (root / "random" / "all" / "all.csv").exists():
        return None
    result = open_bandit_validation(root)
    table = result["estimates"].with_columns(pl.lit(result["on_policy_ctr_bts"]).alias("on_policy_ctr"),
                                            pl.lit(result["logged_ctr_random"]).alias("logging_policy_ctr"),
                                            pl.lit("all").alias("campaign"))
    _write(settings, "open_bandit", table)
    log(f"open bandit: BTS on-policy CTR {result['on_policy_ctr_bts']:.4f}; " + ", ".join(
        f"{r['estimator']} {r['value']:.4f} (rel. err. {r['relative_error']:.3f})" for r in table.to_dicts()))
    return result


@dataclass
class ExperimentRun:
    experiment: SearchExperiment
    results: pl.DataFrame
    seconds: float


def results_table(analysis: dict) -> pl.DataFrame:
    """One row per metric (plain, CUPED and the guardrail), the same columns throughout."""
    rows = [{**m, "kind": "metric"} for m in analysis["metrics"]]
    rows += [{**m, "kind": "cuped"} for m in analysis["cuped"]]
    g = dict(analysis["guardrail"])
    rows.append({**{k: v for k, v in g.items() if k not in ("violated", "rule")}, "kind": "guardrail",
                 "violated": g["violated"]})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(pl.lit(EXPERIMENT).alias("experiment"))


def search_experiment_stage(settings, *, log=print) -> ExperimentRun:
    from governance.search.index import SearchIndex, index_dir  # noqa: PLC0415
    from governance.search.stage import query_cache  # noqa: PLC0415

    t0 = time.perf_counter()
    lake = settings.lake()
    index = SearchIndex.load(index_dir(settings.data_root))
    exp = run_search_experiment(lake, index, settings.truth_dir, query_cache=query_cache(settings), log=log)
    results = results_table(exp.analysis)
    _write(settings, "exploration_log", exp.log)
    _write(settings, "offline_estimates", exp.offline.with_columns(pl.lit(EXPERIMENT).alias("experiment")))
    _write(settings, "assignments", exp.assignments.rename({"unit": "user_key"}))
    _write(settings, "ab_users", exp.users)
    _write(settings, "ab_results", results)
    summary = {"srm": exp.analysis["srm"], "users": exp.analysis["users"], "verdict": exp.verdict,
               "guardrail_violated": exp.analysis["guardrail"]["violated"], "queries": exp.queries}
    path = Path(settings.data_root) / "search" / "experiment.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=float))
    return ExperimentRun(exp, results, time.perf_counter() - t0)
