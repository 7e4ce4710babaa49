"""Failures grouped by root cause: one quarantined reference row and every row it orphaned, as one finding.

A row that references a product or user the stage cannot find is quarantined by every stage that
checks the reference (cleaning's ``unknown_item`` / ``unknown_user``, integration's
``unknown_product`` / ``unknown_user``, reviews' ``unknown_product`` …). Most of them share a cause
upstream: the catalog (or user) row they point to was itself quarantined — an unparsable price, a
missing title — so it never reached the clean table. :func:`root_causes` reads the quarantine of
the lake, takes the referenced key out of each orphan's kept record, and joins it to the quarantined
row of the referenced table (its stage, rule and reason): one line per quarantined reference row
with every row it orphaned, by table, stage and rule, and the days they fell on. Orphans whose key
was never in the referenced table's landed data (nor its quarantine) are grouped per referenced
table as one line ("never landed"), with how many distinct keys they name; orphans whose kept record
has no key at all are one line too ("no key in record").

Everything is Polars over the lake's Parquet (no row loops); reasons pass the privacy mask.
"""

from __future__ import annotations

import polars as pl

from governance.privacy import mask_text, pii_values
from governance.storage import Lake

#: orphan rule → the referenced table and the record fields holding its key (first non-null wins)
ORPHAN_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "unknown_product": ("products", ("item_id", "product_id")),
    "unknown_item": ("products", ("item_id", "product_id")),
    "unknown_user": ("users", ("user_id",)),
}
#: tables whose rows reference products or users
REFERENCING = ("events", "reviews", "queries")
PARTS = ("collection", "cleaning", "integration")
STAGE_ORDER = {p: i for i, p in enumerate(PARTS)}

CAUSES_SCHEMA: dict[str, pl.DataType] = {
    "referenced_table": pl.String(),
    "key": pl.String(),  # the quarantined reference row's key; null for "never landed"
    "cause": pl.String(),  # "quarantined" | "never landed" | "in clean now" | "no key in record"
    "root_stage": pl.String(),
    "root_rule": pl.String(),
    "root_reason": pl.String(),
    "orphaned_rows": pl.Int64(),
    "distinct_keys": pl.Int64(),
    "affected": pl.String(),  # "events · integration · unknown_user: 391; …"
    "days": pl.Int64(),
    "first_partition": pl.String(),
    "last_partition": pl.String(),
    "share": pl.Float64(),  # of every orphaned row
}


def _scan_parts(lake: Lake, table: str, columns: list[str]) -> pl.LazyFrame | None:
    frames = []
    for part in PARTS:
        try:
            lf = lake.scan("quarantine", table, part=part)
        except FileNotFoundError:
            continue
        frames.append(lf.select(*columns).with_columns(pl.lit(part).alias("stage")))
    return pl.concat(frames, how="vertical_relaxed") if frames else None


def orphan_rows(lake: Lake) -> pl.DataFrame:
    """Every quarantined row rejected for an unknown reference: source, stage, rule, partition,
    referenced_table, ref_key."""
    frames = []
    for source in REFERENCING:
        lf = _scan_parts(lake, source, ["rule", "record", "partition"])
        if lf is None:
            continue
        for rule, (ref, fields) in ORPHAN_RULES.items():
            key = pl.coalesce([pl.col("record").str.json_path_match(f"$.{f}") for f in fields])
            frames.append(lf.filter(pl.col("rule") == rule).select(
                pl.lit(source).alias("source"), "stage", "rule", pl.col("partition").cast(pl.String),
                pl.lit(ref).alias("referenced_table"), key.alias("ref_key")))
    schema = {"source": pl.String, "stage": pl.String, "rule": pl.String, "partition": pl.String,
              "referenced_table": pl.String, "ref_key": pl.String}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(pl.collect_all(frames), how="vertical_relaxed")


def _quarantined_references(lake: Lake, table: str) -> pl.DataFrame:
    """key → the stage, rule and (masked) reason that kept a reference row out of its clean table."""
    lf = _scan_parts(lake, table, ["rule", "reason", "key", "record"])
    schema = {"key": pl.String, "root_stage": pl.String, "root_rule": pl.String, "root_reason": pl.String}
    if lf is None:
        return pl.DataFrame(schema=schema)
    rows = lf.filter(pl.col("key").is_not_null()).collect()
    if rows.is_empty():
        return pl.DataFrame(schema=schema)
    secrets = pii_values(rows)
    first = (rows.with_columns(pl.col("stage").replace_strict(STAGE_ORDER, default=9).alias("__order"))
             .sort("__order").group_by("key", maintain_order=True)
             .agg(pl.col("stage").first().alias("root_stage"),
                  pl.col("rule").unique(maintain_order=True).str.join(", ").alias("root_rule"),
                  pl.col("reason").first().alias("root_reason")))
    reasons = [mask_text(r, secrets) for r in first["root_reason"].to_list()]
    return first.with_columns(pl.Series("root_reason", reasons, pl.String)).select(list(schema))


def _clean_keys(lake: Lake, table: str, column: str) -> pl.Series:
    if not lake.exists("clean", table):
        return pl.Series(column, [], pl.String)
    return lake.scan("clean", table).select(pl.col(column).cast(pl.String)).unique().collect()[column]


def _affected(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Per group: '<source> · <stage> · <rule>: n' joined, largest first."""
    parts = (frame.group_by(*by, "source", "stage", "rule").len()
             .sort("len", descending=True)
             .with_columns(pl.format("{} · {} · {}: {}", "source", "stage", "rule", "len").alias("__part"))
             .group_by(*by, maintain_order=True).agg(pl.col("__part").str.join("; ").alias("affected")))
    return parts


def root_causes(lake: Lake, limit: int | None = None) -> pl.DataFrame:
    """Orphaned rows grouped by the reference row behind them (see module doc), largest first."""
    orphans = orphan_rows(lake)
    if orphans.is_empty():
        return pl.DataFrame(schema=CAUSES_SCHEMA)
    total = orphans.height
    roots = []
    for ref, column in (("products", "product_id"), ("users", "user_id")):
        quarantined = _quarantined_references(lake, ref).with_columns(pl.lit(ref).alias("referenced_table"))
        roots.append(quarantined.with_columns(pl.lit("quarantined").alias("cause")))
        clean = _clean_keys(lake, ref, column)
        roots.append(pl.DataFrame({"key": clean}).filter(~pl.col("key").is_in(quarantined["key"].implode()))
                     .with_columns(pl.lit(None, pl.String).alias("root_stage"), pl.lit(None, pl.String)
                                   .alias("root_rule"), pl.lit(None, pl.String).alias("root_reason"),
                                   pl.lit(ref).alias("referenced_table"), pl.lit("in clean now").alias("cause")))
    roots_frame = pl.concat([r.select("referenced_table", "key", "cause", "root_stage", "root_rule", "root_reason")
                             for r in roots], how="vertical_relaxed")
    joined = orphans.join(roots_frame.rename({"key": "ref_key"}), on=["referenced_table", "ref_key"], how="left")
    joined = joined.with_columns(
        pl.when(pl.col("ref_key").is_null()).then(pl.lit("no key in record"))
        .otherwise(pl.col("cause").fill_null("never landed")).alias("cause"),
        # the key names the group for explained orphans; unexplained ones are one group per referenced table
        pl.when(pl.col("cause").is_null()).then(None).otherwise(pl.col("ref_key")).alias("key"),
    )
    by = ["referenced_table", "key", "cause", "root_stage", "root_rule", "root_reason"]
    grouped = (joined.group_by(by, maintain_order=True)
               .agg(pl.len().cast(pl.Int64).alias("orphaned_rows"),
                    pl.col("ref_key").drop_nulls().n_unique().cast(pl.Int64).alias("distinct_keys"),
                    pl.col("partition").drop_nulls().n_unique().cast(pl.Int64).alias("days"),
                    pl.col("partition").min().alias("first_partition"),
                    pl.col("partition").max().alias("last_partition"))
               .join(_affected(joined, by), on=by, how="left", nulls_equal=True)
               .with_columns((pl.col("orphaned_rows") / total).alias("share"))
               .sort(["orphaned_rows", "referenced_table", "key"], descending=[True, False, False], nulls_last=True))
    out = grouped.select([pl.col(c).cast(t) for c, t in CAUSES_SCHEMA.items()])
    return out.head(limit) if limit else out


__all__ = ["CAUSES_SCHEMA", "ORPHAN_RULES", "orphan_rows", "root_causes"]
