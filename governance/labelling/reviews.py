"""``label_reviews``: the function the Dagster layer calls to put sentiment on a reviews frame."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from governance.labelling.encoder import Progress, ProgressReporter
from governance.labelling.metrics import LABELS
from governance.labelling.text import MAX_CHARS, compose_review_text, unlabelable_reason

SENTIMENT_COLUMNS = ("sentiment", "sentiment_probability", "p_negative", "p_neutral", "p_positive", "model_name",
                     "model_version", "labelled_at", "unlabelable_reason")


def review_texts(df: pl.DataFrame, text_column: str = "text", title_column: str | None = "title") -> list[str | None]:
    """Model input per row (title + ". " + text, the text alone without a title), or None where the row has
    no usable content."""
    texts = df[text_column].cast(pl.String).to_list() if text_column in df.columns else [None] * df.height
    titles = (df[title_column].cast(pl.String).to_list() if title_column and title_column in df.columns
              else [None] * df.height)
    return [None if not ((t or "").strip() or (x or "").strip()) else compose_review_text(t, x)
            for t, x in zip(titles, texts)]


def label_reviews(df: pl.DataFrame, model, *, text_column: str = "text", title_column: str | None = "title",
                  progress: Progress | None = None, show_progress: bool | None = None, backend: str | None = "auto",
                  batch_size: int = 64, max_chars: int = MAX_CHARS) -> pl.DataFrame:
    """`df` plus sentiment columns (see ``SENTIMENT_COLUMNS``).

    `model` is a :class:`~governance.labelling.sentiment.SentimentClassifier` (e.g. loaded with
    :func:`governance.labelling.load_current_sentiment`). Rows whose text is empty, emoji or
    punctuation only, not English or longer than `max_chars` get ``sentiment = null``, null
    probabilities and an ``unlabelable_reason``; every other row gets a label, its probability and
    the three class probabilities. `progress(done, total)` is called as batches finish; a tqdm bar
    is shown when stderr is a terminal (or `show_progress=True`).
    """
    n = df.height
    if getattr(model, "input", {}).get("title_used") is False:
        title_column = None  # the model was trained on texts alone: never feed it "title. text"
    composed = review_texts(df, text_column, title_column)
    raw = [" ".join(p for p in (t, x) if p) for t, x in zip(
        df[title_column].cast(pl.String).to_list() if title_column and title_column in df.columns else [None] * n,
        df[text_column].cast(pl.String).to_list() if text_column in df.columns else [None] * n)]
    reasons = [unlabelable_reason(r if c is not None else None, max_chars=max_chars) for r, c in zip(raw, composed)]
    ok = np.array([r is None for r in reasons], dtype=bool)
    proba = np.full((n, 3), np.nan)
    rep = ProgressReporter(n, progress, show_progress, "sentiment")
    rep.update(int((~ok).sum()))  # unlabelable rows are done at once
    if ok.any():
        last = [0]

        def sub_progress(done: int, _total: int) -> None:
            rep.update(done - last[0])
            last[0] = done

        proba[ok] = model.predict_proba([composed[i] for i in np.flatnonzero(ok)], batch_size=batch_size,
                                        backend=backend, progress=sub_progress, show_progress=False)
    rep.close()
    idx = np.where(ok, np.nan_to_num(proba).argmax(1), -1)
    now = datetime.now(UTC)
    label = [LABELS[i] if i >= 0 else None for i in idx]
    top = np.where(ok, np.nanmax(np.where(ok[:, None], proba, 0.0), axis=1), np.nan)
    out = df.with_columns(
        pl.Series("sentiment", label, dtype=pl.String),
        pl.Series("sentiment_probability", top, dtype=pl.Float64).fill_nan(None),
        pl.Series("p_negative", proba[:, 0], dtype=pl.Float64).fill_nan(None),
        pl.Series("p_neutral", proba[:, 1], dtype=pl.Float64).fill_nan(None),
        pl.Series("p_positive", proba[:, 2], dtype=pl.Float64).fill_nan(None),
        pl.lit(getattr(model, "name", "unknown"), dtype=pl.String).alias("model_name"),
        pl.lit(getattr(model, "version", "unknown"), dtype=pl.String).alias("model_version"),
        pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("labelled_at"),
        pl.Series("unlabelable_reason", reasons, dtype=pl.String),
    )
    return out
