"""The two sentiment baselines the production model is compared against.

* **VADER** (PyPI ``vaderSentiment``), the usual lexicon rules: compound c ≥ 0.05 positive,
  ≤ -0.05 negative, else neutral. c is not a probability; for ECE it is mapped to pseudo-probabilities
  (see :func:`vader_compound_to_proba`), so VADER's ECE is indicative only.
* **Frozen MiniLM + logistic regression**: mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings,
  sklearn ``LogisticRegression`` (multinomial, C=1, no class weights) on the 3 star-derived classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from governance.labelling.metrics import stars_to_class


def vader_proba(texts: Sequence[str]) -> np.ndarray:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("the VADER baseline needs `pip install vaderSentiment`") from e
    sia = SentimentIntensityAnalyzer()
    c = np.array([sia.polarity_scores(t or "")["compound"] for t in texts], dtype=float)
    return vader_compound_to_proba(c)


def vader_compound_to_proba(c: np.ndarray) -> np.ndarray:
    """Pseudo-probabilities: the called class (±0.05 thresholds) gets 0.5 + |c|/2 (0.5 for neutral),
    the rest is split between the other two so that p_pos > p_neg exactly when c > 0."""
    c = np.asarray(c, dtype=float)
    n = len(c)
    out = np.zeros((n, 3))
    pos, neg = c >= 0.05, c <= -0.05
    neu = ~(pos | neg)
    conf = 0.5 + np.abs(c) / 2
    out[pos, 2] = conf[pos]
    out[pos, 0] = out[pos, 1] = (1 - conf[pos]) / 2
    out[neg, 0] = conf[neg]
    out[neg, 1] = out[neg, 2] = (1 - conf[neg]) / 2
    out[neu, 1] = 0.5
    out[neu, 0] = 0.25 - c[neu]
    out[neu, 2] = 0.25 + c[neu]
    return out


def frozen_lr(train_emb: np.ndarray, train_ratings, test_emb: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    lr = LogisticRegression(C=1.0, max_iter=3000)
    lr.fit(train_emb, stars_to_class(train_ratings))
    return lr.predict_proba(test_emb)
