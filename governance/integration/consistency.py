"""Cross-source consistency findings (warnings): facts that disagree between sources.

Nothing here removes data; each function counts the rows that look inconsistent, relative to
what could have been, and returns a few examples so a person can judge them in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from governance.integration.catalog import price_at
from governance.integration.config import DEFAULT_CONFIG, IntegrationConfig
from governance.integration.identity import UserLookup
from governance.storage import Lake

EXAMPLES = 5
LAYER = "integrated"


@dataclass
class Finding:
    name: str
    count: int
    out_of: int
    examples: pl.DataFrame
    description: str
    unit: str = "rows"

    @property
    def share(self) -> float:
        return self.count / self.out_of if self.out_of else 0.0

    def summary(self) -> str:
        return f"{self.count:,} of {self.out_of:,} {self.unit} ({self.share:.2%}): {self.description}"


def price_mismatches(admitted: pl.DataFrame, history: pl.DataFrame,
                     config: IntegrationConfig = DEFAULT_CONFIG) -> Finding:
    """Purchases whose price differs from the catalog price valid at that time beyond the tolerance."""
    p = admitted.filter((pl.col("event_type") == "purchase") & pl.col("price").is_not_null())
    p = price_at(p.select("event_id", "session_id", "product_id", "event_time", "price"), history)
    diff = (pl.col("price") - pl.col("catalog_price")).abs()
    off = p.filter(pl.col("catalog_price").is_not_null()
                   & (diff > pl.max_horizontal(pl.lit(config.price_tolerance_abs),
                                               pl.col("catalog_price").abs() * config.price_tolerance_rel)))
    off = off.with_columns(((pl.col("price") / pl.col("catalog_price") - 1) * 100).round(1).alias("diff_pct"))
    return Finding(
        "purchase_price_differs_from_catalog", off.height, p.height,
        off.sort(pl.col("diff_pct").abs(), descending=True).head(EXAMPLES).select(
            "event_id", "product_id", "event_time", pl.col("price").alias("paid"), "catalog_price", "diff_pct",
            "catalog_valid_from", "catalog_version_assumed"),
        f"paid price differs from the catalog price valid at that time by more than "
        f"{config.price_tolerance_rel:.0%} and {config.price_tolerance_abs} USD", "priced purchases")


def purchases_without_interest(admitted: pl.DataFrame, earlier: pl.DataFrame | None = None) -> Finding:
    """Purchases with no earlier view or add-to-cart of the same product in the same session.

    ``admitted``: the day's events; ``earlier``: the previous day's (sessions crossing midnight).
    """
    purchases = admitted.filter(pl.col("event_type") == "purchase")
    pool = admitted if earlier is None else pl.concat([earlier, admitted], how="vertical_relaxed")
    interest = (pool.filter(pl.col("event_type").is_in(["view", "add_to_cart"]))
                .group_by("session_id", "product_id").agg(pl.col("event_time").min().alias("__first_interest")))
    joined = purchases.join(interest, on=["session_id", "product_id"], how="left")
    bad = joined.filter(pl.col("__first_interest").is_null() | (pl.col("__first_interest") > pl.col("event_time")))
    return Finding("purchase_without_view_or_cart", bad.height, purchases.height,
                   bad.head(EXAMPLES).select("event_id", "session_id", "product_id", "event_time"),
                   "purchase with no earlier view or add-to-cart of that product in its session", "purchases")


def impossible_sessions(sessions: pl.DataFrame, config: IntegrationConfig = DEFAULT_CONFIG) -> Finding:
    limit = config.max_session_hours * 3600
    bad = sessions.filter((pl.col("duration_s") > limit) | (pl.col("duration_s") < 0))
    return Finding("impossible_session_duration", bad.height, sessions.height,
                   bad.sort("duration_s", descending=True).head(EXAMPLES).select(
                       "session_id", "session_start", "session_end",
                       (pl.col("duration_s") / 3600).round(1).alias("hours"), "events"),
                   f"session lasts longer than {config.max_session_hours:g} hours (or ends before it starts)",
                   "sessions")


def activity_before_signup(users: pl.DataFrame, interactions: pl.LazyFrame) -> Finding:
    """Users whose first activity precedes their sign-up day (interactions before it, counted)."""
    signed = users.filter(pl.col("signup_date").is_not_null()).select("user_key", "signup_date")
    early = (interactions.select("user_key", "date", "events")
             .join(signed.lazy(), on="user_key").filter(pl.col("date") < pl.col("signup_date"))
             .group_by("user_key").agg(pl.col("events").sum().alias("events_before_signup"),
                                       pl.col("date").min().alias("first_active_day"), pl.col("signup_date").first())
             .collect())
    return Finding("activity_before_signup", early.height, signed.height,
                   early.sort("events_before_signup", descending=True).head(EXAMPLES),
                   f"{int(early['events_before_signup'].sum()) if early.height else 0:,} events on days before "
                   "the user's sign-up day", "registered users")


def products_never_seen(products: pl.DataFrame) -> Finding:
    bad = products.filter(pl.col("views") == 0)
    return Finding("product_never_viewed", bad.height, products.height,
                   bad.head(EXAMPLES).select("product_id", "title", "category_path", "price", "purchases"),
                   "catalog product nobody ever viewed", "products")


def unverified_reviews(reviews: pl.DataFrame, interactions: pl.LazyFrame) -> Finding:
    """Reviews of a product by a user who never bought it (in any day of integrated.interactions).

    ``reviews``: ``profiles.ReviewFacts.reviews`` (user_key, product_id resolved).
    """
    r = reviews.filter(pl.col("user_key").is_not_null() & pl.col("product_id").is_not_null())
    bought = (interactions.filter(pl.col("purchases") > 0).select("user_key", "product_id").unique().collect())
    bad = r.join(bought, on=["user_key", "product_id"], how="anti")
    return Finding("unverified_review", bad.height, r.height,
                   bad.head(EXAMPLES).select("review_id", "product_id", "rating", "review_time"),
                   "review of a product its author never bought", "reviews by known users")
