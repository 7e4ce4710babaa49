"""The shape of every clean table: contract columns, normalised, plus flags and lineage.

Later stages (labelling, integration, quality) read these columns and nothing else.
"""

from __future__ import annotations

import polars as pl

from governance.contracts import CONTRACTS, LINEAGE_COLUMNS

_TS = pl.Datetime("us", "UTC")

#: columns each clean table adds to its contract's columns (flags are booleans, never null)
CLEAN_EXTRAS: dict[str, dict[str, pl.DataType]] = {
    "events": {
        "price_usd_converted": pl.Boolean(),  # price was converted from another currency
        "is_anonymous": pl.Boolean(),  # no user_id: an anonymous session
    },
    "products": {
        "category_l1": pl.String(),
        "category_l2": pl.String(),
        "category_l3": pl.String(),
        "price_imputed": pl.Boolean(),  # price was missing or impossible: imputed with the category median
        "brand_missing": pl.Boolean(),
        "is_current": pl.Boolean(),  # the product's latest version (rows of other files are its history)
    },
    "users": {
        "country_missing": pl.Boolean(),
        "signup_invalid": pl.Boolean(),  # signup_at was impossible and has been removed (null)
        "is_current": pl.Boolean(),  # the user's latest profile version
    },
    "reviews": {
        "pii_spans_masked": pl.Int32(),
        "text_damaged": pl.Boolean(),  # broken UTF-8 replaced by U+FFFD: unreliable for labelling
        "text_missing": pl.Boolean(),
    },
    "queries": {
        "pii_spans_masked": pl.Int32(),
        "text_damaged": pl.Boolean(),
        "user_unknown": pl.Boolean(),  # user_id not in clean.users (kept: search analytics still count it)
    },
}


def clean_schema(source: str) -> dict[str, pl.DataType]:
    """Contract columns (typed), the source's extra clean columns, then lineage."""
    contract = CONTRACTS[source]
    return {**{c.name: c.dtype for c in contract.columns}, **CLEAN_EXTRAS[source], **LINEAGE_COLUMNS}
