"""The labelling commands as a new user meets them: help that explains every option and setting, and one-line
errors (no traceback, no usage block) for the files people get wrong. Fast: no model is trained or loaded."""

from __future__ import annotations

import pytest

from governance.cli import main


@pytest.fixture
def files(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("text,rating\n")
    (tmp_path / "reviews.csv").write_text("text,rating\ngreat shoes,5\nawful,1\n")
    (tmp_path / "queries.csv").write_text("query_text\nred dress\n")
    (tmp_path / "cats.txt").write_text("Women > Dresses\nMen > Shoes\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "models").mkdir()
    return tmp_path


def run(capsys, files, *argv) -> tuple[int, str]:
    try:
        rc = main(["--data", str(files / "data"), *argv, "--models-root", str(files / "models")])
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return rc, err


@pytest.mark.parametrize(("argv", "expected"), [
    (["label-reviews", "{d}/empty.csv", "{d}/o.csv"], "is empty (0 bytes)"),
    (["label-reviews", "{d}/header.csv", "{d}/o.csv"], "has a header but no rows"),
    (["label-reviews", "{d}/reviews.csv", "{d}/o.csv", "--text-column", "body"], "no text column 'body'"),
    (["label-reviews", "{d}/nothere.csv", "{d}/o.csv"], "no such file"),
    (["label-reviews", "{d}/reviews.csv", "{d}/o.csv"], "governance train-sentiment"),
    (["train-sentiment", "{d}/empty.csv"], "is empty (0 bytes)"),
    (["train-sentiment", "{d}/header.csv"], "has a header but no rows"),
    (["train-sentiment", "{d}/reviews.csv", "--text-column", "body"], "no text column 'body'"),
    (["train-sentiment", "{d}/reviews.csv", "--title-column", "headline"], "no title column 'headline'"),
    (["train-sentiment", "{d}/nothere.csv"], "no such file"),
    (["label-queries", "{d}/queries.csv", "{d}/o.csv", "--query-column", "q"], "no query column 'q'"),
    (["label-queries", "{d}/queries.csv", "{d}/o.csv"], "--categories"),
])
def test_file_mistakes_are_one_line(capsys, files, argv, expected):
    rc, err = run(capsys, files, *[a.format(d=files) for a in argv])
    assert rc == 2 and expected in err and err.startswith(f"governance {argv[0]}: ")


@pytest.mark.parametrize("argv", [
    ["label-reviews", "{d}/adir", "{d}/o.csv"],
    ["train-sentiment", "{d}/adir"],
    ["label-queries", "{d}/adir", "{d}/o.csv", "--categories", "{d}/cats.txt"],
    ["label-queries", "{d}/queries.csv", "{d}/o.csv", "--categories", "{d}/adir"],
    ["label-queries", "{d}/queries.csv", "{d}/o.csv", "--categories", "{d}/cats.txt", "--products", "{d}/adir"],
])
def test_a_directory_given_as_an_input_is_named_as_one(capsys, files, argv):
    rc, err = run(capsys, files, *[a.format(d=files) for a in argv])
    assert rc == 2 and f"{files}/adir is a directory" in err and "no such file" not in err


@pytest.mark.parametrize("argv", [
    ["label-reviews", "{d}/reviews.csv", "{d}/adir"],
    ["label-queries", "{d}/queries.csv", "{d}/adir", "--categories", "{d}/cats.txt"],
])
def test_an_output_that_cannot_be_written_is_refused_before_any_model_is_loaded(capsys, files, argv):
    rc, err = run(capsys, files, *[a.format(d=files) for a in argv])
    assert rc == 2 and "is a directory: give the file to write" in err
    rc, err = run(capsys, files, argv[0], argv[1].format(d=files), f"{files}/empty.csv/out.csv", *argv[3:])
    assert rc == 2 and "is a file, not a folder" in err


@pytest.mark.parametrize("argv", [
    ["train-sentiment", "x.csv", "--setting", "huge"],
    ["label-queries", "x.csv", "o.csv", "--top-k", "many"],
    ["label-reviews", "x.csv"],
])
def test_a_usage_mistake_is_one_line_pointing_at_help(capsys, files, argv):
    rc, err = run(capsys, files, *argv)
    assert rc == 2 and f"see `governance {argv[0]} --help`" in err and "usage:" not in err
    if "--setting" in argv:
        assert "invalid choice: 'huge'" in err and "'upper'" in err


def test_help_gives_every_default_and_explains_every_setting(capsys):
    for command in ("train-sentiment", "label-reviews", "label-queries"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        options = out.split("options:", 1)[1].split("\n  -")[2:]  # each option's entry, --help left out
        assert options and all("default" in " ".join(o.split()) for o in options), command
        description = out.split("\n\n", 1)[1].split("positional arguments:")[0]
        assert all(len(line) <= 100 for line in description.splitlines()), command
        if command == "train-sentiment":
            for setting in ("budget (default) the whole encoder", "demo   the frozen", "full   budget on all",
                            "upper  the top 2", "In every setting"):
                assert setting in out


def test_training_prints_a_summary_for_people_and_json_on_request(tmp_path):
    from governance.labelling.cli import training_summary
    from governance.labelling.workflows import TrainResult

    (tmp_path / "card.md").write_text("# card")
    result = TrainResult(version="v3", promoted=False, reason="macro-F1 0.61 does not beat the current 0.64",
                         setting="demo", metrics={"macro_f1": 0.61, "balanced_accuracy": 0.8}, validation={},
                         epoch_seconds=[], train_seconds=42.4, model_path=str(tmp_path), n_train=800, n_test=200,
                         figures={"confusion": str(tmp_path / "confusion.svg")},
                         per_domain={"this shop": {"rows": 200, "macro_f1": 0.61},
                                     "food": {"rows": 500, "macro_f1": 0.7}})
    text = training_summary(result)
    lines = text.splitlines()
    assert lines[0].startswith("not promoted: sentiment v3 (demo setting) - macro-F1 0.61 does not beat")
    assert "trained on 800 reviews in 42s; held out 200" in text and "macro_f1 0.610" in text
    assert any(line.split()[:2] == ["food", "500"] for line in lines) and "{" not in text
    assert f"model card: {tmp_path / 'card.md'}" in text and f"confusion: {tmp_path / 'confusion.svg'}" in text


def test_the_model_card_is_one_page_with_pictures_tables_time_and_the_decision(tmp_path):
    """What the models/sentiment asset shows in the Dagster UI (issue 19): no JSON, pictures inline."""
    import numpy as np

    from governance.labelling.figures import model_card_markdown, write_card_figures, write_model_card
    from governance.labelling.workflows import TrainResult

    figures = write_card_figures(tmp_path, [1, 5, 3, 5], np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7],
                                                                    [0.3, 0.4, 0.3], [0.1, 0.1, 0.8]]))
    result = TrainResult(version="v2", promoted=True, reason="promoted v2: macro_f1 0.71 beats v1's 0.64",
                         setting="demo", metrics={"macro_f1": 0.71, "ece": 0.02, "n": 4}, validation={},
                         epoch_seconds=[], train_seconds=61.24, model_path=str(tmp_path), n_train=16, n_test=4,
                         title_used=True, figures=figures,
                         per_domain={"this shop": {"n": 4, "macro_f1": 0.71}, "food": {"n": 9, "macro_f1": 0.5}})
    card = model_card_markdown(result)
    assert card.startswith("# sentiment v2: promoted") and "**Why:** promoted v2: macro_f1 0.71 beats" in card
    assert "61.2 s" in card and "| macro_f1 | 0.7100 |" in card and "| food | 9 | 0.5000 |" in card
    assert card.count("](data:image/svg+xml;base64,") == 2 and "{" not in card.split("## Confusion")[0]
    svg = open(figures["reliability"]).read()
    assert "accuracy</text>" in svg and "perfect calibration" in svg
    card_file = write_model_card(result)
    assert card_file == tmp_path / "card.md" and "![confusion (held-out split)](confusion.svg)" in card_file.read_text()


def test_label_counts_are_printed_as_words_not_a_dict():
    from governance.labelling.cli import counts_text

    assert counts_text({"negative": 1, "None": 1, "positive": 3}) == "positive 3, negative 1, no label 1"
    assert counts_text({}) == "nothing labelled"


def test_a_file_given_as_a_folder_is_refused_before_any_work(capsys, files):
    rc = main(["--data", str(files / "data"), "train-sentiment", str(files / "reviews.csv"), "--other-shops", "0",
               "--models-root", str(files / "reviews.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "--models-root" in err and "is a file" in err and len(err.splitlines()) == 1
    rc = main(["--data", str(files / "reviews.csv"), "settings"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("governance settings: --data") and "is a file" in err
