"""`make demo` end to end on a tiny shop, as a user runs it: a fresh Dagster instance, progress on screen,
every run succeeds, the summary says where the report is — and the UI's runs are the stage jobs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_the_lifecycle_through_the_stage_jobs(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "GOVERNANCE_DATA_ROOT": str(tmp_path / "data"),
           "GOVERNANCE_DEMO": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "assets.demo", "--events", "15000", "--days", "3"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    for stage in ("collection", "cleaning", "labelling", "integration", "quality"):
        assert f"{stage}:" in text
    assert "runs: " in text and "(0 failed)" in text
    report = tmp_path / "data" / "reports" / "quality_report.html"
    assert f"report: {report}" in text and report.is_file()
    assert "Traceback" not in out.stderr
    # the report's failure counts are the run's: same failed, blocking, warning and evaluated figures
    ran = re.search(r"asset checks: (\d+) failed \((\d+) blocking, (\d+) warnings\) of (\d+) evaluated", text)
    stored = re.search(r"(\d+) failed checks \((\d+) blocking, (\d+) warnings, of which \d+ anomaly/drift\) of "
                       r"(\d+) evaluated", text)
    assert ran and stored and ran.groups() == stored.groups(), (ran and ran.group(0), stored and stored.group(0))
    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_runs()
    assert runs and all(r.job_name != "__ephemeral_asset_job__" for r in runs)
    assert {r.tags.get("stage") for r in runs} >= {"collection", "cleaning", "labelling", "integration", "quality"}
