"""Integration: clean tables from every source → one consistent, keyed model of products, users
and behaviour (`integrated.*`), with reconciliation, consistency findings and catalog findings.

Modules (no Dagster here; ``assets/integration.py`` is the thin orchestration layer):

* ``config``      — every tunable (weights, decay, tolerances, thresholds) and its stated default
* ``schemas``     — the declared columns and primary key of every integrated table
* ``identity``    — user/product keys across sources: mapping tables, conflict rules, pseudonyms
* ``catalog``     — canonical brand/category, price & category history (SCD 2), price at a time
* ``events``      — admission of clean events (quarantine with reasons), interactions, product activity
* ``sessions``    — sessions and query → product attribution
* ``incremental`` — snapshots recomputed only for the keys that changed days touch
* ``profiles``    — product features and user profiles
* ``checks``      — blocking checks: primary keys, referential integrity, reconciliation, aggregates
* ``consistency`` — cross-source findings (warnings)
* ``findings``    — MiniLM-backed miscategorised / duplicate product findings, embedding cache
* ``pipeline``    — all of the above over the lake, per asset and end to end (``integrate``)
"""

from governance.integration.config import DEFAULT_CONFIG, EVENT_TYPES, IntegrationConfig
from governance.integration.pipeline import (
    DaySource,
    MissingInputError,
    build_catalog,
    build_identity,
    build_products_snapshot,
    build_users_snapshot,
    integrate,
    integrate_events_day,
    integrate_query_clicks_day,
    integrate_sessions_day,
    load_lookups,
    write_catalog,
    write_identity,
)
from governance.integration.schemas import DAILY_TABLES, PRIMARY_KEYS, SCHEMAS

__all__ = [
    "DAILY_TABLES", "DEFAULT_CONFIG", "EVENT_TYPES", "PRIMARY_KEYS", "SCHEMAS", "DaySource", "IntegrationConfig",
    "MissingInputError", "build_catalog", "build_identity", "build_products_snapshot", "build_users_snapshot",
    "integrate", "integrate_events_day", "integrate_query_clicks_day", "integrate_sessions_day",
    "load_lookups", "write_catalog", "write_identity",
]
