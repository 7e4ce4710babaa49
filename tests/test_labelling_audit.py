"""Audit queue ranking and the confident-learning noise estimate."""

import numpy as np
import polars as pl
import pytest

from governance.labelling.audit import build_review_audit, estimate_label_noise, estimate_weak_label_noise


def _labelled(rows):
    return pl.DataFrame(rows, schema=["review_id", "rating", "p_negative", "p_neutral", "p_positive", "text"],
                        orient="row")


def test_contradicting_review_ranks_first():
    df = _labelled([
        ("ok1", 5, 0.02, 0.03, 0.95, "love it"),
        ("unsure", 4, 0.30, 0.35, 0.35, "it is a dress"),
        ("contra", 5, 0.94, 0.04, 0.02, "fell apart after one wash, awful"),
        ("ok2", 1, 0.90, 0.05, 0.05, "terrible"),
        ("contra2", 2, 0.05, 0.10, 0.85, "wonderful, so happy"),
        ("ok3", 3, 0.10, 0.80, 0.10, "it's fine"),
    ])
    audit = build_review_audit(df)
    assert audit["review_id"][0] == "contra"
    assert audit["rank"][0] == 1 and audit["issue"][0] == "contradiction"
    assert "5★" in audit["reason"][0] and "negative" in audit["reason"][0]
    assert audit["review_id"][1] == "contra2"  # 2★ weighs less than 5★
    assert "unsure" in audit["review_id"].to_list()
    assert audit.filter(pl.col("review_id") == "unsure")["issue"][0] == "low_confidence"
    assert "ok1" not in audit["review_id"].to_list()
    assert audit["audit_score"].is_sorted(descending=True)


def test_unlabelled_rows_are_skipped_and_missing_columns_explained():
    df = _labelled([("a", 5, None, None, None, "🙂"), ("b", 5, 0.9, 0.05, 0.05, "bad")])
    assert build_review_audit(df)["review_id"].to_list() == ["b"]
    with pytest.raises(ValueError, match="label_reviews"):
        build_review_audit(pl.DataFrame({"rating": [5]}))


def test_confident_learning_recovers_flip_rate():
    rng = np.random.default_rng(0)
    n = 6000
    true = rng.choice(3, n, p=[0.15, 0.15, 0.7])
    # a decent model: 85 % of the mass on the true class
    proba = np.full((n, 3), 0.075)
    proba[np.arange(n), true] = 0.85
    proba += rng.uniform(0, 0.05, (n, 3))
    proba /= proba.sum(1, keepdims=True)
    noisy = true.copy()
    flip = rng.random(n) < 0.10
    noisy[flip] = (true[flip] + rng.integers(1, 3, flip.sum())) % 3
    est, issues = estimate_label_noise(noisy, proba)
    assert est.noise_rate == pytest.approx(0.10, abs=0.02)
    assert issues.sum() == pytest.approx(flip.sum(), rel=0.1)
    assert (issues & flip).sum() / issues.sum() > 0.95


def test_estimate_weak_label_noise_from_labelled_frame():
    df = _labelled([("a", 5, 0.05, 0.05, 0.9, ""), ("b", 1, 0.9, 0.05, 0.05, ""), ("c", 5, 0.9, 0.05, 0.05, ""),
                    ("d", 3, 0.1, 0.8, 0.1, ""), ("e", 4, 0.1, 0.1, 0.8, "")])
    est = estimate_weak_label_noise(df)
    assert est.n == 5 and est.n_label_issues == 1 and 0 < est.noise_rate < 0.5
