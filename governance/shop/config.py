"""What to generate: one scale number, a window of days, a seed, and the fault rates.

Everything else (users, products, reviews, queries) is derived from `n_events`, so a benchmark
only has to turn one knob and the shop keeps realistic proportions at every size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

#: Fault kinds and their default rates. A rate is the fraction of the *eligible* rows of a source
#: that get the fault (eligible: e.g. priced events for price faults, reviews with text for text
#: faults); counts are exact (`round(rate * eligible)`, at least 1 where rate > 0), not Bernoulli,
#: so observed rates match configured ones up to rounding. Override one source with "source.kind".
DEFAULT_FAULT_RATES: dict[str, float] = {
    # duplicates
    "exact_duplicate": 0.01,  # events, reviews, queries
    "key_duplicate": 0.005,  # all five sources
    "near_duplicate_review": 0.005,  # reviews
    "near_duplicate_product": 0.01,  # products
    "reworded_duplicate_product": 0.005,  # products
    # catalog quality
    "miscategorised_product": 0.01,  # products
    "non_canonical_brand": 0.02,  # products
    "non_canonical_category": 0.02,  # products
    # missing / malformed values
    "null_required": 0.003,  # all five
    "null_optional": 0.01,  # all five
    "number_as_string": 0.005,  # events, products, reviews, queries
    "unparsable_value": 0.003,  # all five
    # out-of-range values
    "negative_price": 0.003,  # events, products
    "absurd_price": 0.003,  # events, products
    "future_timestamp": 0.002,  # all five
    "epoch_zero_timestamp": 0.002,  # all five
    "rating_out_of_range": 0.005,  # reviews
    "non_positive_quantity": 0.005,  # events
    "foreign_currency": 0.01,  # events, products
    # referential integrity
    "unknown_user": 0.005,  # events, reviews, queries
    "unknown_item": 0.005,  # events, reviews
    # behaviour and text
    "bot_session": 0.005,  # events (bot events / clean events)
    "broken_utf8": 0.005,  # reviews.text, queries.query_text
    "pii_in_text": 0.01,  # reviews.text, queries.query_text
    "rating_text_contradiction": 0.02,  # reviews
}

#: File-level fault: exactly one landed file (an events file) has a renamed column and an extra one.
SCHEMA_DRIFT = "schema_drift"

FAULT_KINDS: tuple[str, ...] = (*DEFAULT_FAULT_RATES, SCHEMA_DRIFT)

SOURCES: tuple[str, ...] = ("events", "products", "users", "reviews", "queries")


def _yesterday_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


@dataclass(frozen=True)
class ShopConfig:
    """The one knob (`n_events`) plus window, seed and fault rates."""

    n_events: int = 300_000
    days: int = 14
    end_date: dt.date = field(default_factory=_yesterday_utc)
    seed: int = 7
    fault_rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FAULT_RATES))
    #: write exactly one schema-drifted events file
    schema_drift: bool = True

    def __post_init__(self) -> None:
        # kinds not given keep their default rate; pass 0.0 to switch one off
        object.__setattr__(self, "fault_rates", {**DEFAULT_FAULT_RATES, **self.fault_rates})
        if self.n_events < 1_000:
            raise ValueError("n_events must be at least 1,000")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        unknown = {k.split(".")[-1] for k in self.fault_rates} - set(DEFAULT_FAULT_RATES)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(DEFAULT_FAULT_RATES)}")
        for k, v in self.fault_rates.items():
            if not 0.0 <= v <= 0.5:
                raise ValueError(f"fault rate {k}={v} outside [0, 0.5]")

    # -- derived scale -------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return max(50, round(self.n_events / 60))

    @property
    def n_products(self) -> int:
        return int(min(20_000, max(300, round(self.n_events / 150))))

    @property
    def n_reviews(self) -> int:
        return max(20, round(self.n_events / 50))

    @property
    def target_queries(self) -> int:
        return max(20, round(self.n_events / 20))

    # -- window --------------------------------------------------------------------------------
    @property
    def start_date(self) -> dt.date:
        return self.end_date - dt.timedelta(days=self.days - 1)

    @property
    def window_start(self) -> dt.datetime:
        return dt.datetime.combine(self.start_date, dt.time(), tzinfo=dt.UTC)

    @property
    def window_end(self) -> dt.datetime:
        """Exclusive end: midnight after `end_date`."""
        return dt.datetime.combine(self.end_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    def rate(self, source: str, kind: str) -> float:
        """The configured rate of `kind` in `source` ("source.kind" overrides "kind")."""
        return float(self.fault_rates.get(f"{source}.{kind}", self.fault_rates.get(kind, 0.0)))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["end_date"] = self.end_date.isoformat()
        d["fault_rates"] = dict(sorted(self.fault_rates.items()))
        d["derived"] = {
            "n_users": self.n_users,
            "n_products": self.n_products,
            "n_reviews": self.n_reviews,
            "target_queries": self.target_queries,
        }
        return d
