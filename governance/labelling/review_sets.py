"""The real review sets of several shops and domains (``settings.shared_data``), in one shape.

``load_review_sets(shared)`` → columns ``domain, title, text, rating`` (rating 1–5, text non-empty),
light clean-up per source: HTML breaks and entities unescaped, Flipkart's "READ MORE" suffix and
exact duplicate rows dropped, blank scores dropped. Sets whose files are absent are skipped.

| domain | source | title |
| --- | --- | --- |
| clothing | Women's Clothing E-Commerce Reviews | Title |
| food | Amazon Fine Food Reviews (first 5k) | Summary |
| instruments | Amazon Musical Instruments 5-core (first 5k, headerless) | summary |
| headphones | Flipkart product reviews (Indian English) | none |

``domain_sample(df, per_domain, seed)`` draws a stratified-by-rating sample per domain (a CPU budget
with every domain represented); ``domain_split(df)`` is the fixed 80/20 split within each domain
(stable hash of the text, so a review never moves between sides as sets grow).
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

import numpy as np
import polars as pl

MUSICAL_COLUMNS = ["reviewerID", "asin", "reviewerName", "helpful", "reviewText", "overall", "summary",
                   "unixReviewTime", "reviewTime"]


def _clean(col: str) -> pl.Expr:
    return (pl.col(col).cast(pl.String).str.replace_all(r"(?i)<br\s*/?>", " ")
            .map_elements(html.unescape, return_dtype=pl.String).str.strip_chars())


def _frame(domain: str, df: pl.DataFrame, title: str | None, text: str, rating: str) -> pl.DataFrame:
    out = df.select(
        pl.lit(domain).alias("domain"),
        (_clean(title) if title else pl.lit(None, dtype=pl.String)).alias("title"),
        _clean(text).alias("text"),
        pl.col(rating).cast(pl.Int64, strict=False).alias("rating"),
    )
    return out.filter(pl.col("rating").is_between(1, 5) & (pl.col("text").str.len_chars() > 0))


def load_review_sets(shared: Path | str, domains: list[str] | None = None) -> pl.DataFrame:
    d = Path(shared)
    frames = []
    specs = {
        "clothing": lambda: _frame("clothing", pl.read_csv(d / "womens_clothing_reviews" /
                                                           "Womens Clothing E-Commerce Reviews.csv",
                                                           infer_schema_length=0), "Title", "Review Text", "Rating"),
        "food": lambda: _frame("food", pl.read_csv(d / "amazon_fine_food_reviews_head5k" / "Reviews.csv",
                                                   infer_schema_length=0), "Summary", "Text", "Score"),
        "instruments": lambda: _frame("instruments", pl.read_csv(
            d / "amazon_musical_instruments_reviews_head5k" / "Musical_instruments_reviews.csv", has_header=False,
            new_columns=MUSICAL_COLUMNS, infer_schema_length=0), "summary", "reviewText", "overall"),
        "headphones": lambda: _frame("headphones", pl.read_csv(d / "flipkart_product_reviews" / "flipkart_data.csv",
                                                               infer_schema_length=0)
                                     .with_columns(pl.col("review").str.replace(r"READ MORE\s*$", ""))
                                     .unique(["review", "rating"], keep="first", maintain_order=True),
                                     None, "review", "rating"),
    }
    for name, load in specs.items():
        if domains and name not in domains:
            continue
        try:
            frames.append(load())
        except (FileNotFoundError, pl.exceptions.PolarsError, OSError):
            continue
    if not frames:
        return pl.DataFrame(schema={"domain": pl.String, "title": pl.String, "text": pl.String, "rating": pl.Int64})
    return pl.concat(frames)


def _hash_unit(texts: list[str]) -> np.ndarray:
    return np.array([int(hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) / 2**32
                     for t in texts])


def domain_split(df: pl.DataFrame, test_share: float = 0.2) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test) by a stable hash of domain + text."""
    u = _hash_unit([f"{a}\x1f{b}" for a, b in zip(df["domain"].to_list(), df["text"].to_list())])
    test = pl.Series(u < test_share)
    return df.filter(~test), df.filter(test)


def domain_sample(df: pl.DataFrame, per_domain: int, seed: int = 0) -> pl.DataFrame:
    """Up to `per_domain` rows per domain; ratings kept in proportion, with at least a tenth of the
    sample per star level where the domain has that many (rare negatives are what the model must learn)."""
    rng = np.random.default_rng(seed)
    parts = []
    for (dom,), g in df.group_by(["domain"], maintain_order=True):
        if g.height <= per_domain:
            parts.append(g)
            continue
        counts = g.group_by("rating").len().sort("rating")
        share = counts["len"].to_numpy() / g.height
        want = np.maximum(share * per_domain, per_domain / 10).astype(int)
        want = np.minimum(want, counts["len"].to_numpy())
        # scale back to per_domain, keeping the floors
        while want.sum() > per_domain:
            k = int(np.argmax(want))
            want[k] -= want.sum() - per_domain if want[k] - (want.sum() - per_domain) > 0 else 1
        for r, n in zip(counts["rating"].to_list(), want):
            rows = g.filter(pl.col("rating") == r)
            parts.append(rows[np.sort(rng.choice(rows.height, int(n), replace=False))])
    return pl.concat(parts)
