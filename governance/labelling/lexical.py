"""A lexical sentiment model beside the frozen encoder: TF-IDF word 1–2-grams + logistic regression.

The frozen MiniLM sentence vector is a *topic* representation: it says what a review is about
better than how the reviewer feels ("as advertised, reasonably priced" sits near complaints about
price). Sentiment words are what a linear model over word n-grams learns directly, in seconds on a
CPU. The frozen setting blends the two in log-probability space (``lexical_weight``) before the
calibration, which is fitted on the blend. On the shared review sets, leave-one-domain-out, the
blend beat either part alone on balanced accuracy and 3-class macro-F1 (see ``lodo.py``).

Stored without pickle: the vocabulary and parameters as JSON, idf and coefficients as ``.npz``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PARAMS = {"ngram_range": [1, 2], "min_df": 2, "sublinear_tf": True, "max_features": 60000, "lowercase": True,
          "strip_accents": "unicode"}



def fit_three_class(X, y3, *, C: float, sample_weight=None) -> tuple[np.ndarray, np.ndarray]:
    """A class-balanced logistic regression as (3, n_features) coefficients and 3 intercepts, whichever
    of negative / neutral / positive the data holds: an absent class gets ~0 probability, and data of
    one class (e.g. a fold of a tiny, skewed shop) gives that class whatever the input."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    y3 = np.asarray(y3)
    coef, intercept = np.zeros((3, X.shape[1])), np.full(3, -30.0)
    if len(np.unique(y3)) == 1:
        intercept[int(y3[0])] = 0.0
        return coef, intercept
    lr = LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(X, y3, sample_weight=sample_weight)
    classes = [int(c) for c in lr.classes_]
    if len(classes) == 2:  # sklearn's binary case: one decision function for classes[1]
        coef[classes[1]], intercept[classes[1]] = lr.coef_[0], lr.intercept_[0]
        coef[classes[0]], intercept[classes[0]] = 0.0, 0.0
    else:
        coef[classes], intercept[classes] = lr.coef_, lr.intercept_
    return coef, intercept


@dataclass
class LexicalModel:
    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray          # (3, V)
    intercept: np.ndarray     # (3,)
    params: dict

    @classmethod
    def fit(cls, texts: Sequence[str], y3: np.ndarray, *, C: float = 4.0, sample_weight=None) -> LexicalModel:
        from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415
        params = dict(PARAMS)
        vec = TfidfVectorizer(**{**params, "ngram_range": tuple(params["ngram_range"]),
                                 "min_df": params["min_df"] if len(texts) >= 200 else 1})
        X = vec.fit_transform(list(texts))
        coef, intercept = fit_three_class(X, y3, C=C, sample_weight=sample_weight)
        vocab = {k: int(v) for k, v in vec.vocabulary_.items()}
        return cls(vocabulary=vocab, idf=vec.idf_.astype(np.float64), coef=coef, intercept=intercept, params=params)

    def _vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415
        vec = TfidfVectorizer(**{**self.params, "ngram_range": tuple(self.params["ngram_range"]), "min_df": 1},
                              vocabulary=self.vocabulary)
        vec.idf_ = self.idf
        return vec

    def log_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) log-probabilities (negative, neutral, positive)."""
        if not len(texts):
            return np.zeros((0, 3))
        X = self._vectorizer().transform([t if isinstance(t, str) else "" for t in texts])
        z = np.asarray(X @ self.coef.T) + self.intercept
        z -= z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    def save(self, directory: Path | str) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "lexical.npz", idf=self.idf, coef=self.coef.astype(np.float32), intercept=self.intercept)
        (d / "lexical.json").write_text(json.dumps({"params": self.params, "vocabulary": self.vocabulary}))

    @classmethod
    def load(cls, directory: Path | str) -> LexicalModel | None:
        d = Path(directory)
        if not (d / "lexical.json").is_file():
            return None
        meta = json.loads((d / "lexical.json").read_text())
        with np.load(d / "lexical.npz") as a:
            return cls(vocabulary=meta["vocabulary"], idf=a["idf"], coef=a["coef"].astype(np.float64),
                       intercept=a["intercept"], params=meta["params"])
