"""`make demo`: generate a shop into the landing zone and run the whole lifecycle through Dagster.

Every run goes through the project's Dagster instance (DAGSTER_HOME), so the runs, materializations,
metadata and check results printed here are what `make dev` shows in the UI afterwards.
"""

import argparse
import os
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets.definitions import defs
from assets.resources import WarehouseResource

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
#: the lifecycle stages in the order they run (each an asset group)
STAGES = (
    ("collection", "collection: landing → raw"),
    ("cleaning", "cleaning: raw → clean"),
    ("labelling", "labelling: sentiment and intent models, labelled reviews and queries"),
    ("integration", "integration: users, products, sessions, interactions"),
    ("quality", "quality: the analysts' report"),
    ("recommendation", "recommendation: training, evaluation, batch recommendations"),
)


def _say(message: str) -> None:
    print(message, flush=True)


def _stage(title: str) -> float:
    _say(f"\n== {title}")
    return time.perf_counter()


def _done(started: float, detail: str = "") -> None:
    _say(f"   done in {time.perf_counter() - started:.1f}s{(' — ' + detail) if detail else ''}")


def _stage_plan(group: str) -> tuple[list[dg.AssetKey], list[dg.AssetKey], list[dg.AssetKey]]:
    """A stage's assets in three steps: snapshots needed by its daily assets, the daily assets, and
    snapshots built from daily ones (e.g. profiles aggregated over every day)."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys()
            if graph.get(k).group_name == group and graph.get(k).is_materializable]
    daily = {k for k in keys if graph.get(k).partitions_def is not None}

    snapshots = [k for k in keys if k not in daily]
    post = {k for k in snapshots if daily & set(graph.get_ancestor_asset_keys(k))}
    order = lambda ks: sorted(ks, key=lambda k: k.to_user_string())  # noqa: E731
    return order(k for k in snapshots if k not in post), order(daily), order(post)


def _materialize(instance: dg.DagsterInstance, keys: list[dg.AssetKey], partition: str | None = None,
                 tags: dict | None = None) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        assets=[*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(*keys),
        partition_key=partition,
        instance=instance,
        resources=defs.resources,
        run_config=QUIET,
        tags={"launched_by": "make demo", **(tags or {})},
        raise_on_error=False,
    )
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        _say(f"   !! run {result.run_id} failed: {failures[:3]}")
    return result


def _model_lines(models_root) -> list[str]:
    """The promoted model of each task with its held-out figures, from the registry's cards."""
    from governance.labelling.registry import ModelRegistry

    registry, lines = ModelRegistry(models_root), []
    shown = {"sentiment": ("macro_f1", "balanced_accuracy"), "intent": ("intent_accuracy", "category_accuracy")}
    for task, metrics in shown.items():
        version = registry.current(task)
        if version is None:
            continue
        card = registry.card(task, version)
        figures = ", ".join(f"{m} {card.metrics[m]:.3f}" for m in metrics if isinstance(card.metrics.get(m), float))
        lines.append(f"   model {task}: {version} ({card.hyperparameters.get('setting', card.model_name)}; "
                     f"held out: {figures})")
    return lines


def _check_summary(results: list[dg.ExecuteInProcessResult]) -> tuple[int, int, list[str]]:
    passed = failed = 0
    failures: list[str] = []
    for result in results:
        for event in result.get_asset_check_evaluations():
            if event.passed:
                passed += 1
            else:
                failed += 1
                failures.append(f"{event.asset_key.to_user_string()}:{event.check_name}")
    return passed, failed, failures


def generate(landing: Path, truth: Path, n_events: int, days: int, seed: int, end: date) -> None:
    from governance.shop import ShopConfig, generate_shop, land_shop

    manifest = truth / "manifest.json"
    config = ShopConfig(n_events=n_events, days=days, seed=seed, end_date=end)
    if manifest.exists() and landing.exists():
        import json

        previous = json.loads(manifest.read_text()).get("config", {})
        if (previous.get("n_events"), previous.get("days"), previous.get("seed"), str(previous.get("end_date"))) == (
                n_events, days, seed, str(end)):
            _say(f"   the landing zone already holds this shop (seed {seed}, {n_events:,} events): kept")
            return
    if landing.exists():
        # another shop landed earlier: its files and everything derived from them go, so the lake and
        # the quality history describe this shop only (trained models stay in their registry)
        data = landing.parent
        for stale in (landing, truth, data / "lake", data / "reports"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in (data / "warehouse.duckdb", data / "quality.db"):
            stale.unlink(missing_ok=True)
        _say("   removed the previous shop's landing zone, lake, catalog and quality history")
    shop = generate_shop(config)
    summary = land_shop(shop, landing, truth)
    _say(f"   landed {summary}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    # sized so that the whole lifecycle, installation included, runs in about ten minutes on 2 cores
    parser.add_argument("--events", type=int, default=int(os.environ.get("DEMO_EVENTS", 200_000)))
    parser.add_argument("--days", type=int, default=int(os.environ.get("DEMO_DAYS", 7)))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    if "DAGSTER_HOME" not in os.environ:
        sys.exit("DAGSTER_HOME is not set: run this through `make demo`")
    started_all = time.perf_counter()
    warehouse: WarehouseResource = defs.resources["warehouse"]
    data = warehouse.data_dir
    landing, truth = warehouse.landing, data / "truth"
    end = (datetime.now(UTC) - timedelta(days=1)).date()
    instance = dg.DagsterInstance.get()
    results: list[dg.ExecuteInProcessResult] = []

    t = _stage(f"1 generate a shop: {args.events:,} events over {args.days} days ending {end} (seed {args.seed})")
    generate(landing, truth, args.events, args.days, args.seed, end)
    _done(t)
    days = sorted(p.name for p in (landing / "events").iterdir() if p.is_dir())

    stages = [(group, title) for group, title in STAGES if _stage_plan(group) != ([], [], [])]
    for number, (group, title) in enumerate(stages, 2):
        t = _stage(f"{number}/{len(stages) + 1} {title}")
        before, daily, after = _stage_plan(group)
        if before:
            results.append(_materialize(instance, before))
            _say(f"   {', '.join(k.to_user_string() for k in before)}")
        for day in days if daily else []:
            results.append(_materialize(instance, daily, day))
            _say(f"   {day}: {', '.join(k.to_user_string() for k in daily)}")
        if after:
            results.append(_materialize(instance, after))
            _say(f"   {', '.join(k.to_user_string() for k in after)}")
        _done(t)

    _say("\n== summary")
    catalog = warehouse.catalog
    counts = catalog.query(
        "SELECT 'raw' AS layer, (SELECT count(*) FROM raw.events) AS events, (SELECT count(*) FROM raw.products) AS products, "
        "(SELECT count(*) FROM raw.users) AS users, (SELECT count(*) FROM raw.reviews) AS reviews, "
        "(SELECT count(*) FROM raw.queries) AS queries "
        "UNION ALL SELECT 'clean', (SELECT count(*) FROM clean.events), (SELECT count(*) FROM clean.products), "
        "(SELECT count(*) FROM clean.users), (SELECT count(*) FROM clean.reviews), (SELECT count(*) FROM clean.queries) "
        "UNION ALL SELECT 'quarantine', (SELECT count(*) FROM quarantine.events), (SELECT count(*) FROM quarantine.products), "
        "(SELECT count(*) FROM quarantine.users), (SELECT count(*) FROM quarantine.reviews), "
        "(SELECT count(*) FROM quarantine.queries)"
    )
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        _say(str(counts))
    passed, failed, failures = _check_summary(results)
    runs_failed = sum(not r.success for r in results)
    _say(f"   runs: {len(results)} ({runs_failed} failed); asset checks: {passed} passed, {failed} failed"
         + (f" ({', '.join(sorted(set(failures))[:8])})" if failures else ""))
    for line in _model_lines(data / "models"):
        _say(line)
    _say(f"   lake (Parquet, store of record): {warehouse.lake.root}")
    _say(f"   catalog: duckdb {catalog.path} \"select * from clean.events limit 5\"")
    _say(f"   ground truth of injected faults: {truth / 'faults.parquet'}")
    _say("   UI: make dev, then open http://127.0.0.1:3000 (same Dagster instance: .dagster_home)")
    _say(f"   total {time.perf_counter() - started_all:.0f}s")
    return 1 if runs_failed else 0


if __name__ == "__main__":
    sys.exit(main())
