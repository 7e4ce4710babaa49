"""Cleaning: raw rows → clean rows + quarantine (with reasons) + audit of fixes, by declared rules.

`clean_frame` is the pure function (a raw frame and its references in, a `CleaningResult` out);
`clean_partition` reads the raw partition and the reference tables from the lake and writes the
clean table, the cleaning part of the quarantine and the audit.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from governance.cleaning.engine import CleaningResult, Context, RuleError, apply_rules
from governance.cleaning.keyindex import DEFAULT_LOOKBACK_DAYS, earlier_index, earlier_raw
from governance.cleaning.rules import RULES
from governance.cleaning.schema import clean_schema
from governance.contracts import CONTRACTS, LINEAGE_COLUMNS
from governance.quarantine import conform
from governance.storage import Lake

__all__ = ["CleaningResult", "RuleError", "clean_frame", "clean_partition", "clean_with_settings", "partition_references",
           "product_id_map", "publish", "RULES"]

#: clean tables each source's rules look up (the `*_ids` references are derived from them)
REFERENCES = {
    "events": ("products", "users", "product_id_map"),
    "reviews": ("products", "users", "product_id_map"),
    "queries": ("users",),
    "products": (),
    "users": (),
}
#: an id counts as known when any landed row carried it, clean or quarantined: a product whose row
#: was quarantined for a missing title still exists, so its events are not orphans
ID_REFERENCES = {"products": ("product_ids", "product_id"), "users": ("user_ids", "user_id")}


def _finish(source: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Derived columns of the clean table, then the exact clean schema."""
    if source == "events":
        frame = frame.with_columns(is_anonymous=pl.col("user_id").is_null())
    elif source == "products":
        levels = pl.col("category_path").str.split(" > ")
        frame = frame.with_columns(
            category_l1=levels.list.get(0, null_on_oob=True),
            category_l2=levels.list.get(1, null_on_oob=True),
            category_l3=levels.list.get(2, null_on_oob=True),
            brand_missing=pl.col("brand").is_null(),
        )
    if source in ("products", "users"):
        # the latest version of each id: by updated_at, then the later landed file, then row order
        id_col = CONTRACTS[source].key[0]
        frame = frame.with_columns(
            is_current=pl.int_range(pl.len()).over(
                id_col, order_by=[pl.col("updated_at").dt.epoch("us").fill_null(-(2**62)), pl.col("_source_file"),
                                  pl.col("_row_number")], descending=True) == 0)
    if source == "reviews":
        frame = frame.with_columns(text_missing=pl.col("text").is_null())
    schema = clean_schema(source)
    flags = [name for name, dtype in schema.items() if dtype == pl.Boolean]
    return conform(frame, schema).with_columns(pl.col(flags).fill_null(False))


def clean_frame(source: str, raw: pl.DataFrame, ctx: Context) -> CleaningResult:
    """Apply the source's rules to a raw frame (already typed by the collection stage)."""
    contract = CONTRACTS[source]
    record_columns = [*contract.column_names, *LINEAGE_COLUMNS]
    # handed over without a reference left here, so the engine can free raw columns as it replaces
    # them (a caller that keeps its own reference keeps the memory too)
    handed_over = [raw]
    del raw
    result = apply_rules(handed_over.pop(), RULES[source], ctx, key=contract.key, record_columns=record_columns)
    result.clean = _finish(source, result.clean)
    return result


def product_id_map(result: CleaningResult) -> pl.DataFrame:
    """duplicate product id → kept product id, from the products' near-duplicate quarantine rows."""
    dupes = result.quarantine.filter(pl.col("rule") == "near_duplicate_product")
    return dupes.select(
        duplicate_id=pl.col("key"),
        canonical_id=pl.col("reason").str.extract(r"^same product as (\S+): "),
    ).unique("duplicate_id").sort("duplicate_id")


def load_references(lake: Lake, source: str) -> dict[str, pl.DataFrame]:
    refs: dict[str, pl.DataFrame] = {}
    for name in REFERENCES[source]:
        if not lake.exists("clean", name):
            raise FileNotFoundError(f"cleaning {source} needs clean.{name}; materialize clean/{name} first")
        frame = lake.read("clean", name)
        if "is_current" in frame.columns:
            frame = frame.filter(pl.col("is_current"))
        refs[name] = frame
        if name in ID_REFERENCES:
            ref_name, id_col = ID_REFERENCES[name]
            quarantined = [lake.read("quarantine", name, None, part=part).select(pl.col("key").alias(id_col))
                           for part in ("collection", "cleaning") if lake.exists("quarantine", name, None, part=part)]
            refs[ref_name] = pl.concat([frame.select(id_col), *quarantined]).drop_nulls().unique()
    return refs


def earlier_partitions(lake: Lake, source: str, partition: str | None) -> pl.DataFrame | None:
    """Clean rows of the partitions before this one (for duplicates that land on a later day)."""
    earlier = [p for p in lake.partitions("clean", source) if partition is not None and p < partition]
    if not earlier:
        return None
    return lake.scan("clean", source, earlier).collect()


def clean_partition(lake: Lake, source: str, partition: str | None, *, run_id: str, now: datetime,
                    lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> CleaningResult:
    """Clean one partition of a source in the lake; re-running replaces its outputs.

    Duplicates are also looked for in the raw partitions of the ``lookback_days`` before this one
    (through their key indexes); everything a rule compares with comes from raw partitions and
    snapshots, never from other days' clean tables, so days cleaned in any order give the same tables."""
    refs = partition_references(lake, source, partition, lookback_days)
    ctx = Context(source=source, partition=partition, run_id=run_id, now=now, references=refs)
    result = clean_frame(source, lake.read("raw", source, partition), ctx)
    publish(lake, source, partition, result)
    return result


def partition_references(lake: Lake, source: str, partition: str | None, lookback_days: int,
                         shared: dict[str, pl.DataFrame] | None = None) -> dict[str, pl.DataFrame]:
    """Everything the rules of one partition compare with: the reference tables (``shared``, when the
    caller loaded them once for many partitions, else `load_references`) and the look-back window's
    key index (and raw reviews) before ``partition``."""
    refs = dict(shared) if shared is not None else load_references(lake, source)
    earlier_keys = earlier_index(lake, source, partition, lookback_days)
    if earlier_keys is not None:
        refs["earlier_keys"] = earlier_keys
    if source == "reviews":
        earlier = earlier_raw(lake, source, partition, lookback_days)
        if earlier is not None:
            refs["earlier_reviews"] = earlier
    return refs


def clean_with_settings(settings, source: str, partition: str | None, *, run_id: str, now: datetime
                        ) -> CleaningResult:
    """`clean_partition` on the engine the settings name (``engine``: polars here, spark on the
    session at ``spark_master``; see governance/cleaning/spark.py), with their look-back window."""
    lake = settings.lake()
    if settings.engine == "spark":
        from governance.cleaning.spark import clean_partition_on_spark
        from governance.spark import settings_session

        return clean_partition_on_spark(settings_session(settings), lake, source, partition, run_id=run_id, now=now,
                                        lookback_days=settings.duplicate_lookback_days)
    return clean_partition(lake, source, partition, run_id=run_id, now=now,
                           lookback_days=settings.duplicate_lookback_days)


def publish(lake: Lake, source: str, partition: str | None, result: CleaningResult) -> None:
    """Write a partition's cleaning outputs to the lake as one transaction (whichever engine cleaned it)."""
    with lake.transaction():  # clean rows, quarantine and audit of the partition are published together
        lake.write("clean", source, result.clean, partition)
        lake.write("quarantine", source, result.quarantine, partition, part="cleaning")
        lake.write("audit", source, result.audit, partition, part="cleaning")
        if source == "products":
            lake.write("clean", "product_id_map", product_id_map(result))
