"""Business keys that look random but are a bijection of a row index.

`(i * A + B) mod 10**width` with A coprime to 10 never collides, so real ids, duplicate ids and
"unknown" reference ids can be drawn from disjoint index ranges of one space and still look alike:
nothing but a lookup tells an orphan reference from a real one.
"""

from __future__ import annotations

import numpy as np
import polars as pl

#: prefix, digits, multiplier (coprime to 10) per entity
ID_SPACES: dict[str, tuple[str, int, int]] = {
    "user": ("u", 7, 3_979_813),
    "product": ("p", 7, 7_351_237),
    "session": ("s", 9, 618_033_989),
    "event": ("e", 10, 314_159_263),
    "review": ("r", 8, 27_182_819),
    "query": ("q", 9, 141_421_357),
}

#: index offset of "unknown" references (orphans) in each space: far above any real index
UNKNOWN_OFFSET = 5_000_000


def id_numbers(entity: str, index: np.ndarray, seed: int) -> np.ndarray:
    _, width, mult = ID_SPACES[entity]
    modulus = 10**width
    offset = (seed * 2_654_435_761 + len(entity) * 97) % modulus
    idx = np.asarray(index, dtype=np.int64)
    return (idx * mult + offset) % modulus


def make_ids(entity: str, index: np.ndarray, seed: int) -> pl.Series:
    """String ids like "u0031337" for row indices `index` (vectorised)."""
    prefix, width, _ = ID_SPACES[entity]
    nums = pl.Series("id", id_numbers(entity, index, seed))
    return pl.select(pl.concat_str(pl.lit(prefix), nums.cast(pl.String).str.zfill(width))).to_series().alias(entity)
