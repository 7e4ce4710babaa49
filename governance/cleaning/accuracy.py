"""How well collection + cleaning find the faults the shop generator injected (its ground truth).

A landed row is identified by (source, file, row_number) — the lineage every stage keeps. A fault
counts as found when its row was removed (quarantined at collection or cleaning, for any reason),
or fixed by a rule that handles that kind of fault (audit), or flagged by the matching flag.
The other direction: of all rows removed or fixed, how many carried no injected fault at all
(fixes that only changed whitespace are cosmetic and not counted as acting on a row).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from governance.storage import Lake

SOURCES = ("events", "products", "users", "reviews", "queries")
#: faults that later stages own: integration (catalog consistency) and labelling (the audit queue)
LATER_STAGES = {
    "miscategorised_product": "integration",
    "reworded_duplicate_product": "integration",
    "rating_text_contradiction": "labelling",
}
#: fault kind → audit rules that fix it (a removed row counts for every kind)
FIXED_BY = {
    "number_as_string": {"number_normalised"},
    "foreign_currency": {"currency_to_usd"},
    "non_canonical_brand": {"canonical_brand", "tidy_text"},
    "non_canonical_category": {"canonical_category", "normalise_category_path"},
    "pii_in_text": {"mask_pii"},
    "future_timestamp": {"updated_at_out_of_range", "signup_out_of_range"},
    "epoch_zero_timestamp": {"updated_at_out_of_range", "signup_out_of_range"},
    "negative_price": {"price_not_positive"},
    "absurd_price": {"price_outlier"},
    "null_optional": {"impute_price", "impute_quantity"},
    "unparsable_value": {"impute_price", "impute_quantity"},
    # collection reads an undecodable byte in free text as cp1252 and audits it with the original bytes
    "broken_utf8": {"undecodable_bytes_fixed"},
}
#: fault kind → flag columns of the clean table that mark it
FLAGGED_BY = {
    "broken_utf8": ("text_damaged",),
    "unknown_user": ("user_unknown",),
    "null_optional": ("brand_missing", "country_missing", "text_missing"),
}


def _parts(lake: Lake, layer: str, source: str, parts: tuple[str, ...]) -> pl.LazyFrame | None:
    frames = []
    for part in parts:
        try:
            frames.append(lake.scan(layer, source, part=part))
        except FileNotFoundError:
            continue
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def cosmetic(original: pl.Expr, fixed: pl.Expr) -> pl.Expr:
    """A fix that changed nothing but whitespace: not counted as acting on a row."""
    squash = lambda e: e.str.replace_all(r"\s+", "")  # noqa: E731
    return original.is_not_null() & fixed.is_not_null() & (squash(original) == squash(fixed))


def acted_rows(lake: Lake) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(removed rows, fixed rows with their rule, clean rows with flags) across every source."""
    removed, fixed, flagged = [], [], []
    for source in SOURCES:
        q = _parts(lake, "quarantine", source, ("collection", "cleaning"))
        if q is not None:
            removed.append(q.filter(pl.col("row_number").is_not_null())
                           .select(pl.lit(source).alias("source"), "file", "row_number").collect())
        a = _parts(lake, "audit", source, ("collection", "cleaning"))
        if a is not None:
            fixed.append(a.select(pl.lit(source).alias("source"), "file", "row_number", "rule",
                                  cosmetic(pl.col("original"), pl.col("fixed")).alias("cosmetic")).collect())
        try:
            clean = lake.scan("clean", source)
        except FileNotFoundError:
            continue
        flags = [f for cols in FLAGGED_BY.values() for f in cols if f in clean.collect_schema().names()]
        flagged.append(clean.select(
            pl.lit(source).alias("source"), pl.col("_source_file").alias("file"), pl.col("_row_number").alias("row_number"),
            pl.concat_list([pl.when(pl.col(f)).then(pl.lit(f)) for f in flags]).list.drop_nulls().alias("flags")
            if flags else pl.lit([], dtype=pl.List(pl.String)).alias("flags"),
        ).collect())
    return (pl.concat(removed).unique() if removed else pl.DataFrame(),
            pl.concat(fixed) if fixed else pl.DataFrame(),
            pl.concat(flagged) if flagged else pl.DataFrame())


def fault_detection(lake: Lake, truth_dir: Path) -> tuple[pl.DataFrame, dict]:
    """Per (source, fault): injected, found, recall; and the share of acted-on rows that were clean."""
    truth = pl.read_parquet(truth_dir / "faults.parquet")
    removed, fixed, flagged = acted_rows(lake)
    ident = ["source", "file", "row_number"]
    removed_set = removed.with_columns(removed=pl.lit(True))
    fixed_by = fixed.group_by(ident).agg(pl.col("rule").unique().alias("fix_rules"))
    flags = flagged.filter(pl.col("flags").list.len() > 0)
    in_clean = flagged.select(ident).with_columns(in_clean=pl.lit(True))

    scored = (
        truth.filter(~pl.col("fault").is_in(list(LATER_STAGES)) & (pl.col("fault") != "schema_drift"))
        .join(removed_set, on=ident, how="left")
        .join(fixed_by, on=ident, how="left")
        .join(flags, on=ident, how="left")
        .join(in_clean, on=ident, how="left")
    )
    expected_fix = pl.col("fault").replace_strict({k: list(v) for k, v in FIXED_BY.items()}, default=[],
                                                  return_dtype=pl.List(pl.String))
    expected_flag = pl.col("fault").replace_strict({k: list(v) for k, v in FLAGGED_BY.items()}, default=[],
                                                   return_dtype=pl.List(pl.String))
    found = (
        pl.col("removed").fill_null(False)
        | (pl.col("fix_rules").fill_null([]).list.set_intersection(expected_fix).list.len() > 0)
        | (pl.col("flags").fill_null([]).list.set_intersection(expected_flag).list.len() > 0)
        # an optional value left null is handled by the column's stated policy (kept as null); an empty
        # string where a number belongs is such a missing value too
        | ((pl.col("fault") == "null_optional") & pl.col("in_clean").fill_null(False))
        | ((pl.col("fault") == "unparsable_value") & pl.col("detail").str.starts_with("''")
           & pl.col("in_clean").fill_null(False))
    )
    table = (
        scored.with_columns(found=found)
        .group_by("source", "fault")
        .agg(injected=pl.len(), found=pl.col("found").sum())
        .with_columns(recall=pl.col("found") / pl.col("injected"))
    )
    drift = truth.filter(pl.col("fault") == "schema_drift")
    if drift.height:
        drift_files = drift["file"].unique().to_list()
        raw = lake.scan("raw", "events").filter(pl.col("_source_file").is_in(drift_files)).select(
            pl.col("_extra_columns").is_not_null().any()).collect().item()
        table = pl.concat([table, pl.DataFrame({"source": ["events"], "fault": ["schema_drift"], "injected": [drift.height],
                                                "found": [drift.height if raw else 0],
                                                "recall": [1.0 if raw else 0.0]},
                                               schema=table.schema)])
    acted = pl.concat([removed.select(ident), fixed.filter(~pl.col("cosmetic")).select(ident)]).unique()
    faulty = truth.select(ident).unique()
    clean_acted = acted.join(faulty, on=ident, how="anti")
    summary = {
        "rows_acted_on": acted.height,
        "clean_rows_acted_on": clean_acted.height,
        "false_share": clean_acted.height / acted.height if acted.height else 0.0,
        "later_stage_faults": truth.filter(pl.col("fault").is_in(list(LATER_STAGES))).group_by("fault").len()
        .to_dicts(),
        "clean_examples": clean_acted.head(10).to_dicts(),
    }
    return table.sort("source", "fault"), summary
