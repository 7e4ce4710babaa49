"""Business rules between recall and rank, as data: name, description, action, parameters.

Like the cleaning rules, each rule is a small declarative record; :func:`apply_filters` runs them in
order over the candidates (``user_key, product_id, ...``) and counts, per rule, the candidates it
removed (and per user, so each served list says which rules acted on it). Actions:

``drop_products``  remove candidates whose product is in the rule's product set;
``drop_pairs``     remove (user, product) pairs in the rule's pair set;
``keep_best``      of candidates that are duplicates of one another, keep the best scored per user.

The sets are built from the governed tables by each rule's ``select`` over a :class:`FilterContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from governance.recommendation.data import RecoData


@dataclass
class FilterContext:
    """What the rules read: the current catalog, findings, quarantine, purchases, users' markets."""

    products: pl.DataFrame  # integrated.products (current)
    interactions: pl.DataFrame  # for purchases
    users: pl.DataFrame  # user_key, country
    findings: pl.DataFrame | None = None
    quarantined: pl.DataFrame | None = None

    @classmethod
    def of(cls, data: RecoData) -> FilterContext:
        return cls(data.products, data.interactions, data.users, data.findings, data.quarantined)


@dataclass(frozen=True)
class FilterRule:
    name: str
    description: str
    action: str  # drop_products | drop_pairs | keep_best
    select: Callable[[FilterContext, dict, pl.DataFrame], pl.DataFrame]
    params: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "action": self.action,
                "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()}}


def _not_current(ctx: FilterContext, _: dict, __: pl.DataFrame) -> pl.DataFrame:
    return ctx.products.select("product_id")  # the set to KEEP (see rule)


def _quarantined(ctx: FilterContext, p: dict, _: pl.DataFrame) -> pl.DataFrame:
    if ctx.quarantined is None or ctx.quarantined.is_empty():
        return pl.DataFrame(schema={"product_id": pl.String})
    return ctx.quarantined.filter(~pl.col("rule").is_in(list(p["ignore_rules"]))).select("product_id").unique()


def _flagged(ctx: FilterContext, p: dict, _: pl.DataFrame) -> pl.DataFrame:
    f = ctx.findings
    if f is None or f.is_empty():
        return pl.DataFrame(schema={"product_id": pl.String})
    return f.filter(pl.col("kind").is_in(list(p["kinds"])) & (pl.col("status") == "open")).select(
        "product_id").unique()


def _purchased(ctx: FilterContext, _: dict, cands: pl.DataFrame) -> pl.DataFrame:
    users = cands.select("user_key").unique()
    return (ctx.interactions.filter(pl.col("purchases") > 0).join(users, on="user_key", how="semi")
            .select("user_key", "product_id").unique())


def _market(ctx: FilterContext, p: dict, cands: pl.DataFrame) -> pl.DataFrame:
    """Candidate pairs whose product has no price, or a currency the user's market does not sell in."""
    markets: dict = p["currencies_by_country"]
    allowed = pl.DataFrame([{"country": c, "currency": cur} for c, curs in markets.items() for cur in curs],
                           schema={"country": pl.String, "currency": pl.String})
    countries = [c for c in markets if c != "*"]
    users = ctx.users.select("user_key", pl.col("country") if "country" in ctx.users.columns
                             else pl.lit(None, pl.String).alias("country"))
    pairs = (cands.select("user_key", "product_id").unique()
             .join(users, on="user_key", how="left")
             .join(ctx.products.select("product_id", "price", "currency"), on="product_id", how="left")
             .with_columns(pl.when(pl.col("country").is_in(countries)).then(pl.col("country")).otherwise(pl.lit("*"))
                           .alias("country")))
    ok = pairs.filter(pl.col("price").is_not_null()).join(allowed, on=["country", "currency"], how="semi")
    return pairs.join(ok, on=["user_key", "product_id"], how="anti").select("user_key", "product_id")


def _negative(ctx: FilterContext, p: dict, _: pl.DataFrame) -> pl.DataFrame:
    if "negative_share" not in ctx.products.columns:
        return pl.DataFrame(schema={"product_id": pl.String})
    return ctx.products.filter((pl.col("negative_share") >= p["max_negative_share"])
                               & (pl.col("labelled_reviews") >= p["min_labelled_reviews"])).select("product_id")


def _duplicates(ctx: FilterContext, _: dict, __: pl.DataFrame) -> pl.DataFrame:
    """product_id → group (the kept product of its duplicate pair)."""
    f = ctx.findings
    if f is None or f.is_empty():
        return pl.DataFrame(schema={"product_id": pl.String, "group": pl.String})
    pairs = f.filter(pl.col("kind") == "duplicate").select("product_id", pl.col("other_product_id").alias("group"))
    return pl.concat([pairs, pairs.select(pl.col("group").alias("product_id"), "group")]).unique("product_id")


DEFAULT_RULES: tuple[FilterRule, ...] = (
    FilterRule("not_current", "the product is not in the current catalog (integrated.products)", "keep_products",
               _not_current),
    FilterRule("quarantined", "a row of the product was quarantined by collection or cleaning (except for the "
               "listed rules, whose first occurrence is kept clean)", "drop_products", _quarantined,
               {"ignore_rules": ("key_duplicate", "exact_duplicate")}),
    FilterRule("flagged_by_catalog_checks", "an open catalog finding of these kinds names the product",
               "drop_products", _flagged, {"kinds": ("miscategorised",)}),
    FilterRule("already_purchased", "the user already bought the product", "drop_pairs", _purchased),
    FilterRule("outside_market", "the product has no price, or is priced in a currency the user's market does "
               "not sell in ('*': every other market)", "drop_pairs", _market,
               {"currencies_by_country": {"*": ("USD",)}}),
    FilterRule("negative_reviews", "the product's reviews are strongly negative by labelled.reviews sentiment",
               "drop_products", _negative, {"max_negative_share": 0.6, "min_labelled_reviews": 3}),
    FilterRule("duplicate_product", "another candidate is a duplicate of the same product (catalog findings): "
               "only the best scored is kept", "keep_best", _duplicates),
)


@dataclass
class FilterResult:
    kept: pl.DataFrame
    counts: pl.DataFrame  # rule, action, removed
    per_user: pl.DataFrame  # user_key, filters (e.g. "already_purchased:2,duplicate_product:1")


def apply_filters(cands: pl.DataFrame, ctx: FilterContext, rules: tuple[FilterRule, ...] = DEFAULT_RULES,
                  score: str = "score") -> FilterResult:
    """Run the rules in order; return the kept candidates, removed counts per rule and per user."""
    cur = cands
    counts, removed = [], []
    for rule in rules:
        sel = rule.select(ctx, rule.params, cur)
        before = cur
        if rule.action == "keep_products":
            cur = cur.join(sel.select("product_id").unique(), on="product_id", how="semi")
        elif rule.action == "drop_products":
            cur = cur.join(sel.select("product_id").unique(), on="product_id", how="anti")
        elif rule.action == "drop_pairs":
            cur = cur.join(sel.select("user_key", "product_id"), on=["user_key", "product_id"], how="anti")
        elif rule.action == "keep_best":
            g = cur.join(sel, on="product_id", how="left").with_columns(
                pl.col("group").fill_null(pl.col("product_id")))
            sort_col = score if score in g.columns else "product_id"
            cur = (g.sort(["user_key", sort_col], descending=[False, sort_col == score])
                   .unique(["user_key", "group"], keep="first", maintain_order=True).drop("group"))
        else:
            raise ValueError(f"unknown filter action {rule.action!r}")
        gone = before.join(cur.select("user_key", "product_id"), on=["user_key", "product_id"], how="anti")
        counts.append({"rule": rule.name, "action": rule.action, "removed": gone.height,
                       "description": rule.description})
        if gone.height:
            removed.append(gone.group_by("user_key").len().with_columns(pl.lit(rule.name).alias("rule")))
    per_user = (pl.concat(removed).sort("user_key", "rule").group_by("user_key", maintain_order=True).agg(
        pl.concat_str([pl.col("rule"), pl.col("len").cast(pl.String)], separator=":").str.join(",").alias("filters"))
        if removed else pl.DataFrame(schema={"user_key": pl.String, "filters": pl.String}))
    return FilterResult(cur, pl.DataFrame(counts), per_user)


def rules_table(rules: tuple[FilterRule, ...] = DEFAULT_RULES) -> pl.DataFrame:
    import json

    return pl.DataFrame([{**r.describe(), "params": json.dumps(r.describe()["params"])} for r in rules])
