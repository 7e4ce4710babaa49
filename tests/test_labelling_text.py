"""Unlabelable texts get null labels and explicit reasons; metrics behave on hand-made cases."""

import numpy as np
import polars as pl
import pytest

from governance.labelling.metrics import binary_scores, expected_calibration_error, macro_f1, sentiment_report
from governance.labelling.reviews import SENTIMENT_COLUMNS, label_reviews
from governance.labelling.text import compose_review_text, unlabelable_reason


@pytest.mark.parametrize("text, code", [
    (None, "empty"), ("", "empty"), ("   \n", "empty"),
    ("😍😍😍 !!!", "no_letters"), ("... ??? 123", "no_letters"),
    ("Это платье очень красивое", "non_english"), ("この服はとても良いです", "non_english"),
    ("Me encanta este vestido, es muy bonito y la tela es de buena calidad", "non_english"),
    ("Das Kleid ist sehr schön und die Qualität ist gut", "non_english"),
    ("a" * 6000, "too_long"),
])
def test_unlabelable_reasons(text, code):
    r = unlabelable_reason(text)
    assert r is not None and r.startswith(code + ":"), r


@pytest.mark.parametrize("text", ["Great dress, perfect fit", "Love it!", "Runs small. Returned it.",
                                  "The fabric is soft and the colour is lovely", "meh", "5 stars, would buy again"])
def test_english_texts_pass(text):
    assert unlabelable_reason(text) is None


def test_compose_review_text_null_title():
    assert compose_review_text(None, "Nice") == "Nice"  # never ". " + text
    assert compose_review_text("  ", "Nice") == "Nice"
    assert compose_review_text("Wow", "Nice") == "Wow. Nice"


class StubModel:
    """Positive if the text contains 'good', negative otherwise; records what it was asked."""

    name, version = "stub", "v0000"

    def __init__(self):
        self.seen = []

    def predict_proba(self, texts, progress=None, **_):
        self.seen.extend(texts)
        p = np.array([[0.1, 0.1, 0.8] if "good" in t else [0.7, 0.2, 0.1] for t in texts])
        if progress:
            progress(len(texts), len(texts))
        return p


def test_label_reviews_nulls_unlabelable_and_keeps_the_rest():
    df = pl.DataFrame({
        "review_id": ["r1", "r2", "r3", "r4", "r5"], "user_id": ["u"] * 5, "product_id": ["p"] * 5,
        "rating": [5, 1, 3, 4, 2], "title": [None, "Bad", None, None, None],
        "text": ["good dress", "fell apart", "🙂🙂", None, "x" * 9000],
        "review_time": [None] * 5,
    })
    model = StubModel()
    calls = []
    out = label_reviews(df, model, progress=lambda d, t: calls.append((d, t)))
    assert out.columns == df.columns + list(SENTIMENT_COLUMNS)
    assert out["sentiment"].to_list() == ["positive", "negative", None, None, None]
    reasons = out["unlabelable_reason"].to_list()
    assert reasons[0] is None and reasons[1] is None
    assert reasons[2].startswith("no_letters") and reasons[3].startswith("empty") and reasons[4].startswith("too_long")
    assert out["p_positive"][2] is None and out["sentiment_probability"][0] == pytest.approx(0.8)
    assert model.seen == ["good dress", "Bad. fell apart"]  # unlabelable rows never reach the model; no ". " prefix
    assert calls[-1] == (5, 5)
    assert out["model_version"].unique().to_list() == ["v0000"]
    assert out.schema["labelled_at"] == pl.Datetime("us", "UTC")


def test_metrics_on_hand_made_cases():
    ratings = np.array([1, 2, 3, 4, 5, 5])
    perfect = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1],
                        [0.05, 0.05, 0.9], [0.05, 0.05, 0.9], [0.05, 0.05, 0.9]])
    r = sentiment_report(ratings, perfect)
    assert r["binary_accuracy"] == 1.0 and r["balanced_accuracy"] == 1.0 and r["macro_f1"] == 1.0
    assert r["confusion"] == [[2, 0, 0], [0, 1, 0], [0, 0, 3]]
    all_pos = np.tile([0.0, 0.0, 1.0], (6, 1))
    acc, bal = binary_scores(ratings, all_pos)
    assert acc == pytest.approx(3 / 5) and bal == pytest.approx(0.5)
    assert macro_f1(np.array([0, 1, 2]), np.array([2, 2, 2])) == pytest.approx((0 + 0 + 0.5) / 3)
    # confident and always right → ECE = 1 - confidence
    assert expected_calibration_error(np.tile([0.9, 0.05, 0.05], (10, 1)), np.zeros(10, int)) == pytest.approx(0.1)
