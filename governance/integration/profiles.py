"""Snapshot tables: product features and user profiles.

Behaviour aggregates (the expensive part: they read every day of activity) are maintained
incrementally by ``IncrementalSnapshot``; dimensions (catalog, registry attributes) and review
statistics are joined on in full at every build — reviews are about 2 % of the event volume, so
recomputing them is cheaper than tracking them, and the result is the same either way.

Sentiment comes from ``labelled.reviews`` when it exists. When it does not, the share and mean
columns are null and ``sentiment_note`` says why ("labelled.reviews is not materialized";
"no labelled review"; "no review").
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from governance.integration.config import COUNT_COLUMNS, DEFAULT_CONFIG, IntegrationConfig
from governance.integration.identity import UserLookup
from governance.integration.incremental import BuildInfo, DailyInput, IncrementalSnapshot
from governance.integration.schemas import SCHEMAS, conform_table
from governance.storage import Lake

COUNTS = list(COUNT_COLUMNS.values())
NOTE_NO_LABELS = "labelled.reviews is not materialized"
NOTE_NO_LABELLED_REVIEW = "no labelled review"
NOTE_NO_REVIEW = "no review"

PRODUCT_ACTIVITY_INPUT = DailyInput(
    "integrated", "product_activity", "product_id",
    ("product_id", "date", *COUNTS, "units", "revenue", "sessions", "purchase_sessions", "first_event_at",
     "last_event_at"),
    SCHEMAS["product_activity"])
INTERACTIONS_INPUT = DailyInput(
    "integrated", "interactions", "user_key",
    ("user_key", "product_id", "date", "events", *COUNTS, "units", "revenue", "first_event_at", "last_event_at",
     "weight"),
    SCHEMAS["interactions"])
SESSIONS_INPUT = DailyInput("integrated", "sessions", "user_key", ("user_key", "date", "converted"),
                            SCHEMAS["sessions"])


# ---------------------------------------------------------------------------------------------
# reviews (+ labels when they exist)


@dataclass
class ReviewFacts:
    """Reviews resolved to integrated keys, with sentiment where labelled."""

    reviews: pl.DataFrame  # review_id, user_key, product_id, rating, review_time, sentiment, score
    labels_available: bool


def review_facts(reviews: pl.DataFrame | None, labels: pl.DataFrame | None, users: UserLookup,
                 product_keys: pl.DataFrame) -> ReviewFacts:
    schema = {"review_id": pl.String, "user_id": pl.String, "product_id": pl.String, "rating": pl.Int64,
              "review_time": pl.Datetime("us", "UTC")}
    r = reviews if reviews is not None else pl.DataFrame(schema=schema)
    r = r.select([pl.col(c) if c in r.columns else pl.lit(None, t).alias(c) for c, t in schema.items()])
    r = r.filter(pl.col("review_id").is_not_null()).unique("review_id", keep="last", maintain_order=True)
    r = (r.join(product_keys.select(pl.col("source_product_id").alias("product_id"), "product_key"),
                on="product_id", how="left")
         .with_columns(pl.col("product_key").alias("product_id")).drop("product_key"))
    r = users.resolve(r, "user_id").drop("__user_known")
    if labels is not None and "review_id" in labels.columns:
        lab = labels.select("review_id", *[c for c in ("sentiment", "p_positive", "p_negative") if c in labels.columns])
        for c in ("sentiment", "p_positive", "p_negative"):
            if c not in lab.columns:
                lab = lab.with_columns(pl.lit(None, pl.String if c == "sentiment" else pl.Float64).alias(c))
        lab = lab.unique("review_id", keep="last")
        mapped = pl.col("sentiment").replace_strict({"positive": 1.0, "neutral": 0.0, "negative": -1.0},
                                                    default=None, return_dtype=pl.Float64)
        r = r.join(lab, on="review_id", how="left").with_columns(
            pl.coalesce(pl.col("p_positive") - pl.col("p_negative"), mapped).alias("score"))
    else:
        r = r.with_columns(pl.lit(None, pl.String).alias("sentiment"), pl.lit(None, pl.Float64).alias("score"))
    return ReviewFacts(r.select("review_id", "user_key", "product_id", "rating", "review_time", "sentiment", "score"),
                       labels is not None)


def _sentiment_note(available: bool, reviews: pl.Expr, labelled: pl.Expr) -> pl.Expr:
    if not available:
        return pl.lit(NOTE_NO_LABELS)
    return (pl.when(reviews.fill_null(0) == 0).then(pl.lit(NOTE_NO_REVIEW))
            .when(labelled.fill_null(0) == 0).then(pl.lit(NOTE_NO_LABELLED_REVIEW)))


# ---------------------------------------------------------------------------------------------
# products


def product_aggregates(scans: dict[str, pl.LazyFrame], dims: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return scans["product_activity"].group_by("product_id").agg(
        *[pl.col(c).sum() for c in COUNTS], pl.col("units").sum().alias("units_sold"), pl.col("revenue").sum(),
        pl.col("sessions").sum(), pl.col("purchase_sessions").sum(),
        pl.col("first_event_at").min().alias("first_seen_at"), pl.col("last_event_at").max().alias("last_seen_at"),
    ).collect()


def publish_products(current: pl.DataFrame, aggregates: pl.DataFrame, facts: ReviewFacts) -> pl.DataFrame:
    """current: catalog.current_products(history); aggregates: product_aggregates output."""
    rv = facts.reviews.filter(pl.col("product_id").is_not_null()).group_by("product_id").agg(
        pl.len().cast(pl.Int64).alias("review_count"),
        pl.col("rating").mean().alias("mean_rating"),
        pl.col("sentiment").is_not_null().sum().cast(pl.Int64).alias("labelled_reviews"),
        (pl.col("sentiment") == "positive").sum().alias("__pos"),
        (pl.col("sentiment") == "negative").sum().alias("__neg"),
    )
    out = current.join(aggregates, on="product_id", how="left").join(rv, on="product_id", how="left")
    out = out.with_columns(
        pl.col([*COUNTS, "units_sold", "sessions", "purchase_sessions", "review_count", "labelled_reviews"])
        .fill_null(0),
        pl.col("revenue").fill_null(0.0).round(2),
    ).with_columns(
        pl.when(pl.col("sessions") > 0).then(pl.col("purchase_sessions") / pl.col("sessions")).alias("conversion_rate"),
        pl.when(pl.col("labelled_reviews") > 0).then(pl.col("__pos") / pl.col("labelled_reviews"))
        .alias("positive_share"),
        pl.when(pl.col("labelled_reviews") > 0).then(pl.col("__neg") / pl.col("labelled_reviews"))
        .alias("negative_share"),
        _sentiment_note(facts.labels_available, pl.col("review_count"), pl.col("labelled_reviews"))
        .alias("sentiment_note"),
    )
    return conform_table("products", out).sort("product_id")


def build_product_features(lake: Lake, current: pl.DataFrame, facts: ReviewFacts,
                           config: IntegrationConfig = DEFAULT_CONFIG, *, full: bool = False
                           ) -> tuple[pl.DataFrame, BuildInfo]:
    snap = IncrementalSnapshot(lake, "products", "product_id", {"product_activity": PRODUCT_ACTIVITY_INPUT},
                               config.fingerprint())
    aggregates, info = snap.build(product_aggregates, full=full)
    return publish_products(current, aggregates, facts), info


# ---------------------------------------------------------------------------------------------
# users


def _top(keyed: pl.LazyFrame, column: str, n: int) -> pl.LazyFrame:
    """The n values of ``column`` with the largest summed weight per user ("A|B|C"); ties by name.

    Grouped on the user's 64-bit hash and a categorical ``column``: integer keys group ~3x faster
    than two strings (a hash collision, ~1e-10 at 200k users, would share a top list, never a count);
    categoricals sort by their text, so the tie order is the names'."""
    return (keyed.filter(pl.col(column).is_not_null()).group_by("__user", column).agg(pl.col("weight").sum())
            .sort(["__user", "weight", column], descending=[False, True, False])
            .group_by("__user", maintain_order=True).agg(
                pl.col(column).head(n).cast(pl.String).str.join("|").alias(f"__top_{column}")))


def user_aggregates_fn(config: IntegrationConfig):
    level = f"category_l{config.top_category_level}"

    def aggregate(scans: dict[str, pl.LazyFrame], dims: dict[str, pl.DataFrame]) -> pl.DataFrame:
        inter = scans["interactions"].filter(pl.col("user_key").is_not_null()).with_columns(
            pl.col("user_key").hash().alias("__user"))
        base = inter.group_by("user_key").agg(
            pl.col("__user").first(),
            pl.col("first_event_at").min().alias("first_seen_at"),
            pl.col("last_event_at").max().alias("last_seen_at"),
            pl.col("date").n_unique().cast(pl.Int64).alias("active_days"),
            pl.col("events").sum(), *[pl.col(c).sum() for c in COUNTS], pl.col("units").sum(),
            pl.col("revenue").sum().alias("monetary"),
            pl.when(pl.col("purchases") > 0).then(pl.col("date")).max().alias("last_purchase_date"),
        )
        categories = dims["product_categories"].lazy().select(
            "product_id", pl.col(level).cast(pl.Categorical).alias("category"), pl.col("brand").cast(pl.Categorical))
        keyed = inter.select("__user", "product_id", "weight").join(categories, on="product_id", how="left")
        top_categories = _top(keyed, "category", config.top_n)
        top_brands = _top(keyed, "brand", config.top_n)
        sess = scans["sessions"].filter(pl.col("user_key").is_not_null()).group_by("user_key").agg(
            pl.len().cast(pl.Int64).alias("sessions"), pl.col("converted").sum().cast(pl.Int64).alias("orders"))
        base, top_categories, top_brands, sess = pl.collect_all([base, top_categories, top_brands, sess])
        return (base.join(sess, on="user_key", how="full", coalesce=True)
                .join(top_categories, on="__user", how="left").join(top_brands, on="__user", how="left")
                .drop("__user")
                .rename({"__top_category": "top_categories", "__top_brand": "top_brands"}))

    return aggregate


def product_categories(history: pl.DataFrame, config: IntegrationConfig = DEFAULT_CONFIG) -> pl.DataFrame:
    """The current category (at the profile's level) and brand of every product."""
    level = f"category_l{config.top_category_level}"
    return (history.filter(pl.col("is_current")).select("product_id", level, "brand").sort("product_id"))


def publish_users(identity_attributes: pl.DataFrame, behaviour_keys: pl.DataFrame, aggregates: pl.DataFrame,
                  facts: ReviewFacts) -> pl.DataFrame:
    """identity_attributes: UserIdentity.attributes; behaviour_keys: user_keys rows of origin behaviour."""
    registry = identity_attributes.select(
        "user_key", pl.lit("registry").alias("origin"), "source_systems", "source_ids",
        pl.col("signup_at").dt.date().alias("signup_date"), "country")
    behaviour = (behaviour_keys.group_by("user_key").agg(
        pl.col("source_system").unique().sort().str.join(",").alias("source_systems"),
        pl.len().cast(pl.Int64).alias("source_ids"))
        .filter(~pl.col("user_key").is_in(registry["user_key"].implode()))
        .with_columns(pl.lit("behaviour").alias("origin")))
    people = pl.concat([registry, behaviour], how="diagonal_relaxed")
    # keys active in the daily tables but not (yet) in the mapping keep their row: the users-level
    # referential check reports them instead of the profile silently dropping their activity
    orphans = (aggregates.select("user_key").filter(~pl.col("user_key").is_in(people["user_key"].implode()))
               .with_columns(pl.lit("unmapped").alias("origin")))
    people = pl.concat([people, orphans], how="diagonal_relaxed")
    rv = facts.reviews.filter(pl.col("user_key").is_not_null()).group_by("user_key").agg(
        pl.len().cast(pl.Int64).alias("review_count"),
        pl.col("score").is_not_null().sum().cast(pl.Int64).alias("labelled_reviews"),
        pl.col("score").mean().alias("mean_review_sentiment"),
    )
    out = people.join(aggregates, on="user_key", how="left").join(rv, on="user_key", how="left")
    as_of = out.select(pl.col("last_seen_at").max().dt.date()).item()
    out = out.with_columns(
        pl.col(["events", *COUNTS, "units", "sessions", "orders", "review_count", "labelled_reviews", "active_days"])
        .fill_null(0),
        pl.col("monetary").fill_null(0.0).round(2),
        pl.lit(as_of, pl.Date).alias("as_of"),
    ).with_columns(
        (pl.col("as_of") - pl.col("last_purchase_date")).dt.total_days().cast(pl.Int64).alias("recency_days"),
        _sentiment_note(facts.labels_available, pl.col("review_count"), pl.col("labelled_reviews"))
        .alias("sentiment_note"),
    )
    return conform_table("users", out).sort("user_key")


def build_user_profiles(lake: Lake, identity_attributes: pl.DataFrame, behaviour_keys: pl.DataFrame,
                        history: pl.DataFrame, facts: ReviewFacts, config: IntegrationConfig = DEFAULT_CONFIG,
                        *, full: bool = False) -> tuple[pl.DataFrame, BuildInfo]:
    snap = IncrementalSnapshot(lake, "users", "user_key",
                               {"interactions": INTERACTIONS_INPUT, "sessions": SESSIONS_INPUT},
                               config.fingerprint())
    cats = product_categories(history, config)

    def impact(old: dict[str, pl.DataFrame], new: dict[str, pl.DataFrame]) -> pl.Series:
        """Users who interacted with a product whose category or brand changed."""
        before = old.get("product_categories")
        if before is None:
            return pl.Series([], dtype=pl.String)
        changed = pl.concat([new["product_categories"].join(before, on=list(before.columns), how="anti"),
                             before.join(new["product_categories"], on=list(before.columns), how="anti")])
        if changed.is_empty():
            return pl.Series([], dtype=pl.String)
        return (INTERACTIONS_INPUT.scan(lake).filter(pl.col("product_id").is_in(changed["product_id"].implode()))
                .select("user_key").unique().collect()["user_key"])

    aggregates, info = snap.build(user_aggregates_fn(config), {"product_categories": cats}, impact, full=full)
    return publish_users(identity_attributes, behaviour_keys, aggregates, facts), info
