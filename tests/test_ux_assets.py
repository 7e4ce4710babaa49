"""What the Dagster UI shows on the analysts' asset pages: column descriptions and descriptions whose paths survive
the UI's Markdown. Fast: no asset is materialized."""

from __future__ import annotations

import re

import polars as pl

from assets.metadata import contract_descriptions, table_schema


def test_the_columns_table_describes_contract_and_lineage_columns():
    frame = pl.DataFrame({"user_id": ["u1"], "email": ["a@b.c"], "country": ["DE"], "_source_file": ["f.csv"],
                          "unknown": [1]})
    columns = {c.name: c for c in table_schema(frame, contract_descriptions("users")).columns}
    assert "personal data" in columns["email"].description and columns["country"].description
    assert columns["_source_file"].description.startswith("lineage:")
    assert not columns["unknown"].description and columns["user_id"].type == "String"
    assert all(c.description is None for c in table_schema(frame).columns)  # no descriptions given: none shown


def test_no_asset_description_has_a_bare_angle_bracket_placeholder():
    """The UI renders descriptions as Markdown: a bare `<version>` is taken for an HTML tag and vanishes
    ("data/models/sentiment//"); in a code span it is shown."""
    import dagster as dg

    from assets.definitions import build_definitions

    defs = build_definitions()
    bare = []
    for node in defs.resolve_asset_graph().asset_nodes:
        text = re.sub(r"`[^`]*`", "", node.description or "")
        bare += [f"{node.key.to_user_string()}: {m}" for m in re.findall(r"<[a-z_]+>", text)]
    assert isinstance(defs, dg.Definitions) and not bare, bare


def test_label_column_descriptions_survive_the_uis_markdown():
    from assets.labelling import LABEL_COLUMNS

    assert not [c for c, text in LABEL_COLUMNS.items() if re.search(r"<[a-z_]+>", text)]
    assert {"sentiment", "unlabelable_reason", "intent", "category_confident"} <= set(LABEL_COLUMNS)


def test_the_launchpad_explains_every_training_setting():
    from assets.labelling import SentimentTraining

    field = SentimentTraining.to_config_schema().as_field().config_type.fields["setting"]
    assert all(name in field.description for name in ("demo", "full", "upper")) and SentimentTraining().setting == "demo"
