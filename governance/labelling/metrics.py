"""Evaluation figures for the sentiment labeller (pure numpy; no model code).

Conventions, so figures compare across runs and models:

* **3-class** labels come from stars: 1–2★ negative, 3★ neutral, 4–5★ positive.
* **binary** accuracy / balanced accuracy use only 1–2★ vs 4–5★ reviews (3★ excluded); the model's
  binary call is ``p_negative > p_positive`` (its neutral mass is ignored), so a 3-class model is
  scored without being forced into its own neutral decision.
* **macro-F1** is over the three classes, on every review, with the model's argmax.
* **ECE** (expected calibration error): 15 equal-width bins of the 3-class top probability, the
  bin-size-weighted mean |accuracy − confidence|.
"""

from __future__ import annotations

import numpy as np

LABELS = ("negative", "neutral", "positive")


def stars_to_class(ratings) -> np.ndarray:
    """1–2 → 0 (negative), 3 → 1 (neutral), 4–5 → 2 (positive)."""
    r = np.asarray(ratings, dtype=np.int64)
    if r.size and (r.min() < 1 or r.max() > 5):
        raise ValueError("ratings must be integers 1..5")
    return np.where(r <= 2, 0, np.where(r == 3, 1, 2))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int = 3) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int = 3) -> float:
    m = confusion(y_true, y_pred, k)
    tp = np.diag(m).astype(float)
    prec = np.divide(tp, m.sum(0), out=np.zeros(k), where=m.sum(0) > 0)
    rec = np.divide(tp, m.sum(1), out=np.zeros(k), where=m.sum(1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(k), where=(prec + rec) > 0)
    return float(f1.mean())


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    proba = np.asarray(proba, dtype=float)
    conf = proba.max(1)
    correct = (proba.argmax(1) == np.asarray(y_true)).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def binary_scores(ratings, proba: np.ndarray) -> tuple[float, float]:
    """(accuracy, balanced accuracy) on 1–2★ vs 4–5★ with the call p_negative > p_positive."""
    r = np.asarray(ratings)
    keep = r != 3
    if not keep.any():
        return float("nan"), float("nan")
    y = (r[keep] >= 4).astype(int)
    pred = (proba[keep, 2] >= proba[keep, 0]).astype(int)
    acc = float((pred == y).mean())
    recalls = [float((pred[y == c] == c).mean()) for c in (0, 1) if (y == c).any()]
    return acc, float(np.mean(recalls))


def sentiment_report(ratings, proba: np.ndarray) -> dict:
    """Every figure of the sentiment evaluation for 3-class probabilities (columns neg, neu, pos)."""
    proba = np.asarray(proba, dtype=float)
    y = stars_to_class(ratings)
    pred = proba.argmax(1)
    acc, bal = binary_scores(ratings, proba)
    return {
        "n": int(len(y)),
        "binary_accuracy": acc,
        "balanced_accuracy": bal,
        "macro_f1": macro_f1(y, pred),
        "accuracy_3class": float((pred == y).mean()) if len(y) else float("nan"),
        "ece": expected_calibration_error(proba, y) if len(y) else float("nan"),
        "confusion": confusion(y, pred).tolist(),
    }


def format_report_table(rows: dict[str, dict], *, title: str = "") -> str:
    """A plain-text table: one line per model, then each model's confusion matrix."""
    head = f"{'model':<44} {'binary acc':>10} {'balanced':>9} {'macro-F1':>9} {'3-cl acc':>9} {'ECE':>7} {'n':>6}"
    lines = [title, head, "-" * len(head)] if title else [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<44} {r['binary_accuracy']*100:>9.1f}% {r['balanced_accuracy']*100:>8.1f}% "
                     f"{r['macro_f1']:>9.3f} {r['accuracy_3class']*100:>8.1f}% {r['ece']:>7.3f} {r['n']:>6}")
    lines.append("")
    lines.append("confusion matrices (rows = stars-derived truth neg/neu/pos, columns = predicted neg/neu/pos):")
    for name, r in rows.items():
        c = r["confusion"]
        lines.append(f"  {name}: " + "  ".join("[" + " ".join(f"{v:>5}" for v in row) + "]" for row in c))
    return "\n".join(lines)
