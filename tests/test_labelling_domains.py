"""Multi-domain review sets, label-shift correction, card figures and the labelling commands' errors."""

import numpy as np
import polars as pl
import pytest

from governance.labelling.label_shift import em_priors, implied_prior, prior_correct, star_prior


def test_prior_correction_moves_posteriors_to_the_target_prior():
    p = np.array([[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    same = prior_correct(p, [1 / 3] * 3, [1 / 3] * 3)
    assert np.allclose(same, p)
    shifted = prior_correct(p, [1 / 3] * 3, [0.05, 0.05, 0.9])
    assert np.allclose(shifted.sum(1), 1) and (shifted[:, 2] > p[:, 2]).all()


def test_em_recovers_a_shifted_prior():
    rng = np.random.default_rng(0)
    # exact Bayes posteriors under a balanced source prior (classes N(-2,1), N(0,1), N(2,1)); target 80 % class 2
    n = 4000
    y = rng.choice(3, n, p=[0.1, 0.1, 0.8])
    x = rng.normal(np.array([-2.0, 0.0, 2.0])[y], 1.0)
    logits = -0.5 * (x[:, None] - np.array([-2.0, 0.0, 2.0])[None, :]) ** 2
    p_src = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    est, corrected = em_priors(p_src, [1 / 3] * 3)
    assert est[2] > 0.7 and est[0] < 0.2
    assert (corrected.argmax(1) == y).mean() > (p_src.argmax(1) == y).mean()


def test_star_and_implied_priors():
    assert np.allclose(star_prior([1, 2, 3, 4, 5, 5]), np.array([3, 2, 4]) / 9)
    assert np.allclose(implied_prior(np.array([[1.0, 0, 0], [0, 0, 1.0]])).round(3), [0.5, 0, 0.5])


def test_review_sets_load_every_domain_with_titles_where_the_source_has_them(shared_data):
    from governance.labelling.review_sets import domain_sample, domain_split, load_review_sets
    df = load_review_sets(shared_data)
    counts = dict(df.group_by("domain").len().iter_rows())
    assert set(counts) >= {"clothing", "food", "instruments", "headphones"}
    assert df["rating"].is_between(1, 5).all() and (df["text"].str.len_chars() > 0).all()
    assert not df["text"].str.contains("READ MORE$").any() and not df["text"].str.contains("<br").any()
    with_title = dict(df.group_by("domain").agg(pl.col("title").is_not_null().mean()).iter_rows())
    assert with_title["food"] > 0.9 and with_title["headphones"] == 0
    train, test = domain_split(df)
    assert train.join(test, on=["domain", "text"], how="semi").height == 0
    s = domain_sample(train, 500)
    per = dict(s.group_by("domain").len().iter_rows())
    assert all(v <= 500 for v in per.values())
    assert s.filter(pl.col("rating") <= 2).height >= 4 * 40  # rare negatives kept in every domain


def test_card_figures_are_svg_pictures(tmp_path):
    from governance.labelling.figures import markdown_image, write_card_figures
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    paths = write_card_figures(tmp_path, [1, 5, 3], proba)
    svg = open(paths["confusion"]).read()
    assert svg.startswith("<svg") and "predicted" in svg and ">1<" in svg
    assert "<rect" in open(paths["reliability"]).read()
    assert markdown_image(paths["confusion"]).startswith("![](data:image/svg+xml;base64,")


@pytest.mark.parametrize("content, expected", [
    (b"", r"is empty \(0 bytes\)"),
    (b"text,rating\n", "has a header but no rows"),
])
def test_unreadable_inputs_are_one_line_errors(tmp_path, content, expected):
    from governance.labelling.workflows import _read_table
    f = tmp_path / "in.csv"
    f.write_bytes(content)
    with pytest.raises(ValueError, match=expected):
        _read_table(f)


def test_title_column_resolution(tmp_path):
    from governance.labelling.workflows import resolve_title_column
    df = pl.DataFrame({"Summary": ["ok"], "text": ["fine"]})
    assert resolve_title_column(df, "auto", "f") == "Summary"
    assert resolve_title_column(df, "auto", "f", model_input={"title_used": False}) is None
    assert resolve_title_column(df, "none", "f") is None
    with pytest.raises(ValueError, match="no title column 'Title'"):
        resolve_title_column(df, "Title", "f")


def test_commands_explain_every_option_and_fail_in_one_line(tmp_path, capsys):
    from governance.cli import main
    for cmd in ("label-reviews", "label-queries", "train-sentiment"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = capsys.readouterr().out
        for opt in [o for o in out.split() if o.startswith("--") and o != "--help"]:
            assert opt.strip(",") in out
        assert out.count("default") >= 3, cmd
    assert "demo" in out and "full" in out and "fine-tuned" in out
    (tmp_path / "q.csv").write_text("query_text\nwhere is my order\n")
    rc = main(["--data", str(tmp_path / "data"), "label-queries", str(tmp_path / "q.csv"), str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--categories" in err
    (tmp_path / "r.csv").write_text("text,rating\nnice,5\n")
    rc = main(["--data", str(tmp_path / "data"), "label-reviews", str(tmp_path / "r.csv"), str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "governance train-sentiment" in err and str(tmp_path / "data" / "models") in err


def test_print_progress_writes_lines(capsys):
    import io

    from governance.labelling.cli import PrintProgress
    buf = io.StringIO()
    p = PrintProgress("embed", every=0.0, stream=buf)
    p(10, 100)
    p(100, 100)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("embed: 10/100 (10%)") and "left" in lines[0] and lines[1].startswith("embed: 100/100")


def test_top_categories_are_written_to_csv_as_json(tmp_path):
    import json

    from governance.labelling.workflows import _write_table
    df = pl.DataFrame({"q": ["a"], "top_categories": [[{"category": "Women > Dresses", "score": 0.75}]]},
                      schema_overrides={"top_categories": pl.List(pl.Struct({"category": pl.String,
                                                                              "score": pl.Float64}))})
    _write_table(df, tmp_path / "o.csv")
    back = pl.read_csv(tmp_path / "o.csv")
    assert json.loads(back["top_categories"][0]) == [{"category": "Women > Dresses", "score": 0.75}]


def test_a_file_that_is_also_a_shared_set_never_crosses_its_split():
    """When the shop's file is (or overlaps) one of the shared review sets, its held-out reviews are never
    trained on through the other shops, and what it trains on never scores a domain."""
    from governance.labelling.text import compose_review_text
    from governance.labelling.workflows import other_shop_parts

    reviews = [{"domain": "same", "title": None, "text": f"review number {i} of the shop", "rating": 1 + i % 5}
               for i in range(400)]
    reviews += [{"domain": "other", "title": "T", "text": f"another shop's review {i}", "rating": 1 + i % 5}
                for i in range(400)]
    shared = pl.DataFrame(reviews, schema={"domain": pl.String, "title": pl.String, "text": pl.String,
                                           "rating": pl.Int64})
    # this file still has the markup and spacing the shared copy lost
    own = [compose_review_text(None, r["text"].replace("number", "number&nbsp;<br/>").upper())
           for r in reviews[:400]]
    train, held_out = own[:300], own[300:]
    sample, tests = other_shop_parts(shared, train, held_out, per_domain=1000, test_per_domain=1000)

    def same(a: str) -> str:
        return "".join(ch for ch in a.lower().replace("&nbsp;", "").replace("<br/>", "") if ch.isalnum())

    assert not {same(t) for t in sample["composed"]} & {same(t) for t in held_out}
    assert not {same(t) for texts, _ in tests.values() for t in texts} & {same(t) for t in train}
    # nothing else is lost: the other domain and this file's own training rows stay in the sample
    assert sample.filter(pl.col("domain") == "other").height > 0
    assert {same(t) for t in train} & {same(t) for t in sample["composed"]}
