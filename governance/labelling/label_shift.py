"""Adapting a sentiment model to a target shop's class priors (label shift).

A model trained on shops with ~10 % negative reviews sees another shop with 4 % or 20 %: its
posteriors are off by the prior ratio. Two corrections (Saerens, Latinne & Decaestecker 2002):

* ``prior_correct(proba, source_prior, target_prior)`` — the target's prior is known (its star
  ratings: 1–2★ negative, 3★ neutral, 4–5★ positive): ``p'(y|x) ∝ p(y|x) · π_t(y) / π_s(y)``;
* ``em_priors(proba, source_prior)`` — unknown: EM re-estimation of the target prior from the
  model's own posteriors on the target texts, then the same correction.

``source_prior`` is the prior the probabilities were calibrated under: the mean predicted
probability on the model's validation data (``implied_prior``), which folds in any decision shift
of the calibration. The correction moves plain accuracy and calibration towards the target; the
balanced accuracy (a prior-free figure) changes little by design.
"""

from __future__ import annotations

import numpy as np

from governance.labelling.metrics import stars_to_class


def implied_prior(proba: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(proba, dtype=float).mean(0), 1e-6, None)


def star_prior(ratings, k: int = 3) -> np.ndarray:
    """The class prior of known star ratings (with add-one smoothing)."""
    y = stars_to_class(np.asarray(ratings))
    return (np.bincount(y, minlength=k) + 1.0) / (len(y) + k)


def prior_correct(proba: np.ndarray, source_prior, target_prior) -> np.ndarray:
    w = np.asarray(target_prior, dtype=float) / np.asarray(source_prior, dtype=float)
    p = np.asarray(proba, dtype=float) * w
    return p / np.maximum(p.sum(1, keepdims=True), 1e-12)


def em_priors(proba: np.ndarray, source_prior, *, max_iter: int = 200, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """(estimated target prior, corrected posteriors) by EM on unlabelled target posteriors."""
    src = np.asarray(source_prior, dtype=float)
    prior = src.copy()
    p = np.asarray(proba, dtype=float)
    for _ in range(max_iter):
        adj = prior_correct(p, src, prior)
        new = np.clip(adj.mean(0), 1e-6, None)
        new /= new.sum()
        if np.abs(new - prior).max() < tol:
            prior = new
            break
        prior = new
    return prior, prior_correct(p, src, prior)
