"""Every resource, built from the one settings object (``governance.settings.Settings``).

``SettingsResource`` carries the settings as run configuration (the launchpad shows it; an empty
field means "environment, then default"); the other resources hold it and hand out what they
manage. Nothing is read at import: ``Settings.load`` runs when a resource is used.

Tests and scripts build all of them at once with :func:`governance_resources`, so one root is named once.
"""

from __future__ import annotations

import dagster as dg

from governance.settings import Settings


class SettingsResource(dg.ConfigurableResource):
    """The deployment's settings (see governance/settings.py for each one's environment variable and default)."""

    data_root: str = ""
    lake_root: str = ""
    landing_root: str = ""
    models_root: str = ""
    quality_url: str = ""
    webhook_url: str = ""
    partition_start: str = ""
    integration: str = ""  # JSON text or a path to a JSON file of IntegrationConfig fields
    pseudonym_secret: str = ""
    demo: str = ""
    max_record_bytes: str = ""
    duplicate_lookback_days: str = ""
    mapping: str = ""
    engine: str = ""  # polars (default) or spark: where cleaning runs
    spark_master: str = ""  # with engine=spark: local[2] (default), spark://host:7077, k8s://…, yarn

    def get(self) -> Settings:
        return Settings.load(**{name: value for name, value in self.model_dump().items() if value})


class WarehouseResource(dg.ConfigurableResource):
    """The embedded warehouse: Parquet lake (store of record), landing zone, DuckDB catalog of views."""

    settings: SettingsResource

    @property
    def config(self) -> Settings:
        return self.settings.get()

    @property
    def lake(self):
        return self.config.lake()

    @property
    def landing(self):
        return self.config.landing_root

    @property
    def catalog(self):
        return self.config.catalog()


class ModelRegistryResource(dg.ConfigurableResource):
    """The model registry under ``models_root``: versioned artifacts, cards and the promoted version per task."""

    settings: SettingsResource

    @property
    def root(self):
        return self.settings.get().models_root

    @property
    def registry(self):
        from governance.labelling.registry import ModelRegistry

        return ModelRegistry(self.root)


class QualityStoreResource(dg.ConfigurableResource):
    """Where check results, profiles and incidents are kept (any SQLAlchemy URL), and where alerts go."""

    settings: SettingsResource

    @property
    def store(self):
        from governance.quality.store import QualityStore

        settings = self.settings.get()
        if settings.quality_url.startswith("sqlite:///"):
            settings.data_root.mkdir(parents=True, exist_ok=True)
        return QualityStore.shared(settings.quality_url)

    @property
    def reports_dir(self):
        return self.settings.get().reports_dir

    @property
    def webhook(self) -> str | None:
        return self.settings.get().webhook_url


def governance_resources(**settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource the definitions need, over one ``SettingsResource`` (values as in ``Settings.load``)."""
    config = SettingsResource(**{k: str(v) for k, v in settings.items() if v is not None})
    return {
        "settings": config,
        "warehouse": WarehouseResource(settings=config),
        "models": ModelRegistryResource(settings=config),
        "quality_store": QualityStoreResource(settings=config),
    }
