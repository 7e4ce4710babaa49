"""Learned combination of the frozen setting's parts, fitted on what each part says about unseen shops.

The frozen sentence vector (what a review is about), the TF-IDF model (the words of the shops it was
trained on) and a general English sentiment lexicon (VADER: no shop's vocabulary) disagree most on a
shop none of them has seen. A fixed blend weight chosen on the training shops' own validation split
trusts the TF-IDF model as much on a new shop as on the shops it memorised; leave-one-domain-out
that is where the default lost most (clothing 84 %, instruments 85 %).

So the combiner is fitted the way it will be used: every training review is scored by a head and a
TF-IDF model trained *without its group* (its shop when the training data comes from several shops,
otherwise one of four hashed folds), and a class-balanced logistic regression over those scores and
the lexicon's learns how far to trust each part on data it has not seen. The final parts are then
trained on everything; only the combiner's 3×(3+3+4) weights come from the out-of-group scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEXICON_FEATURES = ("vader_negative", "vader_neutral", "vader_positive", "vader_compound")
FEATURES = ("net_negative", "net_neutral", "net_positive", "tfidf_negative", "tfidf_neutral", "tfidf_positive",
            *LEXICON_FEATURES)
HASHED_FOLDS = 4


def lexicon_scores(texts: Sequence[str]) -> np.ndarray:
    """(n, 4) VADER negative / neutral / positive shares and compound score per text (0s for no text)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: PLC0415
    sia = SentimentIntensityAnalyzer()
    out = np.zeros((len(texts), 4))
    for i, t in enumerate(texts):  # VADER scores one text at a time (its API has no batch call)
        if isinstance(t, str) and t:
            s = sia.polarity_scores(t)
            out[i] = (s["neg"], s["neu"], s["pos"], s["compound"])
    return out


def stack_features(net_log3: np.ndarray, lexical_log3: np.ndarray, lexicon: np.ndarray) -> np.ndarray:
    """The combiner's input, in the order of ``FEATURES``."""
    return np.hstack([net_log3, lexical_log3, lexicon])


def out_of_group_folds(groups: Sequence[str] | None, texts: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """(name, mask of the rows an out-of-group model must not see): one per group when there are at
    least two, else ``HASHED_FOLDS`` folds ("fold 1", …) by a stable hash of the text (the same text,
    the same fold)."""
    if groups is not None:
        g = np.asarray(list(groups), dtype=object)
        names = list(dict.fromkeys(g.tolist()))
        if len(names) >= 2:
            return [(name, g == name) for name in names]
    fold = np.array([int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little") % HASHED_FOLDS
                     for t in texts])
    return [(f"fold {k + 1}", fold == k) for k in range(HASHED_FOLDS) if (fold == k).any()]


@dataclass
class Combiner:
    coef: np.ndarray          # (3, len(FEATURES))
    intercept: np.ndarray     # (3,)
    #: each feature's standard deviation over the scores it was fitted on (log-probabilities and VADER's
    #: 0–1 shares are on different scales; coefficient × spread makes the parts comparable on the card)
    spread: np.ndarray | None = None
    features: tuple[str, ...] = FEATURES

    @classmethod
    def fit(cls, features: np.ndarray, y3: np.ndarray, *, C: float = 1.0) -> Combiner:
        from governance.labelling.lexical import fit_three_class  # noqa: PLC0415
        coef, intercept = fit_three_class(features, y3, C=C)
        return cls(coef=coef, intercept=intercept, spread=features.std(0))

    def log_proba(self, features: np.ndarray) -> np.ndarray:
        z = features @ self.coef.T + self.intercept
        z -= z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    def weights(self) -> dict[str, list[float]]:
        """Per feature, its standardised weight (coefficient × spread) towards (negative, neutral, positive):
        what the card shows."""
        spread = np.ones(len(self.features)) if self.spread is None else self.spread
        return {f: [round(float(w * spread[j]), 3) for w in self.coef[:, j]] for j, f in enumerate(self.features)}

    def save(self, directory: Path | str) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "combiner.json").write_text(json.dumps({"features": list(self.features), "coef": self.coef.tolist(),
                                                     "intercept": self.intercept.tolist(),
                                                     "spread": None if self.spread is None else self.spread.tolist()},
                                                    indent=1))

    @classmethod
    def load(cls, directory: Path | str) -> Combiner | None:
        path = Path(directory) / "combiner.json"
        if not path.is_file():
            return None
        meta = json.loads(path.read_text())
        return cls(coef=np.asarray(meta["coef"]), intercept=np.asarray(meta["intercept"]),
                   spread=None if meta.get("spread") is None else np.asarray(meta["spread"]),
                   features=tuple(meta["features"]))
