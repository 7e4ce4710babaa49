"""Training frames from the integrated layer and the temporal split.

``integrated.interactions`` (user × product × day, implicit-feedback ``weight`` by event type) is the
training signal; sessions' event sequences (for the session models) come from ``clean.events``
mapped to the integrated keys (``integrated.product_keys`` / ``user_keys``), since the integrated
``sessions`` table holds one aggregate row per session. The split is by time: the last
``holdout_days`` days are held out, never a random split of time-ordered behaviour.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from governance.storage import Lake

INTERACTION_COLUMNS = ["user_key", "product_id", "date", "events", "views", "clicks", "add_to_carts", "purchases",
                       "units", "revenue", "last_event_at", "weight"]
EVENT_COLUMNS = ["session_id", "user_key", "product_id", "event_type", "event_time"]
#: graded relevance of a held-out interaction (the ranker's label): its deepest funnel step
GRADE = (pl.when(pl.col("purchases") > 0).then(3).when(pl.col("add_to_carts") > 0).then(2).otherwise(1))


@dataclass
class RecoData:
    """Everything the stage trains and serves from (one snapshot of the integrated layer)."""

    interactions: pl.DataFrame  # INTERACTION_COLUMNS
    events: pl.DataFrame  # EVENT_COLUMNS, session sequences (keys as in the integrated layer)
    products: pl.DataFrame  # integrated.products (the current catalog)
    users: pl.DataFrame  # integrated.users
    embeddings: pl.DataFrame | None = None  # product_id, embedding (MiniLM, from integrated.embedding_cache)
    findings: pl.DataFrame | None = None  # integrated.catalog_findings
    quarantined: pl.DataFrame | None = None  # product_id, rule (products quarantined by cleaning)
    partitions: dict[str, list[str]] = field(default_factory=dict)  # input table → partitions read

    @property
    def days(self) -> list[date]:
        return sorted(self.interactions["date"].unique().to_list())

    def fingerprint(self) -> str:
        """sha256 of the interactions (the training signal) in a canonical order."""
        h = hashlib.sha256()
        frame = self.interactions.select("user_key", "product_id", "date", "weight").sort("user_key", "product_id",
                                                                                           "date")
        h.update(frame.hash_rows(seed=0).to_numpy().tobytes())
        return h.hexdigest()[:16]

    def until(self, last_day: date) -> RecoData:
        """The data as it was known at the end of ``last_day`` (interactions and events up to it)."""
        end = _day_end(last_day)
        return replace(self, interactions=self.interactions.filter(pl.col("date") <= last_day),
                       events=self.events.filter(pl.col("event_time") < end))


def _day_end(day: date) -> pl.Expr:
    return pl.lit(day + timedelta(days=1)).cast(pl.Datetime("us", "UTC"))


def _read_snapshot(lake: Lake, layer: str, table: str) -> pl.DataFrame | None:
    return lake.read(layer, table) if lake.exists(layer, table) else None


def quarantined_products(lake: Lake) -> pl.DataFrame:
    """product_id, rule of every product row quarantined by collection or cleaning."""
    frames = [lake.read("quarantine", "products", None, part).select("rule", "record")
              for part in ("collection", "cleaning") if lake.exists("quarantine", "products", None, part)]
    if not frames:
        return pl.DataFrame(schema={"product_id": pl.String, "rule": pl.String})
    q = pl.concat(frames)
    return q.select(pl.col("record").str.json_path_match("$.product_id").alias("product_id"), "rule").filter(
        pl.col("product_id").is_not_null()).unique()


def session_events(lake: Lake, days: list[str] | None = None) -> pl.DataFrame:
    """Clean events of known products as (session_id, user_key, product_id, event_type, event_time)."""
    parts = lake.partitions("clean", "events")
    if days is not None:
        parts = [d for d in parts if d in set(days)]
    if not parts or not lake.exists("integrated", "product_keys"):
        return pl.DataFrame(schema={"session_id": pl.String, "user_key": pl.String, "product_id": pl.String,
                                    "event_type": pl.String, "event_time": pl.Datetime("us", "UTC")})
    pk = lake.read("integrated", "product_keys").select(pl.col("source_product_id").alias("item_id"),
                                                        pl.col("product_key").alias("product_id"))
    uk = lake.read("integrated", "user_keys").select(pl.col("source_user_id").alias("user_id"), "user_key") \
        if lake.exists("integrated", "user_keys") else pl.DataFrame(schema={"user_id": pl.String,
                                                                            "user_key": pl.String})
    ev = (lake.scan("clean", "events", parts).select("session_id", "user_id", "item_id", "event_type", "event_time")
          .filter(pl.col("session_id").is_not_null() & pl.col("event_time").is_not_null())
          .join(pk.lazy(), on="item_id", how="inner")
          .join(uk.lazy(), on="user_id", how="left")
          .select(EVENT_COLUMNS).sort("session_id", "event_time").collect())
    return ev


def load(lake: Lake, *, with_events: bool = True) -> RecoData:
    """Read the stage's inputs from the lake (every materialized day)."""
    parts = lake.partitions("integrated", "interactions")
    if not parts:
        raise FileNotFoundError("integrated.interactions has no materialized partition: run the integration stage")
    inter = lake.scan("integrated", "interactions", parts).select(INTERACTION_COLUMNS).collect()
    products = lake.read("integrated", "products")
    users = _read_snapshot(lake, "integrated", "users")
    users = users if users is not None else pl.DataFrame(schema={"user_key": pl.String})
    events = session_events(lake) if with_events else pl.DataFrame(schema={c: pl.String for c in EVENT_COLUMNS})
    return RecoData(inter, events, products, users, embeddings=product_embeddings(lake, products),
                    findings=_read_snapshot(lake, "integrated", "catalog_findings"),
                    quarantined=quarantined_products(lake),
                    partitions={"integrated.interactions": parts,
                                "integrated.sessions": lake.partitions("integrated", "sessions"),
                                "integrated.products": ["all"], "integrated.users": ["all"]})


def product_embeddings(lake: Lake, products: pl.DataFrame) -> pl.DataFrame | None:
    """MiniLM embeddings of the current products, read from the integration stage's cache (never re-embedded).

    The cache is keyed by the hash of the text the integration stage embedded (title + description
    of the current clean version), so the texts are rebuilt the same way to look them up.
    """
    if not lake.exists("integrated", "embedding_cache") or not lake.exists("clean", "products"):
        return None
    from governance.integration.findings import product_texts

    clean = lake.read("clean", "products")
    if "is_current" in clean.columns:
        clean = clean.filter(pl.col("is_current"))
    clean = clean.unique("product_id", keep="last")
    keys = lake.read("integrated", "product_keys").select(pl.col("source_product_id").alias("product_id"),
                                                          pl.col("product_key"))
    texts = product_texts(clean).join(keys, on="product_id", how="inner")
    cache = lake.read("integrated", "embedding_cache").select("content_hash", "embedding")
    out = (texts.join(cache, on="content_hash", how="inner")
           .select(pl.col("product_key").alias("product_id"), "embedding").unique("product_id"))
    return out.filter(pl.col("product_id").is_in(products["product_id"].implode()))


# ------------------------------------------------------------------------------------------------
# the temporal split


@dataclass
class Split:
    train: RecoData
    test: pl.DataFrame  # user_key, product_id, grade (held-out interactions of known users)
    cutoff: date  # last training day
    test_days: list[date]

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.test.sort("user_key", "product_id").hash_rows(seed=0).to_numpy().tobytes())
        return f"{self.cutoff.isoformat()}:{h.hexdigest()[:16]}"


def temporal_split(data: RecoData, holdout_days: int = 1, *, end: date | None = None) -> Split:
    """Train on every day up to ``end - holdout_days``; hold out the following ``holdout_days`` days.

    ``end`` (default: the last day in the data) lets a ranker be trained on an earlier window.
    """
    days = [d for d in data.days if end is None or d <= end]
    if len(days) <= holdout_days:
        raise ValueError(f"{len(days)} day(s) of interactions: need more than holdout_days={holdout_days}")
    cutoff = days[-holdout_days - 1]
    test_days = days[-holdout_days:]
    held = data.interactions.filter(pl.col("date").is_in(test_days))
    test = (held.group_by("user_key", "product_id").agg(pl.col("purchases").sum(), pl.col("add_to_carts").sum())
            .with_columns(GRADE.alias("grade")).select("user_key", "product_id", "grade"))
    return Split(data.until(cutoff), test, cutoff, test_days)


# ------------------------------------------------------------------------------------------------
# index spaces and matrices


@dataclass
class Index:
    """A fixed, sorted vocabulary of ids ↔ rows."""

    ids: np.ndarray  # str

    @classmethod
    def of(cls, values) -> Index:
        return cls(np.array(sorted(set(values)), dtype=str))

    def __len__(self) -> int:
        return int(self.ids.size)

    def lookup(self, values: pl.Series | list) -> np.ndarray:
        """Row of each value, -1 when unknown."""
        values = pl.Series(values, dtype=pl.String) if not isinstance(values, pl.Series) else values
        frame = pl.DataFrame({"id": pl.Series(self.ids, dtype=pl.String)}).with_row_index("row")
        got = pl.DataFrame({"id": values.cast(pl.String)}).join(frame, on="id", how="left", maintain_order="left")
        return got["row"].fill_null(-1).cast(pl.Int64).to_numpy()


def decayed(inter: pl.DataFrame, as_of: date, half_life_days: float | None, column: str = "weight") -> pl.Expr:
    """The interaction weight halved every ``half_life_days`` before the end of ``as_of``."""
    if not half_life_days:
        return pl.col(column).cast(pl.Float64)
    age = (pl.lit(as_of) - pl.col("date")).dt.total_days().cast(pl.Float64)
    return pl.col(column) * (0.5 ** (age / half_life_days))


def user_item_matrix(inter: pl.DataFrame, users: Index, items: Index, *, as_of: date | None = None,
                     half_life_days: float | None = None, binary: bool = False) -> sp.csr_matrix:
    """users × items CSR of summed (optionally time-decayed) weights; unknown ids are dropped."""
    if inter.is_empty():
        return sp.csr_matrix((len(users), len(items)), dtype=np.float32)
    as_of = as_of or inter["date"].max()
    w = inter.with_columns(decayed(inter, as_of, half_life_days).alias("__w"))
    u = users.lookup(w["user_key"])
    i = items.lookup(w["product_id"])
    ok = (u >= 0) & (i >= 0)
    vals = np.ones(ok.sum(), np.float32) if binary else w["__w"].to_numpy()[ok].astype(np.float32)
    m = sp.csr_matrix((vals, (u[ok], i[ok])), shape=(len(users), len(items)), dtype=np.float32)
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m
