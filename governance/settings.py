"""Every setting of a deployment in one validated object, read at run time.

The Dagster resources (``assets/resources.py``) and the ``governance`` command build their
:class:`Settings` the same way — :meth:`Settings.load`: explicit values first, then the
environment, then the defaults below — so the CLI run from any directory reads the warehouse that
Dagster writes. Nothing here is read at import.

| setting | environment variable | default |
|---|---|---|
| ``data_root`` | ``GOVERNANCE_DATA_ROOT`` | ``<project>/data`` in a source checkout, else ``./data`` |
| ``lake_root`` | ``GOVERNANCE_LAKE_ROOT`` | ``<data_root>/lake`` |
| ``landing_root`` | ``GOVERNANCE_LANDING_ROOT`` | ``<data_root>/landing`` |
| ``models_root`` | ``GOVERNANCE_MODELS_ROOT`` | ``<data_root>/models`` |
| ``quality_url`` | ``GOVERNANCE_QUALITY_DB_URL`` | ``postgres_url`` when set, else SQLite ``<data_root>/quality.db`` |
| ``postgres_url`` | ``GOVERNANCE_POSTGRES_URL`` | none; one PostgreSQL server for the quality store and the Dagster instance (``dagster.postgres.yaml``) |
| ``sensor_interval`` | ``GOVERNANCE_SENSOR_INTERVAL`` | 60: seconds between the landing-zone sensor's ticks |
| ``executor`` | ``GOVERNANCE_EXECUTOR`` | ``multiprocess`` (a process per step) or ``in_process`` for launched runs |
| ``webhook_url`` | ``GOVERNANCE_QUALITY_WEBHOOK_URL`` | none (incidents recorded only) |
| ``partition_start`` | ``GOVERNANCE_PARTITION_START`` | the first landed day (partitions follow the data) |
| ``integration`` | ``GOVERNANCE_INTEGRATION_CONFIG`` (JSON text or file) | ``IntegrationConfig()`` |
| ``pseudonym_secret`` | ``GOVERNANCE_PSEUDONYM_KEY`` | a public demo constant, refused unless ``demo`` |
| ``demo`` | ``GOVERNANCE_DEMO`` (``1``) | off |
| ``model_cache`` | ``GOVERNANCE_MODEL_CACHE`` | ``~/.cache/governance`` |
| ``shared_data`` | ``GOVERNANCE_SHARED_DATA`` | ``../shared/data`` beside a source checkout |
| ``max_record_bytes`` | ``GOVERNANCE_MAX_RECORD_BYTES`` | 1 MiB: a bigger landed record is quarantined with a preview |
| ``duplicate_lookback_days`` | ``GOVERNANCE_DUPLICATE_LOOKBACK_DAYS`` | 7: days before a partition searched for re-sent rows |
| ``mapping`` | ``GOVERNANCE_MAPPING`` | none: the generated shop (its suites as they are) |
| ``engine`` | ``GOVERNANCE_ENGINE`` | ``polars``: collection and cleaning on this machine; ``spark``: on Apache Spark |
| ``spark_master`` | ``GOVERNANCE_SPARK_MASTER`` | ``local[2]`` (with ``engine=spark``: e.g. ``spark://host:7077``, ``k8s://…``, ``yarn``) |
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path

from governance.integration.config import DEMO_PSEUDONYM_SECRET, IntegrationConfig

ENV = {
    "data_root": "GOVERNANCE_DATA_ROOT",
    "lake_root": "GOVERNANCE_LAKE_ROOT",
    "landing_root": "GOVERNANCE_LANDING_ROOT",
    "models_root": "GOVERNANCE_MODELS_ROOT",
    "quality_url": "GOVERNANCE_QUALITY_DB_URL",
    "postgres_url": "GOVERNANCE_POSTGRES_URL",
    "sensor_interval": "GOVERNANCE_SENSOR_INTERVAL",
    "executor": "GOVERNANCE_EXECUTOR",
    "webhook_url": "GOVERNANCE_QUALITY_WEBHOOK_URL",
    "partition_start": "GOVERNANCE_PARTITION_START",
    "integration": "GOVERNANCE_INTEGRATION_CONFIG",
    "pseudonym_secret": "GOVERNANCE_PSEUDONYM_KEY",
    "demo": "GOVERNANCE_DEMO",
    "model_cache": "GOVERNANCE_MODEL_CACHE",
    "shared_data": "GOVERNANCE_SHARED_DATA",
    "max_record_bytes": "GOVERNANCE_MAX_RECORD_BYTES",
    "duplicate_lookback_days": "GOVERNANCE_DUPLICATE_LOOKBACK_DAYS",
    "mapping": "GOVERNANCE_MAPPING",
    "engine": "GOVERNANCE_ENGINE",
    "spark_master": "GOVERNANCE_SPARK_MASTER",
}
#: the engines that can run collection and the cleaning rules (collection_spark.py, cleaning/spark.py for Spark)
ENGINES = ("polars", "spark")


_WARNED_PUBLIC_SECRET: list[bool] = []


class SettingsError(ValueError):
    """A setting that cannot be used, named with where it came from."""


class PublicPseudonymSecretWarning(UserWarning):
    """Pseudonyms are keyed with the public demo constant: anyone can link them back to ids."""


def source_checkout() -> Path | None:
    """The project's root when running from a source checkout (editable install), else None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "expectations").is_dir() else None


def _default_data_root() -> Path:
    root = source_checkout()
    return root / "data" if root else Path.cwd() / "data"


def _default_shared_data() -> Path | None:
    root = source_checkout()
    candidate = root.parent / "shared" / "data" if root else None
    return candidate if candidate and candidate.is_dir() else None


def _integration(value: IntegrationConfig | Mapping | str | None) -> IntegrationConfig:
    if value is None or value == "":
        return IntegrationConfig()
    if isinstance(value, IntegrationConfig):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("{"):
            try:
                text = Path(text).read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError(f"integration settings file {value!r} cannot be read: {exc}") from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"integration settings are not valid JSON: {exc}") from None
    values = dict(value)
    unknown = set(values) - {f.name for f in fields(IntegrationConfig)}
    if unknown:
        raise SettingsError(f"unknown integration settings {sorted(unknown)}; known: "
                            f"{sorted(f.name for f in fields(IntegrationConfig))}")
    if values.get("decay_as_of"):
        values["decay_as_of"] = date.fromisoformat(str(values["decay_as_of"]))
    try:
        return IntegrationConfig(**values)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"integration settings: {exc}") from None


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"GOVERNANCE_DEMO must be 1/0 (or true/false), got {value!r}")


@dataclass(frozen=True)
class Settings:
    """Where everything lives and how the stages behave; build with :meth:`load`."""

    data_root: Path
    lake_root: str
    landing_root: Path
    models_root: Path
    quality_url: str
    webhook_url: str | None = None
    partition_start: date | None = None
    integration: IntegrationConfig = field(default_factory=IntegrationConfig)
    pseudonym_secret: str | None = None
    demo: bool = False
    model_cache: Path = field(default_factory=lambda: Path.home() / ".cache" / "governance")
    shared_data: Path | None = None
    max_record_bytes: int = 1 << 20
    #: days before a partition whose raw rows are searched for re-sent duplicates (cleaning)
    duplicate_lookback_days: int = 7
    #: the shop's mapping file (governance/mappings): which sources it sends, and its name for its suites
    mapping: Path | None = None
    #: one PostgreSQL server (SQLAlchemy URL) for the quality store and the Dagster instance's storage
    postgres_url: str | None = None
    #: seconds between the landing-zone sensor's ticks (a file is taken once unchanged over two ticks)
    sensor_interval: int = 60
    #: how launched runs execute their steps: "multiprocess" (a process per step) or "in_process"
    executor: str = "multiprocess"
    #: where collection and the cleaning rules run: "polars" (this process) or "spark" (Apache Spark at spark_master)
    engine: str = "polars"
    #: the Spark master URL when engine is "spark" (other Spark configuration: spark-defaults.conf)
    spark_master: str = "local[2]"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **explicit) -> Settings:
        """Explicit values (``None`` or ``""`` mean unset), then ``env`` (default ``os.environ``), then defaults."""
        env = os.environ if env is None else env
        unknown = set(explicit) - set(ENV)
        if unknown:
            raise SettingsError(f"unknown settings {sorted(unknown)}; known: {sorted(ENV)}")

        def pick(name: str):
            value = explicit.get(name)
            if value is None or value == "":
                value = env.get(ENV[name]) or None
            return value

        data_root = Path(pick("data_root") or _default_data_root()).expanduser().resolve()
        start = pick("partition_start")
        if isinstance(start, str):
            try:
                start = date.fromisoformat(start)
            except ValueError:
                raise SettingsError(f"partition_start must be a YYYY-MM-DD day, got {start!r}") from None
        shared = pick("shared_data")
        settings = cls(
            data_root=data_root,
            lake_root=str(pick("lake_root") or data_root / "lake"),
            landing_root=Path(pick("landing_root") or data_root / "landing").expanduser().resolve(),
            models_root=Path(pick("models_root") or data_root / "models").expanduser().resolve(),
            quality_url=str(pick("quality_url") or pick("postgres_url") or f"sqlite:///{data_root / 'quality.db'}"),
            webhook_url=pick("webhook_url"),
            partition_start=start,
            integration=_integration(pick("integration")),
            pseudonym_secret=pick("pseudonym_secret"),
            demo=_flag(pick("demo")),
            model_cache=Path(pick("model_cache") or Path.home() / ".cache" / "governance").expanduser(),
            shared_data=Path(shared).expanduser() if shared else _default_shared_data(),
            max_record_bytes=_positive_int("max_record_bytes", pick("max_record_bytes") or 1 << 20),
            duplicate_lookback_days=_positive_int("duplicate_lookback_days", pick("duplicate_lookback_days") or 7),
            mapping=Path(pick("mapping")).expanduser() if pick("mapping") else None,
            postgres_url=pick("postgres_url"),
            sensor_interval=_positive_int("sensor_interval", pick("sensor_interval") or 60),
            executor=_choice("executor", pick("executor") or "multiprocess", ("multiprocess", "in_process")),
            engine=_engine(pick("engine")),
            spark_master=str(pick("spark_master") or "local[2]"),
        )
        return settings

    def shop_suites(self):
        """(shop, sources it sends) from the mapping; (None, None) for the generated shop."""
        if self.mapping is None:
            return None, None
        from governance.mappings import load_mapping

        mapping = load_mapping(self.mapping)
        return mapping.shop, mapping.sends

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    # ------------------------------------------------------------------ derived places

    @property
    def catalog_path(self) -> Path:
        return self.data_root / "warehouse.duckdb"

    @property
    def reports_dir(self) -> Path:
        return self.data_root / "reports"

    @property
    def truth_dir(self) -> Path:
        """The generated shop's ground truth (absent for a real shop)."""
        return self.data_root / "truth"

    def lake(self):
        from governance.storage import Lake

        return Lake.at(self.lake_root)

    def catalog(self):
        from governance.storage import Catalog

        return Catalog.at(self.catalog_path, self.lake())

    # ------------------------------------------------------------------ secrets

    @property
    def uses_public_secret(self) -> bool:
        return not self.pseudonym_secret

    def integration_config(self) -> IntegrationConfig:
        """The integration settings keyed with this deployment's pseudonym secret.

        Without a secret of its own a deployment would pseudonymise with a public constant: allowed for
        the demo (``demo``), refused otherwise with the one line that fixes it.
        """
        if self.pseudonym_secret:
            return self.integration.with_(pseudonym_secret=self.pseudonym_secret)
        if not self.demo:
            raise SettingsError(
                "no pseudonym secret: set GOVERNANCE_PSEUDONYM_KEY (or the `pseudonym_secret` setting) to a "
                "private value; only the demo (GOVERNANCE_DEMO=1) may use the public built-in key")
        if not _WARNED_PUBLIC_SECRET:
            _WARNED_PUBLIC_SECRET.append(True)  # once per process: it is a property of the deployment
            warnings.warn("pseudonyms are keyed with the public demo secret (GOVERNANCE_DEMO=1); set "
                          "GOVERNANCE_PSEUDONYM_KEY for real data", PublicPseudonymSecretWarning, stacklevel=2)
        return self.integration.with_(pseudonym_secret=DEMO_PSEUDONYM_SECRET)

    def describe(self) -> dict[str, str]:
        """Every setting as text for logs, run config and ``governance settings``; secrets masked."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "pseudonym_secret":
                value = "(set)" if value else "(public demo key)" if self.demo else "(missing)"
            elif f.name == "webhook_url":
                value = redact_url(value, keep_path=False) if value else "(none)"
            elif f.name == "quality_url":
                value = _redact_url(value)
            elif f.name == "postgres_url":
                value = _redact_url(value) if value else "(none)"
            elif f.name == "integration":
                value = json.dumps(value.as_dict(), sort_keys=True)
            elif f.name == "partition_start":
                value = value.isoformat() if value else "(first landed day)"
            out[f.name] = str(value)
        return out


def _engine(value) -> str:
    engine = str(value or "polars").strip().lower()
    if engine not in ENGINES:
        raise SettingsError(f"engine must be one of {', '.join(ENGINES)} (GOVERNANCE_ENGINE), got {value!r}")
    return engine


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return text


def _positive_int(name: str, value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise SettingsError(f"{name} must be a positive whole number, got {value!r}")
    return number


def redact_url(url: str, keep_path: bool = True) -> str:
    """A URL with its password, query string and fragment (where tokens hide) masked — and with
    ``keep_path=False`` its path too (a webhook's token is often a path segment); other URLs unchanged."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return "(unparsable URL)"
    if not keep_path:
        if not parts.scheme or not parts.netloc:
            return "(URL without a scheme and host: not shown)"
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit((parts.scheme, host, "/***" if parts.path.strip("/") else "", "***" if parts.query else "", ""))
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    if netloc == parts.netloc and not parts.query and not parts.fragment:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


_redact_url = redact_url
