"""The PII scanner: a generated shop materialized through the Dagster stages; every value of the
Dagster event log (metadata, log messages, check results), the quality report and the captured logs
is scanned for the e-mails, phone numbers and names of the shop's users: 0 hits."""

from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._serdes import serialize_value

from assets.definitions import build_definitions
from governance.shop import ShopConfig, generate_shop, land_shop
from governance.storage import Lake

DAYS = ["2026-11-19", "2026-11-20"]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _pii_values(lake: Lake) -> dict[str, set[str]]:
    """Every e-mail, phone and name the shop's users landed with (raw layer: before any cleaning)."""
    users = lake.scan("raw", "users").select("email", "phone", "name").collect()
    out = {}
    for column in users.columns:
        values = users[column].drop_nulls().str.strip_chars().unique().to_list()
        # a value short enough to occur by chance (a two-letter name) would make the scan meaningless
        out[column] = {v for v in values if len(v) >= 6 and not v.isdigit()}
    return out


def _texts(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """(where, text) of every event of every run: metadata, messages, check evaluations — serialized whole."""
    out = []
    for run in instance.get_runs():
        for record in instance.get_records_for_run(run.run_id, limit=100_000).records:
            entry = record.event_log_entry
            where = f"{run.job_name}/{entry.step_key or '-'}/{entry.dagster_event_type or 'log'}"
            out.append((where, entry.user_message or ""))
            if entry.dagster_event is not None:
                out.append((where, serialize_value(entry.dagster_event)))
    return out


@pytest.mark.slow
def test_no_personal_data_in_the_event_log_the_report_or_the_logs(tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    land_shop(generate_shop(ShopConfig(n_events=4_000, days=len(DAYS), seed=11, end_date=date(2026, 11, 20))),
              tmp_path / "landing", tmp_path / "truth")
    defs = build_definitions(data_root=str(tmp_path), demo="1")
    instance = dg.DagsterInstance.ephemeral()
    ran = []
    for stage in ("collection", "cleaning"):
        for name, partitions in ((f"{stage}_inputs", [None]), (f"{stage}_daily", DAYS)):
            for day in partitions:
                result = defs.resolve_job_def(name).execute_in_process(instance=instance, partition_key=day,
                                                                     raise_on_error=False)
                ran.append((name, day, result.success))
    for name in ("quality_inputs",):
        result = defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False)
        ran.append((name, None, result.success))
    assert all(ok for *_, ok in ran[:2 + 2 * len(DAYS)]), ran  # the scan is of a real, materialized shop

    lake = Lake.at(tmp_path / "lake")
    pii = _pii_values(lake)
    assert sum(map(len, pii.values())) > 50, {k: len(v) for k, v in pii.items()}  # the shop has personal data
    raw_users = lake.scan("raw", "users").collect()
    assert raw_users["email"].drop_nulls().len() > 10  # …and the lake keeps it where it belongs

    texts = _texts(instance)
    assert any("preview" in t for _, t in texts)  # the previews are in the scanned event log
    reports = sorted((tmp_path / "reports").rglob("*.html"))
    texts += [(str(p.relative_to(tmp_path)), p.read_text(errors="replace")) for p in reports]
    captured = capsys.readouterr()
    texts += [("python logs", caplog.text), ("stdout", captured.out), ("stderr", captured.err)]

    domains = {e.rsplit("@", 1)[-1].lower() for e in pii["email"] if "@" in e}
    hits = []
    for where, text in texts:
        for column, values in pii.items():
            for value in values:
                if value in text:
                    hits.append(f"{where}: {column} {value[:3]}…")
        for found in EMAIL.findall(text):  # any address at the users' own domains, however spelled
            if found.rsplit("@", 1)[-1].lower() in domains:
                hits.append(f"{where}: e-mail shaped {found[:3]}… ({text[max(0, text.find(found) - 60):text.find(found)][:60]!r})")
    print(f"\nPII scanner: {len(texts)} texts ({sum(len(t) for _, t in texts):,} characters) from "
          f"{len(ran)} runs and {len(reports)} report(s), {sum(map(len, pii.values()))} personal values: {len(hits)} hits")
    assert not hits, "\n".join(sorted(set(hits))[:30])
