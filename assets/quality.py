"""Quality stage: the analysts' report and the incident sensor.

The suites themselves run as asset checks beside the assets they check (``assets/suite_checks.py``,
called by each stage); this stage renders what they recorded and raises incidents when blocking
checks fail.
"""

from pathlib import Path

import dagster as dg

from assets.metadata import counts_table
from assets.resources import QualityStoreResource, WarehouseResource
from governance.settings import Settings
from governance.quality.alerts import raise_incident
from governance.quality.report import build_report
from governance.quality.runner import suites_dir

GROUP = "quality"


# ------------------------------------------------------------------------------------ report

@dg.asset(
    key=["quality", "report"],
    group_name=GROUP,
    kinds={"html"},
    description=(
        "The analysts' quality report: one self-contained HTML file (data/reports/quality_report.html) with the "
        "overall and per-table status, failed expectations with examples, quarantine by rule over time, row-count "
        "and null-rate trends, drift findings, and a validation page per suite. Built from the quality store, so "
        "it has no data dependencies: it is never skipped because of the blocking failures it has to report."
    ),
    tags={"layer": "quality", "stage": "quality"},
)
def quality_report(context: dg.AssetExecutionContext, quality_store: QualityStoreResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    report = build_report(quality_store.store, quality_store.reports_dir, suites_dir=suites_dir(), lake=warehouse.lake)
    context.log.info(f"quality report: {report.status}, {report.path}; {report.counts.line()}")
    return dg.MaterializeResult(metadata={
        "open_report": dg.MetadataValue.url(report.url),
        "path": dg.MetadataValue.path(str(report.path)),
        "overall_status": report.status,
        "tables": counts_table(report.table_status, "table", "status"),
        "failed_error_checks": report.failed_error,
        "failed_warn_checks": report.failed_warn,
        "drift_findings": report.anomalies,
        "suite_pages": dg.MetadataValue.md("\n".join(f"- [{Path(p).stem}]({Path(p).resolve().as_uri()})"
                                                      for p in report.suite_pages) or "_none_"),
    })


# ------------------------------------------------------------------------------------ alerts

def _failed_error_checks(instance: dg.DagsterInstance, run_id: str) -> dict[tuple[str, str | None], list[dict]]:
    """(table, partition) → failed ERROR-severity check evaluations of one run."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    out: dict[tuple[str, str | None], list[dict]] = {}
    for rec in records:
        evaluation = rec.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        md = {k: v.value for k, v in (evaluation.metadata or {}).items() if k in (
            "expectation", "notes", "unexpected_count", "unexpected_percent", "observed_value")}
        failing = {"check_name": evaluation.check_name, "description": md.get("expectation") or evaluation.description,
                   "notes": md.get("notes"), "unexpected_count": md.get("unexpected_count"),
                   "unexpected_percent": md.get("unexpected_percent"), "observed_value": md.get("observed_value")}
        table = ".".join(evaluation.asset_key.path)
        out.setdefault((table, evaluation.partition), []).append(failing)
    return out


@dg.run_failure_sensor(
    name="quality_incident_sensor",
    description="When a run fails because blocking (error) checks failed: record an incident per table partition "
                "in the quality store (failing checks, first/last seen, run) and POST it to the configured webhook.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def quality_incident_sensor(context: dg.RunFailureSensorContext, quality_store: QualityStoreResource):
    failing = _failed_error_checks(context.instance, context.dagster_run.run_id)
    for (table, partition), checks in sorted(failing.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        incident = raise_incident(quality_store.store, table, partition, checks, context.dagster_run.run_id,
                                  webhook_url=quality_store.webhook)
        context.log.info(f"incident {incident['id']} on {table} {partition or 'snapshot'}: "
                         f"{len(checks)} failed error check(s); webhook: {incident.get('notify_result') or 'not configured'}")


def stage_definitions(daily: dg.PartitionsDefinition, settings: Settings) -> dg.Definitions:  # noqa: ARG001
    """The report asset and the incident sensor (the quality stage has no daily assets)."""
    return dg.Definitions(assets=[quality_report], sensors=[quality_incident_sensor])
