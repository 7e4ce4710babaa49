"""governance.tables: the one Markdown table helper (frames, dict rows, counts)."""

import polars as pl

from governance.tables import cell, counts_markdown, markdown_table


def test_frame_rows_are_limited_escaped_and_shortened():
    frame = pl.DataFrame({"id": [1, 2, 3], "text": ["a|b", "line\nbreak", "x" * 50]})
    out = markdown_table(frame, limit=3, columns=["text", "id"]).splitlines()
    assert out[:2] == ["| text | id |", "|---|---|"]
    assert out[2] == "| a\\|b | 1 |" and out[3] == "| line break | 2 |"
    assert out[4] == "| " + "x" * 39 + "… | 3 |"
    assert len(markdown_table(frame, limit=1).splitlines()) == 3
    assert markdown_table(frame.head(0)) == "_no rows_"


def test_dict_rows_take_every_key_in_order_of_appearance():
    rows = [{"a": 1, "b": {"k": [1, 2]}}, {"c": None, "a": 2}]
    assert markdown_table(rows).splitlines() == [
        "| a | b | c |", "|---|---|---|", '| 1 | {"k": [1, 2]} |  |', "| 2 |  |  |"]
    assert markdown_table([], empty="_no failing rows_") == "_no failing rows_"


def test_counts_right_aligned_with_separators():
    assert counts_markdown({"unknown_user": 12345, "share": 0.5, "note": "text"}, "rule", "rows").splitlines() == [
        "| rule | rows |", "|---|---:|", "| unknown_user | 12,345 |", "| share | 0.5 |", "| note | text |"]
    assert counts_markdown({}) == "_none_"
    assert cell(True) == "True" and cell(None) == ""
