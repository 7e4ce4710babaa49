"""The product dimension: canonical brand and category levels, and price/category history (SCD 2).

``clean.products`` keeps every landed version of a product. A version's time is its
``updated_at``; without one, the day its file landed (the ``<day>`` folder in ``_source_file``),
then its ingest time. Versions that change nothing tracked (title, brand, category, price,
currency) are folded into the version before them, so every history row is a real change.

``valid_from`` is the version's time, ``valid_to`` the next version's (exclusive, null for the
current one). ``price_at`` answers "what did this cost when it was bought": the version valid at the
event time, or, for events before the first known version (catalogs are often landed after the
first sales), the first version — flagged so nobody mistakes the assumption for a fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from governance.integration.identity import product_mapping, source_system
from governance.integration.schemas import TS, conform_table

TRACKED = ("title", "brand", "category_path", "price", "currency")
CONFLICT_ATTRIBUTES = ("title", "description", "brand", "category_path", "price", "currency")
_LEVEL_SEP = " > "


def canonical_key(expr: pl.Expr) -> pl.Expr:
    """Matching key: lower case, letters and digits only, single spaces (as the cleaning stage)."""
    return (expr.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ")
            .str.strip_chars())


def _tidy(expr: pl.Expr) -> pl.Expr:
    out = expr.str.normalize("NFC").str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(out == "").then(None).otherwise(out)


def _canonical_spelling(frame: pl.DataFrame, column: str, key: pl.Expr) -> pl.DataFrame:
    """Replace every spelling of a value by its most frequent spelling (ties: alphabetical)."""
    spell = frame.select(key.alias("__k"), _tidy(pl.col(column)).alias("__v")).drop_nulls()
    if spell.is_empty():
        return frame
    canon = (spell.group_by("__k", "__v").len().sort(["len", "__v"], descending=[True, False])
             .group_by("__k", maintain_order=True).agg(pl.col("__v").first().alias("__canon")))
    return (frame.with_columns(key.alias("__k")).join(canon, on="__k", how="left", maintain_order="left")
            .with_columns(pl.col("__canon").alias(column)).drop("__k", "__canon"))


def landing_day(expr: pl.Expr) -> pl.Expr:
    """Midnight UTC of the ``YYYY-MM-DD`` folder a file landed in (null when there is none)."""
    return (expr.str.extract(r"(?:^|/)(\d{4}-\d{2}-\d{2})(?:/|$)", 1).str.to_date(strict=False)
            .cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))


def category_levels(path: pl.Expr) -> list[pl.Expr]:
    parts = path.str.split(">")
    return [_tidy(parts.list.get(i, null_on_oob=True)).alias(f"category_l{i + 1}") for i in range(3)]


@dataclass
class CatalogResolution:
    history: pl.DataFrame  # conform_table("product_history")
    current: pl.DataFrame  # the current version of every product (+ description, for the encoder)
    mapping: pl.DataFrame  # conform_table("product_keys")
    #: product versions landed more than once with different values, per attribute
    conflicts: dict[str, int] = field(default_factory=dict)
    #: versions that changed nothing tracked and were folded into the previous one
    folded_versions: int = 0
    spellings_canonicalised: dict[str, int] = field(default_factory=dict)


def resolve_catalog(products: pl.DataFrame, id_map: pl.DataFrame | None = None) -> CatalogResolution:
    """All rows of ``clean.products`` (every version, every source) → history, current, mapping."""
    p = products.filter(pl.col("product_id").is_not_null())
    before = {c: p.select(pl.col(c).n_unique()).item() for c in ("brand", "category_path")}
    # canonical spellings across all versions and sources
    p = p.with_columns(pl.col("category_path").str.replace_all(r"\s*[>/|]\s*", _LEVEL_SEP).str.strip_chars(" >"))
    p = _canonical_spelling(p, "brand", canonical_key(pl.col("brand")))
    path_key = pl.col("category_path").str.split(">").list.eval(canonical_key(pl.element())).list.join(">")
    p = _canonical_spelling(p, "category_path", path_key)
    spellings = {c: before[c] - p.select(pl.col(c).n_unique()).item() for c in before}
    p = p.with_columns(
        pl.coalesce(pl.col("updated_at"), landing_day(pl.col("_source_file")), pl.col("_ingested_at"))
        .alias("__version_time"),
        _tidy(pl.col("title")).alias("title"),
    )

    # conflicts: one version (id + version time) landed with different values; latest ingest wins
    by_version = p.group_by("product_id", "__version_time").agg(
        pl.len().alias("__rows"), *[pl.col(c).n_unique().alias(f"__n_{c}") for c in CONFLICT_ATTRIBUTES])
    multi = by_version.filter(pl.col("__rows") > 1)
    conflicts = {c: int((multi[f"__n_{c}"] > 1).sum()) for c in CONFLICT_ATTRIBUTES}
    conflicting = multi.filter(pl.any_horizontal([pl.col(f"__n_{c}") > 1 for c in CONFLICT_ATTRIBUTES]))
    p = p.join(conflicting.select("product_id", "__version_time", pl.lit(True).alias("conflicting")),
               on=["product_id", "__version_time"], how="left").with_columns(pl.col("conflicting").fill_null(False))
    mapping = product_mapping(
        p.unique(["product_id", "__version_time", "_ingested_at", "_source_file", "_row_number"]), id_map)
    p = (p.sort(["product_id", "__version_time", "_ingested_at", "_source_file", "_row_number"], nulls_last=False)
         .unique(["product_id", "__version_time"], keep="last", maintain_order=True))

    # fold versions that change nothing tracked
    changes = [(pl.col(c).ne_missing(pl.col(c).shift(1).over("product_id"))) for c in TRACKED]
    first = pl.col("product_id").cum_count().over("product_id") == 1
    p = p.with_columns(first.alias("__first"), *[ch.alias(f"__ch_{c}") for c, ch in zip(TRACKED, changes, strict=True)])
    keep = pl.col("__first") | pl.any_horizontal([pl.col(f"__ch_{c}") for c in TRACKED])
    folded = p.filter(~keep).height
    p = p.filter(keep)
    changed = pl.when(pl.col("__first")).then(pl.lit("new")).otherwise(
        pl.concat_str([pl.when(pl.col(f"__ch_{c}")).then(pl.lit("category" if c == "category_path" else c))
                       for c in TRACKED], separator=",", ignore_nulls=True))
    history = p.with_columns(
        pl.col("__version_time").alias("valid_from"),
        pl.col("__version_time").shift(-1).over("product_id").alias("valid_to"),
        pl.col("product_id").cum_count().over("product_id").cast(pl.Int64).alias("version"),
        changed.alias("changed"),
        source_system(pl.col("product_id")).alias("source_system"),
        *category_levels(pl.col("category_path")),
    ).with_columns(pl.col("valid_to").is_null().alias("is_current"))
    current = history.filter(pl.col("is_current"))
    history = conform_table("product_history", history).sort("product_id", "valid_from")
    return CatalogResolution(history=history, current=current.sort("product_id"), mapping=mapping,
                             conflicts=conflicts, folded_versions=folded, spellings_canonicalised=spellings)


def current_products(history: pl.DataFrame) -> pl.DataFrame:
    """Current version and version count of every product, from a product_history table."""
    counts = history.group_by("product_id").agg(pl.len().cast(pl.Int64).alias("versions"))
    return (history.filter(pl.col("is_current")).join(counts, on="product_id")
            .rename({"valid_from": "price_valid_from"}).sort("product_id"))


def price_at(frame: pl.DataFrame, history: pl.DataFrame, *, product: str = "product_id",
             time: str = "event_time") -> pl.DataFrame:
    """Add ``catalog_price``, ``catalog_valid_from`` and ``catalog_version_assumed`` to ``frame``.

    The version valid at ``time`` (valid_from <= time < valid_to); before a product's first
    version, the first version with ``catalog_version_assumed`` = true.
    """
    h = history.select(pl.col("product_id").alias(product), pl.col("valid_from").alias("catalog_valid_from"),
                       pl.col("price").alias("catalog_price")).sort("catalog_valid_from")
    first = (h.sort(product, "catalog_valid_from").unique(product, keep="first")
             .rename({"catalog_price": "__first_price", "catalog_valid_from": "__first_from"}))
    out = (frame.with_row_index("__order").sort(time)
           .join_asof(h, left_on=time, right_on="catalog_valid_from", by=product, strategy="backward",
                      check_sortedness=False)
           .join(first, on=product, how="left")
           .with_columns((pl.col("catalog_price").is_null() & pl.col("__first_price").is_not_null())
                         .alias("catalog_version_assumed"))
           .with_columns(pl.coalesce("catalog_price", "__first_price").alias("catalog_price"),
                         pl.coalesce("catalog_valid_from", "__first_from").alias("catalog_valid_from"))
           .sort("__order").drop("__order", "__first_price", "__first_from"))
    return out


__all__ = ["CatalogResolution", "TS", "canonical_key", "category_levels", "current_products", "landing_day",
           "price_at", "resolve_catalog"]
