"""Lexical retrieval: BM25 over a product's title, brand, category path and description (``bm25s``).

Tokens are lowercase ``[a-z0-9]+`` runs of the text with HTML tags removed, English stop words
dropped and the minimal English plural fold of Harman's S-stemmer (Lucene's ``EnglishMinimalStemmer``:
``batteries`` → ``battery``, ``lights`` → ``light``, not ``glass`` or ``bus``), computed with Polars
string expressions (no loop over rows). The title is counted twice — the usual BM25F approximation
of a field boost: a word in a product's name says more than the same word deep in its description.
BM25's parameters are the textbook ``k1 = 1.2, b = 0.75`` (Lucene's IDF). None of this was tuned on
the judgment sets.

``bm25s`` was measured against the alternatives in ``bench/search.py``: it builds a sparse
document–term matrix once and scores a query as one sparse row sum, so a query over 100k products
takes about a millisecond.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

#: scikit-learn's short English stop list would drop product words such as "system" or "fire";
#: these are only function words
STOP_WORDS = (
    "a an and are as at be by for from has have in into is it its of on or that the this to was were will with "
    "your you our we i me my"
).split()

#: text fields of a product, with how often each is repeated in the indexed document
FIELDS: tuple[tuple[str, int], ...] = (("title", 2), ("brand", 1), ("category_path", 1), ("description", 1))


def token_lists(texts: pl.Series | list[str]) -> pl.Series:
    """Each text's tokens (a list column): lowercase ``[a-z0-9]+``, tags stripped, stop words out, plural fold."""
    s = pl.Series("text", texts, dtype=pl.String) if not isinstance(texts, pl.Series) else texts.cast(pl.String)
    words = (s.fill_null("").str.replace_all(r"<[^>]*>", " ").str.to_lowercase().str.extract_all(r"[a-z0-9]+"))
    return pl.select(
        words.list.eval(
            pl.element().filter(~pl.element().is_in(STOP_WORDS))
            .str.replace(r"^([a-z]{2,}[^ea])ies$", "${1}y").str.replace(r"^([a-z]{2,}[^us])s$", "${1}")
        ).alias("tokens")
    ).to_series()


def tokenize(texts: pl.Series | list[str]) -> list[list[str]]:
    return token_lists(texts).to_list()


_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"[a-z0-9]+")
_IES = re.compile(r"^([a-z]{2,}[^ea])ies$")
_S = re.compile(r"^([a-z]{2,}[^us])s$")
_STOP = frozenset(STOP_WORDS)


def tokenize_query(text: str | None) -> list[str]:
    """One query's tokens, the same as :func:`token_lists` gives (a Polars frame per query costs ~15 ms)."""
    words = _WORD.findall(_TAG.sub(" ", text or "").lower())
    return [_S.sub(r"\1", _IES.sub(r"\1y", w)) for w in words if w not in _STOP]


def document_text(products: pl.DataFrame, fields: tuple[tuple[str, int], ...] = FIELDS) -> pl.Series:
    """The indexed text of each product: its fields (those present), each repeated by its weight."""
    parts = []
    for name, weight in fields:
        if name in products.columns:
            col = pl.col(name).cast(pl.String).fill_null("")
            if name == "category_path":
                col = col.str.replace_all(">", " ")
            parts += [col] * weight
    return products.select(pl.concat_str(parts, separator=" ").alias("document")).to_series()


@dataclass
class LexicalIndex:
    """BM25 over one document per product, in the order of the products frame."""

    k1: float = 1.2
    b: float = 0.75
    fields: tuple[tuple[str, int], ...] = FIELDS
    model: object = None
    n_docs: int = 0
    build_seconds: float = 0.0
    vocabulary: int = 0
    _empty: np.ndarray = field(default=None, repr=False)

    @classmethod
    def build(cls, products: pl.DataFrame, *, k1: float = 1.2, b: float = 0.75,
              fields: tuple[tuple[str, int], ...] = FIELDS) -> LexicalIndex:
        import bm25s  # noqa: PLC0415

        t0 = time.perf_counter()
        tokens = tokenize(document_text(products, fields))
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index(tokens, show_progress=False)
        return cls(k1=k1, b=b, fields=fields, model=model, n_docs=len(tokens),
                   build_seconds=time.perf_counter() - t0, vocabulary=len(model.vocab_dict))

    def scores(self, query: str) -> np.ndarray:
        """BM25 of every product for the query (0 where no query word occurs)."""
        words = [w for w in tokenize_query(query) if w in self.model.vocab_dict]
        if not words:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self.model.get_scores(words), dtype=np.float32)

    def coverage(self, query: str) -> float:
        """Share of the query's words (tokens as indexed) that occur in the catalogue; 0 for none."""
        words = tokenize_query(query)
        return sum(w in self.model.vocab_dict for w in words) / len(words) if words else 0.0

    def search(self, query: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Indices and scores of the top ``k`` products with a positive score, best first."""
        s = self.scores(query)
        return top_k(s, k, positive=True)

    def save(self, path: Path) -> None:
        self.model.save(str(path))

    @classmethod
    def load(cls, path: Path, n_docs: int) -> LexicalIndex:
        import bm25s  # noqa: PLC0415

        model = bm25s.BM25.load(str(path))
        return cls(k1=model.k1, b=model.b, model=model, n_docs=n_docs, vocabulary=len(model.vocab_dict))


def top_k(scores: np.ndarray, k: int, *, positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best indices (ties: lower index first) and their scores."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    part = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    order = part[np.lexsort((part, -scores[part]))]
    if positive:
        order = order[scores[order] > 0]
    return order.astype(np.int64), scores[order]
