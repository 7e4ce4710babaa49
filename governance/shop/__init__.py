"""A seeded, vectorised generator of a realistic, messy online shop with ground truth.

`generate_shop(ShopConfig(...))` builds the true clean tables (catalog, users, sessions and events,
reviews, search queries), a landed copy with faults injected at known rates, and a truth table of
every injected fault; `land_shop` writes the landed files (CSV, JSON Lines, Parquet by day) and the
truth (Parquet + manifest.json). Same config → byte-identical files.
"""

from governance.shop.config import DEFAULT_FAULT_RATES, FAULT_KINDS, ShopConfig
from governance.shop.faults import BROKEN_UTF8
from governance.shop.generator import Shop, fault_rates_observed, generate_shop, land_shop
from governance.shop.landing import LandingSummary, file_hashes

__all__ = [
    "BROKEN_UTF8",
    "DEFAULT_FAULT_RATES",
    "FAULT_KINDS",
    "LandingSummary",
    "Shop",
    "ShopConfig",
    "fault_rates_observed",
    "file_hashes",
    "generate_shop",
    "land_shop",
]
