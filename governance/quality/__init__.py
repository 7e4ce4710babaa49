"""Quality monitoring: GX suites from files, validation, profiles, metric history, anomalies, report, alerts.

- ``suites``      GX 1.x suite files in ``expectations/`` with our conventions (severity, notes), checked on load
- ``validation``  Polars frame → GX (ephemeral context, pandas) → plain results
- ``profile``     one-pass partition profiles (nulls, distincts, percentiles, histograms, top values)
- ``store``       SQL metric history (SQLite default, any SQLAlchemy URL), migrated by the project
- ``anomalies``   volume, freshness, null-rate, schema and distribution drift from the history
- ``runner``      one quality pass over a materialized partition (what the Dagster checks run)
- ``results``     every other check's result into the store (``record_check_result``) and how failures are counted
- ``causes``      orphaned rows grouped by the quarantined reference row behind them (root causes)
- ``report``      the self-contained HTML report and per-suite validation pages
- ``alerts``      incidents and the JSON webhook
"""

from governance.quality.anomalies import DriftConfig, Finding, detect
from governance.quality.profile import TableProfile, profile_frame
from governance.quality.report import build_report, summary_text
from governance.quality.results import FailureCounts, failure_counts, record_check_result
from governance.quality.runner import record_profile, run_quality
from governance.quality.store import QualityStore
from governance.quality.suites import Suite, SuiteError, load_suite, load_suites
from governance.quality.validation import SuiteResult, validate

__all__ = [
    "DriftConfig", "FailureCounts", "Finding", "QualityStore", "Suite", "SuiteError", "SuiteResult", "TableProfile", "build_report",
    "detect", "failure_counts", "load_suite", "load_suites", "profile_frame", "record_check_result", "record_profile", "run_quality",
    "summary_text", "validate",
]
