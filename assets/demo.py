"""`make demo`: generate a shop into the landing zone and run the whole lifecycle through Dagster.

Every run goes through the project's Dagster instance (DAGSTER_HOME), so the runs, materializations,
metadata and check results printed here are what `make dev` shows in the UI afterwards.
"""

import argparse
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets.definitions import defs
from assets.resources import WarehouseResource

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _say(message: str) -> None:
    print(message, flush=True)


def _stage(title: str) -> float:
    _say(f"\n== {title}")
    return time.perf_counter()


def _done(started: float, detail: str = "") -> None:
    _say(f"   done in {time.perf_counter() - started:.1f}s{(' — ' + detail) if detail else ''}")


def _assets_in(groups: set[str], partitioned: bool) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    keys = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.group_name in groups and node.is_materializable and (node.partitions_def is not None) == partitioned:
            keys.append(key)
    return sorted(keys, key=lambda k: k.to_user_string())


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
        if (previous.get("n_events"), previous.get("seed"), str(previous.get("end_date"))) == (n_events, seed, str(end)):
            _say(f"   the landing zone already holds this shop (seed {seed}, {n_events:,} events): kept")
            return
    shop = generate_shop(config)
    summary = land_shop(shop, landing, truth)
    _say(f"   landed {summary}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=int(os.environ.get("DEMO_EVENTS", 300_000)))
    parser.add_argument("--days", type=int, default=14)
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

    t = _stage(f"1/3 generate a shop: {args.events:,} events over {args.days} days ending {end} (seed {args.seed})")
    generate(landing, truth, args.events, args.days, args.seed, end)
    _done(t)
    days = sorted(p.name for p in (landing / "events").iterdir() if p.is_dir())

    for title, groups in (("2/3 collection: landing → raw", {"collection"}), ("3/3 cleaning: raw → clean", {"cleaning"})):
        t = _stage(title)
        snapshot = _assets_in(groups, partitioned=False)
        if snapshot:
            results.append(_materialize(instance, snapshot))
            _say(f"   snapshots: {', '.join(k.to_user_string() for k in snapshot)}")
        daily = _assets_in(groups, partitioned=True)
        for day in days:
            results.append(_materialize(instance, daily, day))
            _say(f"   {day}: {', '.join(k.to_user_string() for k in daily)}")
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
    _say(f"   lake (Parquet, store of record): {warehouse.lake.root}")
    _say(f"   catalog: duckdb {catalog.path} \"select * from clean.events limit 5\"")
    _say(f"   ground truth of injected faults: {truth / 'faults.parquet'}")
    _say("   UI: make dev, then open http://127.0.0.1:3000 (same Dagster instance: .dagster_home)")
    _say(f"   total {time.perf_counter() - started_all:.0f}s")
    return 1 if runs_failed else 0


if __name__ == "__main__":
    sys.exit(main())
