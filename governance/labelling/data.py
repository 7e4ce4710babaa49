"""The real-reviews evaluation data and its fixed split (so every figure compares across runs).

Source: Women's Clothing E-Commerce Reviews (``shared/data/womens_clothing_reviews``).
Text = ``Title + ". " + Review Text`` (the text alone when the Title is null); rows without Review
Text are dropped; the split is
``sklearn.model_selection.train_test_split(test_size=0.2, random_state=0, stratify=Rating)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

from governance.labelling.text import compose_review_text

REVIEWS_RELATIVE = Path("womens_clothing_reviews") / "Womens Clothing E-Commerce Reviews.csv"


def shared_data_dir() -> Path | None:
    """The real sample data (settings ``shared_data``: GOVERNANCE_SHARED_DATA, else ``../shared/data``), if present."""
    from governance.settings import Settings

    path = Settings.load().shared_data
    return path if path and path.is_dir() else None


def real_reviews_path() -> Path | None:
    d = shared_data_dir()
    if d is None:
        return None
    p = d / REVIEWS_RELATIVE
    return p if p.is_file() else None


def load_real_reviews(path: Path | str | None = None) -> pl.DataFrame:
    """Columns text, rating (1..5), one row per review with non-null Review Text."""
    path = Path(path) if path else real_reviews_path()
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"real reviews not found (looked for shared/data/{REVIEWS_RELATIVE})")
    df = pl.read_csv(path, infer_schema_length=0)  # all strings; cast what we need
    df = df.filter(pl.col("Review Text").is_not_null())
    texts = [compose_review_text(t, r) for t, r in zip(df["Title"].to_list(), df["Review Text"].to_list())]
    return pl.DataFrame({"text": texts, "rating": df["Rating"].cast(pl.Int64)})


def fixed_split(df: pl.DataFrame, rating_column: str = "rating") -> tuple[pl.DataFrame, pl.DataFrame]:
    """The fixed evaluation split: 80/20, random_state=0, stratified by rating."""
    from sklearn.model_selection import train_test_split  # noqa: PLC0415
    idx = np.arange(df.height)
    tr, te = train_test_split(idx, test_size=0.2, random_state=0, stratify=df[rating_column].to_numpy())
    return df[tr], df[te]


def fingerprint(texts, labels) -> str:
    """sha256 over (text, label) pairs in order — the identity of a training or evaluation set."""
    h = hashlib.sha256()
    for t, y in zip(texts, labels):
        h.update(str(t).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
        h.update(str(y).encode())
        h.update(b"\x1e")
    return h.hexdigest()
