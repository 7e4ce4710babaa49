"""governance: the domain library of the data-governance platform (no Dagster inside)."""

__version__ = "0.1.0"
