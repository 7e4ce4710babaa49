"""A table's GX suite (``expectations/<layer>.<table>.json``) as Dagster asset checks beside its asset.

Every expectation is its **own asset check** (named by its stable ``check_name``), so the UI shows each
one's status and history per partition and blocking is per expectation (``error`` → ``blocking=True``;
``warn`` → not). All checks of a table run in **one op** (``multi_asset_check``): the partition is read
once, GX validates the whole suite in one pass, the partition is profiled and the profile stored, and
the anomaly checks (``warn``) are computed from the stored history — right after the materialization,
in the same run.
"""

import warnings
from pathlib import Path

import dagster as dg

from assets.metadata import records_table
from assets.resources import QualityStoreResource, WarehouseResource
from governance.quality.anomalies import ANOMALY_CHECKS, ANOMALY_DESCRIPTIONS, Finding
from governance.quality.runner import run_quality, suites_dir
from governance.quality.suggest import suites_for_shop
from governance.quality.suites import Suite, load_suite
from governance.settings import Settings
from governance.quality.validation import ExpectationResult, result_summary

def _observed(value) -> dg.MetadataValue:
    if isinstance(value, dict | list):
        return dg.MetadataValue.json(value if isinstance(value, dict) else {"values": value})
    if isinstance(value, bool) or value is None:
        return dg.MetadataValue.text(str(value))
    if isinstance(value, int | float):
        return dg.MetadataValue.float(float(value)) if isinstance(value, float) else dg.MetadataValue.int(value)
    return dg.MetadataValue.text(str(value))


def _severity(severity: str) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if severity == "error" else dg.AssetCheckSeverity.WARN


def expectation_check_result(asset_key: dg.AssetKey, suite: Suite, r: ExpectationResult) -> dg.AssetCheckResult:
    """GX result → Dagster check result with everything an analyst needs in the UI."""
    metadata = {
        "severity": r.severity,
        "expectation": r.description,
        "expectation_type": r.expectation_type,
        "notes": r.notes,
        "suite": suite.path.name,
    }
    if r.observed_value is not None:
        metadata["observed_value"] = _observed(r.observed_value)
    if r.unexpected_count is not None and r.element_count is not None:
        metadata["unexpected_count"] = dg.MetadataValue.int(int(r.unexpected_count))
        metadata["unexpected_percent"] = dg.MetadataValue.float(float(r.unexpected_percent or 0.0))
        metadata["element_count"] = dg.MetadataValue.int(int(r.element_count or 0))
    if not r.success:
        metadata["examples"] = records_table(r.examples, empty="_no failing rows_")
    if r.details:
        metadata["details"] = dg.MetadataValue.json(r.details)
    if r.exception:
        metadata["exception"] = r.exception
    return dg.AssetCheckResult(asset_key=asset_key, check_name=r.check_name, passed=r.success,
                               severity=_severity(r.severity), description=f"{r.notes} {result_summary(r)}",
                               metadata=metadata)


def finding_check_result(asset_key: dg.AssetKey, f: Finding) -> dg.AssetCheckResult:
    metadata = {"explanation": f.explanation, "severity": f.severity}
    if f.statistic is not None:
        metadata["statistic"] = dg.MetadataValue.float(float(f.statistic))
    if f.threshold is not None:
        metadata["threshold"] = dg.MetadataValue.float(float(f.threshold))
    drifted = f.details.get("drifted") if isinstance(f.details, dict) else None
    if drifted:
        metadata["drifted"] = records_table([{k: d.get(k) for k in ("column", "segment", "psi", "ks", "median_change",
                                                                   "largest_shifts")} for d in drifted])
    if f.details:
        metadata["details"] = dg.MetadataValue.json(f.details)
    return dg.AssetCheckResult(asset_key=asset_key, check_name=f.check, passed=f.passed,
                               severity=dg.AssetCheckSeverity.WARN, description=f.explanation, metadata=metadata)


def suite_checks_for(
    asset_key: dg.AssetKey | list[str] | str,
    table: str,
    partitions_def: dg.PartitionsDefinition | None = None,
    suite_path: str | Path | None = None,
    *,
    suite: Suite | None = None,
) -> dg.AssetChecksDefinition:
    """All checks of one table: one per expectation of ``expectations/<table>.json``, plus the anomaly checks.

    The suite is loaded here, so a malformed suite stops the code location from loading, naming the file
    and the entry. Needs resources ``warehouse`` and ``quality_store``.
    """
    asset_key = dg.AssetKey.from_coercible(asset_key)
    suite = suite or load_suite(suite_path or suites_dir() / f"{table}.json")
    ref_keys = {r.table_name: dg.AssetKey(r.table_name.split(".")) for r in suite.references}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # partitioned check specs are a Dagster preview feature
        specs = [
            dg.AssetCheckSpec(
                name=e.check_name, asset=asset_key, blocking=e.blocking, partitions_def=partitions_def,
                description=f"[{e.severity}] {e.notes} ({e.describe()})",
                additional_deps=[ref_keys[r.table_name] for r in e.references if ref_keys[r.table_name] != asset_key],
                metadata={"severity": e.severity, "expectation_type": e.type, "suite": suite.path.name},
            )
            for e in suite.expectations
        ] + [
            dg.AssetCheckSpec(name=name, asset=asset_key, blocking=False, partitions_def=partitions_def,
                              description=f"[warn] {ANOMALY_DESCRIPTIONS[name]}",
                              metadata={"severity": "warn", "kind": "anomaly"})
            for name in ANOMALY_CHECKS
        ]
    check_keys = {s.key for s in specs}

    @dg.multi_asset_check(
        specs=specs,
        name=f"quality_{'_'.join(asset_key.path)}",
        can_subset=True,
        description=f"Quality of {table}: the GX suite {suite.path.name} ({len(suite.expectations)} expectations), "
                    "a profile of the partition, and anomaly/drift checks against its history.",
    )
    def _quality(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                 quality_store: QualityStoreResource):
        partition = context.partition_key if partitions_def is not None else None
        run = run_quality(warehouse.lake, quality_store.store, suite, partition, run_id=context.run.run_id)
        result = run.suite_result
        context.log.info(
            f"{table} {partition or 'snapshot'}: {result.row_count:,} rows, {len(result.results)} expectations "
            f"({len(result.failed('error'))} error / {len(result.failed('warn'))} warn failed) in "
            f"{run.timings['validate_s']:.2f}s; profile {run.timings['profile_s']:.2f}s; "
            f"anomalies: {[k for k, f in run.findings.items() if not f.passed] or 'none'}")
        selected = context.selected_asset_check_keys or check_keys
        for r in result.results:
            if dg.AssetCheckKey(asset_key, r.check_name) in selected:
                yield expectation_check_result(asset_key, suite, r)
        for f in run.findings.values():
            if dg.AssetCheckKey(asset_key, f.check) in selected:
                yield finding_check_result(asset_key, f)

    return _quality


def suite_checks(asset_key: dg.AssetKey | list[str], partitions_def: dg.PartitionsDefinition | None,
                 settings: Settings, directory: str | Path | None = None) -> dg.AssetChecksDefinition | None:
    """The checks of ``<layer>.<table>``'s suite file as they apply to the settings' shop (its mapping:
    a real shop loses the generated shop's shop-dependent expectations and gains its accepted ones, and
    sources it does not send get no row checks), or None when the table has no suite."""
    asset_key = dg.AssetKey.from_coercible(asset_key)
    table = ".".join(asset_key.path)
    path = Path(directory or suites_dir()) / f"{table}.json"
    if not path.is_file():
        return None
    shop, sends = settings.shop_suites()
    suite = suites_for_shop({table: load_suite(path)}, shop, sends)[table]
    return suite_checks_for(asset_key, table, partitions_def, suite=suite)
