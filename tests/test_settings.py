"""One settings object: explicit values over the environment over the defaults, validated, secrets guarded."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from governance.settings import PublicPseudonymSecretWarning, Settings, SettingsError


def test_everything_follows_the_data_root(tmp_path):
    s = Settings.load(env={}, data_root=str(tmp_path))
    assert s.data_root == tmp_path.resolve()
    assert Path(s.lake_root) == tmp_path / "lake" and s.landing_root == tmp_path / "landing"
    assert s.models_root == tmp_path / "models" and s.catalog_path == tmp_path / "warehouse.duckdb"
    assert s.quality_url == f"sqlite:///{tmp_path / 'quality.db'}" and s.partition_start is None


def test_explicit_beats_environment_beats_default(tmp_path):
    env = {"GOVERNANCE_DATA_ROOT": str(tmp_path / "env"), "GOVERNANCE_MODELS_ROOT": str(tmp_path / "m"),
           "GOVERNANCE_PARTITION_START": "2025-01-02"}
    s = Settings.load(env=env)
    assert s.data_root == tmp_path / "env" and s.models_root == tmp_path / "m"
    assert s.partition_start == date(2025, 1, 2)
    s = Settings.load(env=env, data_root=str(tmp_path / "cli"), models_root="")
    assert s.data_root == tmp_path / "cli" and s.models_root == tmp_path / "m"  # "" means unset


def test_the_default_data_root_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    here = Settings.load(env={}).data_root
    monkeypatch.chdir(tmp_path)
    assert Settings.load(env={}).data_root == here


@pytest.mark.parametrize("env, message", [
    ({"GOVERNANCE_PARTITION_START": "yesterday"}, "YYYY-MM-DD"),
    ({"GOVERNANCE_INTEGRATION_CONFIG": '{"weights": {"view": 1}, "no_such": 1}'}, "unknown integration settings"),
    ({"GOVERNANCE_INTEGRATION_CONFIG": '{"half_life_days": -3}'}, "half_life_days"),
    ({"GOVERNANCE_INTEGRATION_CONFIG": "/no/such/file.json"}, "cannot be read"),
    ({"GOVERNANCE_DEMO": "maybe"}, "GOVERNANCE_DEMO"),
])
def test_bad_settings_are_refused_with_a_clear_message(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.load(env=env)


def test_integration_settings_from_json(tmp_path):
    path = tmp_path / "integration.json"
    path.write_text('{"weights": {"purchase": 20}, "decay_as_of": "2026-01-31", "half_life_days": 14}')
    config = Settings.load(env={"GOVERNANCE_INTEGRATION_CONFIG": str(path)}).integration
    assert config.weights["purchase"] == 20 and config.weights["view"] == 1.0
    assert config.decay_as_of == date(2026, 1, 31) and config.half_life_days == 14


def test_the_public_pseudonym_secret_only_for_the_demo():
    with pytest.raises(SettingsError, match="GOVERNANCE_PSEUDONYM_KEY"):
        Settings.load(env={}).integration_config()
    private = Settings.load(env={"GOVERNANCE_PSEUDONYM_KEY": "k1"}).integration_config()
    other = Settings.load(env={"GOVERNANCE_PSEUDONYM_KEY": "k2"}).integration_config()
    assert private.secret == b"k1" and private.fingerprint() != other.fingerprint()
    import governance.settings as module

    module._WARNED_PUBLIC_SECRET.clear()
    with pytest.warns(PublicPseudonymSecretWarning):
        demo = Settings.load(env={"GOVERNANCE_DEMO": "1"}).integration_config()
    assert demo.secret not in (b"k1", b"k2")


def test_describe_masks_secrets():
    s = Settings.load(env={"GOVERNANCE_PSEUDONYM_KEY": "s3cret", "GOVERNANCE_QUALITY_DB_URL":
                           "postgresql+psycopg2://gov:pw123@db:5432/q",
                           "GOVERNANCE_QUALITY_WEBHOOK_URL": "https://hooks.example/x?token=abc"})
    text = str(s.describe())
    assert "s3cret" not in text and "pw123" not in text and "token=abc" not in text
    assert "postgresql+psycopg2://gov:***@db:5432/q" in text
