"""The engine's hashed lookups stay exact: `positions` confirms every hash match by the string itself
(a 64-bit collision leaves the value unmatched), `repeats` marks exactly the values seen more than
once, as `is_duplicated` would among the non-null values."""

from __future__ import annotations

import polars as pl

from governance.cleaning.blocks import positions, repeats


def test_positions_find_each_value_and_leave_absent_ones_null():
    keys = pl.Series(["p1", "p2", "p3"])
    values = pl.Series("item_id", ["p3", "p9", None, "p1", "p3", "p2"])
    found = positions(values, keys)
    assert found.to_list() == [2, None, None, 0, 2, 1]
    assert found.name == "item_id" and found.dtype == pl.UInt32
    # the same as the plain string lookup it replaces
    expected = values.replace_strict(keys, pl.int_range(3, dtype=pl.UInt32, eager=True), default=None,
                                     return_dtype=pl.UInt32)
    assert found.equals(expected)


def test_a_hash_collision_never_maps_a_value_to_another_key():
    keys = pl.Series(["p1", "p2"])
    values = pl.Series(["p1", "fabricated", "p2"])
    # "fabricated" collides with p2's hash: the lookup by hash finds p2, the string comparison rejects it
    colliding = pl.Series([keys.hash()[0], keys.hash()[1], keys.hash()[1]])
    assert positions(values, keys, colliding).to_list() == [0, None, 1]


def test_repeats_marks_exactly_the_repeated_non_null_values():
    values = pl.Series([5, 1, None, 5, 7, None, 1, 1, 9], dtype=pl.UInt64)
    marked = repeats(values)
    assert marked.to_list() == [True, True, False, True, False, False, True, True, False]
    hashed = pl.Series([f"e{i % 1000}" if i % 7 else f"u{i}" for i in range(20_000)]).hash()
    assert repeats(hashed).equals(hashed.is_duplicated())
    assert not repeats(pl.Series([], dtype=pl.UInt64)).any()


def test_per_value_fixes_change_exactly_the_rows_the_expression_changes():
    from datetime import UTC, datetime

    from governance.cleaning import blocks as b
    from governance.cleaning.engine import Context, Rule, apply_rules
    from governance.cleaning.rules import EVENT_TYPE_SYNONYMS

    spellings = ["View", " pv", None, "view", "cart", "Buy ", "view", "odd", "click"]
    frame = pl.DataFrame({"event_type": spellings * 50, "device": ["web", " iOS", "web", None, "web", "Android ",
                                                                  "web", "web", "ios"] * 50}).with_columns(
        _source_file=pl.lit("f.csv"), _row_number=pl.int_range(pl.len(), dtype=pl.Int64), _partition=pl.lit("d"))
    fixes = {"event_type": pl.col("event_type").str.strip_chars().str.to_lowercase().replace(EVENT_TYPE_SYNONYMS),
             "device": pl.col("device").str.strip_chars().str.to_lowercase()}
    rule = Rule("normalise", "fix", "", ("event_type", "device"), b.fixes_per_value(**fixes))
    result = apply_rules(frame, (rule,), Context("events", "d", "r", datetime(2026, 1, 1, tzinfo=UTC)),
                         key=("_row_number",), record_columns=list(frame.columns))
    expected = frame.with_columns(**fixes)
    assert result.clean.select("event_type", "device").equals(expected.select("event_type", "device"))
    changed = sum(frame[c].ne_missing(expected[c]).sum() for c in fixes)
    assert result.audit.height == changed == 300
