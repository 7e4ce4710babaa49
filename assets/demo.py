"""`make demo`: generate a shop into the landing zone and run the whole lifecycle through Dagster.

Every run goes through the project's Dagster instance (DAGSTER_HOME), so the runs, materializations,
metadata and check results printed here are what `make dev` shows in the UI afterwards.
"""

import argparse
import logging
import os
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets.automation import stage_steps, step_job_name
from assets.definitions import build_definitions
from governance.settings import Settings

#: the demo shows what each step is doing: the assets' own INFO lines (progress of long steps included)
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
STAGE_TITLES = {
    "collection": "collection: landing → raw",
    "cleaning": "cleaning: raw → clean",
    "labelling": "labelling: sentiment and intent models, labelled reviews and queries",
    "integration": "integration: users, products, sessions, interactions",
    "recommendation": "recommendation: training, evaluation, batch recommendations",
    "search": "search: index and evaluation",
    "experiments": "experiments: offline estimate and online A/B test",
    "quality": "quality: the analysts' report over every check of every stage",
}


def _say(message: str) -> None:
    print(message, flush=True)


def _stage(title: str) -> float:
    _say(f"\n== {title}")
    return time.perf_counter()


def _done(started: float, detail: str = "") -> None:
    _say(f"   done in {time.perf_counter() - started:.1f}s{(' — ' + detail) if detail else ''}")


class _ProgressFilter(logging.Filter):
    """Only the assets' own messages (what they did, how far they are), not Dagster's step events."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        return record.levelno >= logging.WARNING or (meta.get("dagster_event") is None and record.levelno >= logging.INFO)


def _install_progress_filter() -> None:
    for handler in logging.getLogger("dagster").handlers:
        handler.addFilter(_ProgressFilter())


def _run_job(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, partition: str | None = None
             ) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(name)
    result = job.execute_in_process(instance=instance, partition_key=partition, run_config=RUN_CONFIG,
                                    tags={"launched_by": "make demo"}, raise_on_error=False)
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        _say(f"   !! run {result.run_id} ({name}{' ' + partition if partition else ''}) failed: {failures[:3]}")
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
    from governance.recommendation.pipeline import summary_lines

    return lines + summary_lines(registry)


def _check_summary(results: list[dg.ExecuteInProcessResult]) -> tuple[int, list[str], list[str]]:
    """Passed count, failed blocking checks and failed warning checks (asset:check [partition]).

    Counted as the report counts (governance.quality.results): the latest evaluation of each
    (asset, partition, check) once, so a check re-run on a partition is not counted twice."""
    latest = {}
    for result in results:
        partition = result.dagster_run.tags.get("dagster/partition")
        for event in result.get_asset_check_evaluations():
            latest[(event.asset_key.to_user_string(), partition, event.check_name)] = event
    passed, errors, warns = 0, [], []
    for (asset, partition, check), event in sorted(latest.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        if event.passed:
            passed += 1
            continue
        label = f"{asset}:{check}" + (f" [{partition}]" if partition else "")
        (errors if event.severity == dg.AssetCheckSeverity.ERROR else warns).append(label)
    return passed, errors, warns


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
    parser.add_argument("--events", type=int, default=200_000, help="events in the generated shop (default %(default)s)")
    parser.add_argument("--days", type=int, default=7, help="days of behaviour (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    if "DAGSTER_HOME" not in os.environ:
        sys.exit("DAGSTER_HOME is not set: run this through `make demo`")
    instance = dg.DagsterInstance.get()  # DAGSTER_HOME: the instance `make dev` shows
    started_all = time.perf_counter()
    settings = Settings.load(demo=True)
    landing, truth = settings.landing_root, settings.truth_dir
    end = (datetime.now(UTC) - timedelta(days=1)).date()
    results: list[dg.ExecuteInProcessResult] = []
    _install_progress_filter()

    t = _stage(f"1 generate a shop: {args.events:,} events over {args.days} days ending {end} (seed {args.seed})")
    generate(landing, truth, args.events, args.days, args.seed, end)
    _done(t)
    defs = build_definitions(demo=True)  # after landing: the daily partitions are the landed days
    days = defs.resolve_job_def("collection_daily").partitions_def.get_partition_keys()
    graph = defs.resolve_asset_graph()
    groups = [g for g in STAGE_TITLES if stage_steps(graph, g)]
    for number, group in enumerate(groups, 2):
        t = _stage(f"{number}/{len(groups) + 1} {STAGE_TITLES[group]}")
        for step, keys in stage_steps(graph, group).items():
            name = step_job_name(group, step)
            for day in days if step == "daily" else [None]:
                _say(f"   {name}{' ' + day if day else ''}: {', '.join(k.to_user_string() for k in keys)}")
                results.append(_run_job(defs, instance, name, day))
        _done(t)

    _say("\n== summary")
    catalog = settings.catalog()
    sources = ("events", "products", "users", "reviews", "queries")
    counts = pl.DataFrame([
        {"layer": layer, **{s: catalog.query(f"SELECT count(*) AS n FROM {layer}.{s}")["n"][0] for s in sources}}
        for layer in ("raw", "clean", "quarantine")])
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        _say(str(counts))
    passed, errors, warns = _check_summary(results)
    runs_failed = sum(not r.success for r in results)
    _say(f"   runs: {len(results)} ({runs_failed} failed); asset checks: {len(errors) + len(warns)} failed "
         f"({len(errors)} blocking, {len(warns)} warnings) of {passed + len(errors) + len(warns)} evaluated")
    for label in errors[:10]:
        _say(f"      ✗ {label}")
    for label in warns[:10]:
        _say(f"      ! {label}")
    if len(warns) > 10:
        _say(f"      … and {len(warns) - 10} more warnings (all of them in the report)")
    for line in _model_lines(settings.models_root):
        _say(line)
    from governance.quality.results import failure_counts
    from governance.quality.store import QualityStore

    _say(f"   quality store (what the report shows): {failure_counts(QualityStore.shared(settings.quality_url)).line()}")
    report = settings.reports_dir / "quality_report.html"
    _say(f"   report: {report if report.exists() else '(not built)'}  (open it in a browser: {report.as_uri()})")
    _say(f"   lake (Parquet, store of record): {settings.lake_root}")
    _say(f"   catalog: governance sql \"select * from clean.events limit 5\"  ({catalog.path})")
    _say(f"   ground truth of injected faults: {truth / 'faults.parquet'}")
    _say("   UI: make dev, then open http://127.0.0.1:3000 (same Dagster instance: .dagster_home; runs by job = stage)")
    _say(f"   total {time.perf_counter() - started_all:.0f}s")
    return 1 if runs_failed else 0


if __name__ == "__main__":
    sys.exit(main())
