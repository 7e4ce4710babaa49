"""The quarantine and audit record shapes shared by every stage.

A quarantined row is kept *whole* (all its values, as a JSON object in ``record``) together with
where it came from, which rule removed it and why, so "why is this row not in the clean table?"
always has an answer. An audit row records a value a rule *fixed*: the original and the new value.
"""

from __future__ import annotations

import polars as pl

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "stage": pl.String(),
    "rule": pl.String(),
    "reason": pl.String(),
    "file": pl.String(),
    "row_number": pl.Int64(),
    "key": pl.String(),
    "record": pl.String(),
    "run_id": pl.String(),
    "partition": pl.String(),
    "quarantined_at": pl.Datetime("us", "UTC"),
}

AUDIT_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "stage": pl.String(),
    "rule": pl.String(),
    "column": pl.String(),
    "original": pl.String(),
    "fixed": pl.String(),
    "file": pl.String(),
    "row_number": pl.Int64(),
    "key": pl.String(),
    "run_id": pl.String(),
    "partition": pl.String(),
    "fixed_at": pl.Datetime("us", "UTC"),
}


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def empty_audit() -> pl.DataFrame:
    return pl.DataFrame(schema=AUDIT_SCHEMA)


def record_json(columns: list[str]) -> pl.Expr:
    """All the given columns of a row as one JSON object (the row kept whole)."""
    if not columns:  # one empty object per row (a bare literal would make one row of an empty frame)
        return pl.repeat(pl.lit("{}"), pl.len())
    return pl.struct([pl.col(c) for c in columns]).struct.json_encode()


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast to a fixed schema, filling absent columns with nulls."""
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )


def counts_by_rule(quarantine: pl.DataFrame) -> dict[str, int]:
    if quarantine.is_empty():
        return {}
    counts = quarantine.group_by("rule").len().sort("len", descending=True)
    return dict(zip(counts["rule"].to_list(), counts["len"].to_list(), strict=True))
