"""The stacked combiner: out-of-group folds, no part scores a text it was trained on, persistence."""

import json

import numpy as np
import polars as pl
import pytest

from governance.labelling.stacking import (FEATURES, HASHED_FOLDS, Combiner, lexicon_scores, out_of_group_folds,
                                           stack_features)
from tests.test_labelling_sentiment import HELD_OUT, _data


def test_folds_follow_groups_else_a_stable_text_hash():
    texts = [f"review {i}" for i in range(40)]
    by_group = out_of_group_folds(["a"] * 10 + ["b"] * 25 + ["c"] * 5, texts)
    assert [(name, m.sum()) for name, m in by_group] == [("a", 10), ("b", 25), ("c", 5)]
    hashed = [m for _, m in out_of_group_folds(["only"] * 40, texts)]  # one group: nothing to hold out by group
    assert len(hashed) == HASHED_FOLDS and sum(m.sum() for m in hashed) == 40
    assert not np.logical_and(hashed[0], hashed[1]).any()
    again = [m for _, m in out_of_group_folds(None, texts[::-1])]  # the same text, the same fold, wherever it is
    fold_of = {t: k for k, m in enumerate(hashed) for t, inside in zip(texts, m) if inside}
    assert all(fold_of[t] == k for k, m in enumerate(again) for t, inside in zip(texts[::-1], m) if inside)


def test_lexicon_scores_read_sentiment_and_tolerate_missing_text():
    s = lexicon_scores(["I love it, wonderful", "awful, broken, I hate it", "", None])
    assert s.shape == (4, 4)
    assert s[0, 3] > 0.5 and s[1, 3] < -0.5 and (s[2:] == 0).all()


def test_combiner_learns_which_part_to_trust_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    good = np.log(np.full((600, 3), 0.1))
    good[np.arange(600), y] = np.log(0.8)
    noise = np.log(rng.dirichlet(np.ones(3), 600))
    F = stack_features(noise, good, np.zeros((600, 4)))
    comb = Combiner.fit(F, y)
    assert (comb.log_proba(F).argmax(1) == y).mean() > 0.95
    w = comb.weights()
    assert list(w) == list(FEATURES)
    # the reliable part's own class carries the weight, the noisy one next to none
    assert w["tfidf_positive"][2] > 5 * abs(w["net_positive"][2])
    comb.save(tmp_path)
    again = Combiner.load(tmp_path)
    assert np.allclose(again.log_proba(F), comb.log_proba(F)) and again.weights() == w
    # standardised: the reliable part's scores on half the scale keep (about) their weight on the card
    scaled = Combiner.fit(F * np.r_[np.ones(3), np.full(3, 0.5), np.ones(4)], y)
    assert scaled.coef[2, 5] > 1.5 * comb.coef[2, 5]
    assert abs(scaled.weights()["tfidf_positive"][2] - w["tfidf_positive"][2]) < 0.25 * w["tfidf_positive"][2]
    assert Combiner.load(tmp_path / "absent") is None
    two = Combiner.fit(F[y != 1], y[y != 1])  # a class absent from training gets ~0 probability
    assert np.exp(two.log_proba(F))[:, 1].max() < 1e-6


def test_no_part_scores_a_text_of_its_own_training_group(monkeypatch):
    """The combiner's inputs are out-of-group: the TF-IDF model that scores a group never saw it."""
    from governance.labelling import lexical, sentiment
    seen = []
    real_fit = lexical.LexicalModel.fit

    def spy(texts, y3, **kw):
        seen.append(set(texts))
        return real_fit(texts, y3, **kw)

    monkeypatch.setattr(lexical.LexicalModel, "fit", staticmethod(spy))
    texts, ratings = _data()
    texts = [f"{t} ({k})" for k in range(2) for t in texts]
    ratings = np.concatenate([ratings, ratings])
    groups = ["shop a"] * 30 + ["shop b"] * 30
    cfg = sentiment.config_for("demo", head_epochs=5, val_fraction=0.2)
    trained = sentiment.train_sentiment(texts, ratings, cfg, check_backends=False, groups=groups)
    train_part = set(seen[0])  # the final model's TF-IDF: every training text
    out_of_group = seen[1:]
    assert len(out_of_group) == 2
    for fold in out_of_group:
        shops = {g for t, g in zip(texts, groups) if t in fold}
        assert len(shops) == 1 and fold < train_part
    assert trained.classifier.combiner is not None
    assert trained.classifier.calibration.bias[0] == 0.0  # the neutral shift leaves the negative/positive call


def test_stacked_model_saves_loads_and_refuses_an_incomplete_copy(tmp_path):
    from governance.labelling.sentiment import SentimentClassifier, config_for, train_sentiment
    texts, ratings = _data()
    trained = train_sentiment(texts, ratings, config_for("demo", head_epochs=40, val_fraction=0.2,
                                                         class_weight_power=0.0), check_backends=False)
    clf = trained.classifier
    held = [t for t, _ in HELD_OUT]
    assert clf.predict(held) == [y for _, y in HELD_OUT]
    d = clf.save(tmp_path / "m", export_onnx=False)
    assert json.loads((d / "sentiment.json").read_text())["config"]["combine"] == "stack"
    loaded = SentimentClassifier.load(d)
    assert np.allclose(loaded.predict_proba(held, backend="torch"), clf.predict_proba(held, backend="torch"),
                       atol=1e-5)
    (d / "combiner.json").unlink()
    with pytest.raises(FileNotFoundError, match="combiner.json"):
        SentimentClassifier.load(d)


def test_a_fine_tuned_encoder_stacks_on_the_validation_scores_and_groups_must_match_texts():
    from governance.labelling.sentiment import config_for, train_sentiment
    texts, ratings = _data()
    logs = []
    trained = train_sentiment(texts * 2, np.concatenate([ratings, ratings]),
                              config_for("full", combine="stack", epochs=1, max_steps=2, batch_size=8, max_length=32,
                                         num_layers=1), check_backends=False, log_fn=logs.append)
    assert trained.classifier.combiner is not None and trained.classifier.lexical is not None
    assert any("combiner fitted on the validation split's scores (6 reviews)" in m for m in logs)
    with pytest.raises(ValueError, match="groups has 2 entries for 30 texts"):
        train_sentiment(texts, ratings, config_for("demo"), check_backends=False, groups=["a", "b"])


def test_a_tiny_skewed_shop_trains_and_a_one_class_shop_is_refused_in_one_line():
    """20 reviews with one negative: some out-of-group fold sees positives only (its parts then say
    "positive"); 20 positives: nothing to learn, said plainly rather than by sklearn."""
    from governance.labelling.sentiment import config_for, train_sentiment
    from tests.test_labelling_sentiment import NEG, POS
    texts = [f"{t} ({i})" for i, t in enumerate(POS + POS[:9] + NEG[:1])]
    trained = train_sentiment(texts, np.array([5] * 19 + [1]), config_for("demo", head_epochs=3),
                              check_backends=False)
    assert trained.classifier.predict(["lovely, great quality"]) == ["positive"]
    with pytest.raises(ValueError, match="all 20 rated reviews are positive: a sentiment model needs"):
        train_sentiment(texts, np.array([5] * 20), config_for("demo"), check_backends=False)


def test_train_sentiment_refuses_a_one_class_file_before_embedding(tmp_path, capsys):
    from governance.cli import main
    csv = tmp_path / "all_five_stars.csv"
    pl.DataFrame({"text": [f"great product number {i}, love it" for i in range(30)], "rating": [5] * 30}).write_csv(csv)
    assert main(["train-sentiment", str(csv), "--models-root", str(tmp_path / "m"), "--other-shops", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"governance train-sentiment: {csv}: all 30 labelable rated reviews are positive; a sentiment "
                   f"model needs at least two of negative (1–2★), neutral (3★) and positive (4–5★)"]
