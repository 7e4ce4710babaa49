"""The review audit queue and the weak-label noise estimate (confident learning, own implementation).

Audit queue — what a person should look at first, ranked by ``audit_score``:

1. **contradictions** (score 2–3): the model confidently reads the text against the stars — a
   4–5★ review with ``p_negative ≥ threshold`` or a 1–2★ review with ``p_positive ≥ threshold``;
   5★/1★ weigh more than 4★/2★;
2. **label issues** (score 1–2): confident learning says the star-derived label is likely wrong
   (the example lands off the diagonal of the confident joint) without being a contradiction;
3. **low confidence** (score 0–0.5): the top probability is below ``low_confidence``.

Noise estimate — confident learning (Northcutt, Jiang & Chuang, 2021), implemented here in numpy:
per class j the threshold t_j is the mean predicted probability of j over the examples *labelled*
j; an example labelled i counts in cell (i, j*) of the confident joint C, where j* is the class with
the highest probability among those whose probability reaches their threshold (examples reaching
no threshold are not counted). Rows of C are rescaled to the label counts and C is normalised to a
joint distribution Q(label, true); the weak-label noise rate is ``1 − trace(Q)``. The estimate is
sound only with out-of-sample probabilities (a model that did not train on these reviews; the
labelling stage's model never saw the shop's reviews it labels); in-sample probabilities
under-estimate noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from governance.labelling.metrics import LABELS, stars_to_class

PROBA_COLUMNS = ("p_negative", "p_neutral", "p_positive")


@dataclass(frozen=True)
class NoiseEstimate:
    noise_rate: float                  # estimated share of star-derived labels that are wrong
    per_class_noise: dict              # P(true ≠ label | label)
    confident_joint: list              # counts, rows = star-derived label, columns = confident true class
    thresholds: list                   # per-class t_j
    n: int
    n_label_issues: int

    def as_dict(self) -> dict:
        return asdict(self)


def confident_joint(labels: np.ndarray, proba: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, thresholds, j_star) with j_star = -1 where no class reaches its threshold."""
    labels = np.asarray(labels)
    proba = np.asarray(proba, dtype=float)
    t = np.array([proba[labels == j, j].mean() if (labels == j).any() else 1.0 for j in range(k)])
    above = proba >= t[None, :] - 1e-12
    masked = np.where(above, proba, -np.inf)
    j_star = np.where(above.any(1), masked.argmax(1), -1)
    c = np.zeros((k, k), dtype=np.int64)
    sel = j_star >= 0
    np.add.at(c, (labels[sel], j_star[sel]), 1)
    return c, t, j_star


def estimate_label_noise(labels: np.ndarray, proba: np.ndarray, k: int = 3) -> tuple[NoiseEstimate, np.ndarray]:
    """The noise estimate and a boolean mask of label issues (off-diagonal in the confident joint)."""
    labels = np.asarray(labels)
    c, t, j_star = confident_joint(labels, proba, k)
    counts = np.bincount(labels, minlength=k).astype(float)
    rows = c.sum(1, keepdims=True).astype(float)
    cal = np.divide(c, rows, out=np.zeros((k, k)), where=rows > 0) * counts[:, None]
    q = cal / cal.sum() if cal.sum() > 0 else cal
    per_class = {LABELS[i] if k == 3 else str(i): float(1 - cal[i, i] / counts[i]) if counts[i] else None
                 for i in range(k)}
    issues = (j_star >= 0) & (j_star != labels)
    est = NoiseEstimate(noise_rate=float(1 - np.trace(q)) if cal.sum() > 0 else float("nan"),
                        per_class_noise=per_class, confident_joint=c.tolist(),
                        thresholds=[float(x) for x in t], n=int(len(labels)), n_label_issues=int(issues.sum()))
    return est, issues


def _scored(labelled: pl.DataFrame, rating_column: str) -> pl.DataFrame:
    missing = [c for c in (rating_column, *PROBA_COLUMNS) if c not in labelled.columns]
    if missing:
        raise ValueError(f"build_review_audit needs the output of label_reviews; missing columns {missing}")
    return labelled.filter(pl.col("p_negative").is_not_null() & pl.col(rating_column).is_between(1, 5))


def estimate_weak_label_noise(labelled: pl.DataFrame, *, rating_column: str = "rating") -> NoiseEstimate:
    """Confident-learning estimate of how many star-derived sentiment labels are wrong."""
    df = _scored(labelled, rating_column)
    if df.height == 0:
        return NoiseEstimate(float("nan"), {}, [[0] * 3] * 3, [float("nan")] * 3, 0, 0)
    est, _ = estimate_label_noise(stars_to_class(df[rating_column].to_numpy()),
                                  df.select(PROBA_COLUMNS).to_numpy())
    return est


def build_review_audit(labelled: pl.DataFrame, *, rating_column: str = "rating", text_column: str = "text",
                       contradiction_threshold: float = 0.8, low_confidence: float = 0.5,
                       include_label_issues: bool = True, limit: int | None = None) -> pl.DataFrame:
    """Reviews for a person to check, most suspicious first (see the module docstring for the ranking)."""
    df = _scored(labelled, rating_column)
    out_cols = ["rank", "issue", "reason", "audit_score"]
    if df.height == 0:
        return pl.DataFrame(schema={"rank": pl.Int64, "issue": pl.String, "reason": pl.String,
                                    "audit_score": pl.Float64})
    labels = stars_to_class(df[rating_column].to_numpy().astype(int))
    p = df.select(PROBA_COLUMNS).to_numpy()
    _, issues = estimate_label_noise(labels, p) if include_label_issues else (None, np.zeros(len(labels), bool))
    stars, p_neg, p_pos = pl.col(rating_column), pl.col("p_negative"), pl.col("p_positive")
    extremity = pl.when(stars.is_in([1, 5])).then(1.0).otherwise(0.8)
    top = pl.max_horizontal(*PROBA_COLUMNS)
    predicted = pl.lit(list(LABELS)).list.get(pl.col("__pred"))
    stars_say = pl.lit(list(LABELS)).list.get(pl.col("__label"))
    p_of = lambda k: pl.concat_list(*PROBA_COLUMNS).list.get(pl.col(k))  # noqa: E731
    negative_text = (stars >= 4) & (p_neg >= contradiction_threshold)
    positive_text = (stars <= 2) & (p_pos >= contradiction_threshold)
    label_issue = pl.col("__issue")
    low = top < low_confidence
    res = df.with_columns(__label=pl.Series(labels), __pred=pl.Series(p.argmax(1)), __issue=pl.Series(issues)).with_columns(
        issue=pl.when(negative_text | positive_text).then(pl.lit("contradiction"))
        .when(label_issue).then(pl.lit("label_issue"))
        .when(low).then(pl.lit("low_confidence")),
        reason=pl.when(negative_text).then(pl.format("{}★ but the text reads clearly negative (p_negative {})",
                                                     stars, p_neg.round(2)))
        .when(positive_text).then(pl.format("{}★ but the text reads clearly positive (p_positive {})",
                                            stars, p_pos.round(2)))
        .when(label_issue).then(pl.format("confident learning: stars say {}, the model is confident it is {} (p {})",
                                          stars_say, predicted, top.round(2)))
        .when(low).then(pl.format("low confidence: top probability {} < {} ({})", top.round(2),
                                  pl.lit(f"{low_confidence:.2f}"), predicted)),
        audit_score=pl.when(negative_text).then(2 + extremity * p_neg)
        .when(positive_text).then(2 + extremity * p_pos)
        .when(label_issue).then(1 + p_of("__pred") - p_of("__label"))
        .when(low).then(0.5 - top),
    ).drop("__label", "__pred", "__issue").filter(pl.col("issue").is_not_null())
    res = res.sort("audit_score", descending=True).with_row_index("rank", offset=1).with_columns(
        pl.col("rank").cast(pl.Int64))
    keep = [c for c in ("review_id", "product_id", rating_column, "sentiment", "sentiment_probability",
                        *PROBA_COLUMNS, "title", text_column) if c in res.columns]
    res = res.select(out_cols + [c for c in keep if c not in out_cols])
    return res.head(limit) if limit else res
