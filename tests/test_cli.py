"""The `governance` command as a user meets it: every --help, the read commands, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from governance.cli import build_parser, main


def commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001 - argparse keeps them here
    return sorted(sub.choices)


@pytest.mark.parametrize("command", commands())
def test_every_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: governance") and command in out
    options = [line for line in out.splitlines() if line.strip().startswith("--") and "--help" not in line]
    undocumented = [line for line in options if len(line.strip().split(None, 1)) < 2]
    assert not undocumented, f"{command}: options without a description: {undocumented}"
    # every argument (short options and positionals too) has a help text, and the command a description
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]  # noqa: SLF001
    silent = [a.option_strings or a.dest for a in sub._actions if a.help is None]  # noqa: SLF001
    assert not silent, f"{command}: arguments without help: {silent}"
    assert sub.description, f"{command} has no description"
    assert ":func:" not in out and "``" not in out, f"{command}: Sphinx markup in --help"


def test_rules_lists_every_source_in_order(capsys):
    assert main(["rules", "events"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert lines and lines[0].strip().startswith("1.")


def test_a_missing_catalog_is_one_clear_line(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "why", "events", "e1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("governance why: no catalog at") and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_bad_argument_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["why", "nonsense", "e1"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_settings_mask_secrets(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GOVERNANCE_PSEUDONYM_KEY", "very-secret-value")
    monkeypatch.setenv("GOVERNANCE_QUALITY_DB_URL", "postgresql://gov:hunter2@db:5432/q")
    assert main(["--data", str(tmp_path), "settings"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "very-secret-value" not in out and "hunter2" not in out
    assert "pseudonym_secret   (set)" in out


def test_import_why_and_sql_on_a_landed_and_collected_export(tmp_path, capsys):
    """From another directory, the command reads the data root it is given: import lands, the lifecycle
    collects, `why` explains a quarantined row, `sql` queries the catalog."""
    from governance.collection import ingest_partition
    from governance.contracts import CONTRACTS
    from governance.settings import Settings

    export = tmp_path / "otto.jsonl"
    export.write_text('{"session": 1, "events": [{"aid": 5, "ts": 1700000000000, "type": "clicks"}]}\n'
                      '{"session": 2, "events": [{"aid": 6, "ts": "broken", "type": "clicks"}]}\n')
    data = tmp_path / "data"
    assert main(["--data", str(data), "import", "otto", str(export)]) == 0
    assert "landed" in capsys.readouterr().out.lower()
    settings = Settings.load(data_root=str(data))
    day = sorted(p.name for p in (settings.landing_root / "events").iterdir())[0]
    (settings.landing_root / "events" / day / "shop.csv").write_text(
        "event_id,session_id,user_id,item_id,event_type,event_time,price,quantity\n"
        "e9,s1,u1,p1,view,not-a-time,,\n")
    from datetime import UTC, datetime

    ingest_partition(settings.lake(), CONTRACTS["events"], settings.landing_root, day, run_id="t",
                     ingested_at=datetime.now(UTC))
    catalog = settings.catalog()
    for layer in ("raw", "quarantine", "audit"):
        catalog.register(layer, "events")
    assert main(["--data", str(data), "sql", "select count(*) as n from raw.events", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "1"  # the OTTO event; the broken row is quarantined
    assert main(["--data", str(data), "why", "events", "e9"]) == 0
    assert "unparsable_value" in capsys.readouterr().out
    assert main(["--data", str(data), "sql", "select * from clean.nothing"]) == 2
    assert "has that stage been materialized" in capsys.readouterr().err


def test_the_installed_command_runs_from_another_directory(tmp_path):
    exe = Path(sys.executable).with_name("governance")
    out = subprocess.run([str(exe), "--data", str(tmp_path), "rules", "queries"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "queries" in out.stdout and not out.stderr.strip()
