"""The feedback loop: days simulated after training, in which users see the served recommendations.

For a generated shop (its ``truth/manifest.json`` holds the generator's configuration), one day is:

1. **serve** — every visiting user (a ``visit_share`` of the active users) is shown the current
   hybrid's top-k; each slot is replaced, with probability ``epsilon``, by a product drawn uniformly
   from the catalogue (randomised exploration). Every shown item is logged in ``reco.impressions``
   with its position, whether it was explored and the serving policy's propensity of showing it
   there: ``(1 − ε)·[policy's item] + ε / catalogue size``.
2. **click** with a position bias — a shown item is examined with probability ``1 / position^η``
   and clicked with the shop's search click rate times the item's attractiveness (its percentile
   in the generator's own Zipf popularity, ``governance.shop.catalog.build_catalog`` rebuilt from the
   manifest's seed: the same taste the shop's shoppers have);
3. **buy** — a click becomes a cart and a purchase with the shop's own funnel rates
   (``governance.shop.behaviour.P_CART``, ``P_PURCHASE``) at the catalogue's price;
4. **land** — the day's events are written to ``<landing>/events/<day>/events-00.csv`` in the
   contract's columns and the shop's CSV timestamp format, then collected, cleaned and integrated
   like any other day, so the next training sees what the last model caused.

:func:`run_cycles` repeats train → gate → serve → simulate → land → ingest and reports, per cycle,
the held-out metrics of the models and the simulated day's online figures (CTR, purchases,
explored vs exploited CTR, and the inverse-propensity estimate of the policy's CTR).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from governance.storage import Lake

IMPRESSIONS_SCHEMA = {"impression_id": pl.String, "date": pl.Date, "user_key": pl.String, "session_id": pl.String,
                      "position": pl.Int64, "product_id": pl.String, "policy": pl.String, "explored": pl.Boolean,
                      "propensity": pl.Float64, "examined": pl.Boolean, "clicked": pl.Boolean,
                      "purchased": pl.Boolean}


@dataclass(frozen=True)
class FeedbackConfig:
    k: int = 10
    epsilon: float = 0.1
    eta: float = 1.0  # examination probability 1 / position^eta
    visit_share: float = 0.3
    seed: int = 0


def shop_attractiveness(truth_dir: Path) -> pl.DataFrame:
    """source product id → attractiveness in (0, 1]: percentile of the generator's popularity weight."""
    from governance.shop.catalog import build_catalog
    from governance.shop.config import ShopConfig
    from governance.shop.generator import _rngs

    manifest = json.loads((truth_dir / "manifest.json").read_text())["config"]
    fields = {k: v for k, v in manifest.items() if k in ShopConfig.__dataclass_fields__}
    if isinstance(fields.get("end_date"), str):
        fields["end_date"] = date.fromisoformat(fields["end_date"])
    if isinstance(fields.get("fault_rates"), dict):
        fields.pop("fault_rates")
    config = ShopConfig(**fields)
    cat = build_catalog(config, _rngs(config.seed, 7)[0])
    weight = pl.Series(cat.weight)
    return pl.DataFrame({"source_product_id": cat.ids, "attractiveness": (weight.rank("average") / weight.len())})


def simulate_day(recs: pl.DataFrame, day: date, catalogue: pl.DataFrame, users: pl.DataFrame,
                 config: FeedbackConfig = FeedbackConfig()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(impressions, events) of one simulated day.

    recs: user_key, rank, product_id, model_version (the served lists); catalogue: product_id,
    source_product_id, price, attractiveness; users: user_key, source_user_id.
    """
    from governance.shop.behaviour import P_CART, P_CLICK_SEARCH, P_PURCHASE

    rng = np.random.default_rng([config.seed, day.toordinal()])
    lists = recs.filter(pl.col("rank") <= config.k).join(users, on="user_key", how="inner")
    visitors = lists["user_key"].unique().sort()
    visitors = visitors.filter(pl.Series(rng.random(visitors.len()) < config.visit_share))
    shown = lists.filter(pl.col("user_key").is_in(visitors.implode())).sort("user_key", "rank")
    n = shown.height
    cat_ids = catalogue["product_id"].to_numpy()
    explore = rng.random(n) < config.epsilon
    random_items = cat_ids[rng.integers(0, cat_ids.size, n)] if cat_ids.size else np.array([], str)
    shown = shown.with_columns(pl.Series("explored", explore),
                               pl.when(pl.Series(explore)).then(pl.Series(random_items, dtype=pl.String))
                               .otherwise(pl.col("product_id")).alias("shown_id"))
    policy_item = (shown["shown_id"] == shown["product_id"]).to_numpy()
    propensity = (1 - config.epsilon) * policy_item + config.epsilon / max(cat_ids.size, 1)
    shown = shown.with_columns(pl.Series("propensity", propensity)).join(
        catalogue.select(pl.col("product_id").alias("shown_id"), "source_product_id", "price", "attractiveness"),
        on="shown_id", how="left").with_columns(pl.col("attractiveness").fill_null(0.0))
    examined = rng.random(n) < 1.0 / shown["rank"].to_numpy().astype(float) ** config.eta
    clicked = examined & (rng.random(n) < P_CLICK_SEARCH * shown["attractiveness"].to_numpy())
    carted = clicked & (rng.random(n) < P_CART)
    bought = carted & (rng.random(n) < P_PURCHASE)
    session = pl.format("fb-{}-{}", pl.lit(day.strftime("%Y%m%d")), pl.col("user_key").str.slice(2, 12))
    shown = shown.with_columns(pl.Series("examined", examined), pl.Series("clicked", clicked),
                               pl.Series("carted", carted), pl.Series("purchased", bought), session.alias("session_id"))
    impressions = shown.select(
        pl.format("{}-{}", pl.col("session_id"), pl.col("rank")).alias("impression_id"), pl.lit(day).alias("date"),
        "user_key", "session_id", pl.col("rank").cast(pl.Int64).alias("position"),
        pl.col("shown_id").alias("product_id"), pl.col("model_version").alias("policy"), "explored", "propensity",
        "examined", "clicked", "purchased")

    # events: a clicked item is viewed, clicked, maybe carted and bought (the shop's funnel)
    start = (datetime(day.year, day.month, day.day, tzinfo=UTC)
             + timedelta(seconds=1)).timestamp()
    sess_start = {s: start + float(o) for s, o in zip(
        shown["session_id"].unique().sort().to_list(),
        rng.integers(0, 86_000 - 4_000, shown["session_id"].n_unique()), strict=True)}
    steps = []
    c = shown.filter(pl.col("clicked"))
    for step, flag in (("view", "clicked"), ("click", "clicked"), ("add_to_cart", "carted"), ("purchase", "purchased")):
        steps.append(c.filter(pl.col(flag)).with_columns(pl.lit(step).alias("event_type")))
    order = {"view": 0, "click": 1, "add_to_cart": 2, "purchase": 3}
    ev = pl.concat(steps) if steps else shown.clear().with_columns(pl.lit("").alias("event_type"))
    offsets = pl.Series([sess_start[s] for s in ev["session_id"].to_list()], dtype=pl.Float64)
    ev = ev.with_columns(
        (offsets + pl.col("rank") * 60 + pl.col("event_type").replace_strict(order, return_dtype=pl.Int64) * 8)
        .alias("__t"))
    events = ev.sort("session_id", "__t").select(
        pl.format("{}-{}-{}", pl.col("session_id"), pl.col("rank"), pl.col("event_type")).alias("event_id"),
        "session_id", pl.col("source_user_id").alias("user_id"),
        pl.col("source_product_id").alias("item_id"), "event_type",
        (pl.col("__t") * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC")).alias("event_time"),
        pl.when(pl.col("event_type").is_in(["add_to_cart", "purchase"])).then(pl.col("price")).alias("price"),
        pl.when(pl.col("event_type").is_in(["add_to_cart", "purchase"])).then(pl.lit(1, pl.Int64)).alias("quantity"),
        pl.when(pl.col("event_type").is_in(["add_to_cart", "purchase"])).then(pl.lit("USD")).alias("currency"),
        pl.lit("web").alias("device"))
    return impressions.cast(IMPRESSIONS_SCHEMA), events


def land_events(events: pl.DataFrame, landing_root: Path, day: date) -> Path:
    """Write the day's events like the shop lands a CSV day (contract columns, ISO-Z timestamps)."""
    from governance.contracts import CONTRACTS
    from governance.shop.landing import STRFTIME

    columns = CONTRACTS["events"].column_names
    out = events.select([pl.col(c).dt.strftime(STRFTIME["iso_z"]).alias(c) if c == "event_time"
                         else pl.col(c).cast(pl.String) for c in columns])
    path = landing_root / "events" / day.isoformat() / "events-00.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    out.write_csv(path)
    return path


def ingest_day(lake: Lake, landing_root: Path, day: date, integration_config) -> None:
    """Collect, clean and integrate one landed events day (the library calls the stages' assets make)."""
    from governance.cleaning import clean_partition
    from governance.collection import ingest_partition
    from governance.contracts import CONTRACTS
    from governance.integration.pipeline import integrate

    key = day.isoformat()
    run_id = f"feedback-{uuid.uuid4().hex[:12]}"
    # the simulated day has passed when it is ingested (cleaning's future-timestamp rule reads `now`)
    now = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, hours=1)
    ingest_partition(lake, CONTRACTS["events"], landing_root, key, run_id=run_id, ingested_at=now)
    clean_partition(lake, "events", key, run_id=run_id, now=now)
    integrate(lake, integration_config, days=[key], dims=False, run_id=run_id, now=now)


def catalogue_frame(lake: Lake, products: pl.DataFrame, attractiveness: pl.DataFrame) -> pl.DataFrame:
    keys = lake.read("integrated", "product_keys").filter(pl.col("matched_by") == "id").select(
        "source_product_id", pl.col("product_key").alias("product_id"))
    return (products.select("product_id", "price").join(keys, on="product_id", how="inner")
            .join(attractiveness, on="source_product_id", how="left")
            .with_columns(pl.col("attractiveness").fill_null(0.0)))


def user_source_ids(lake: Lake) -> pl.DataFrame:
    return (lake.read("integrated", "user_keys").filter(pl.col("is_canonical"))
            .select("user_key", "source_user_id").unique("user_key"))


def online_figures(impressions: pl.DataFrame) -> dict[str, float]:
    """CTR and purchases per impression; explored vs exploited CTR; IPS estimate of the policy's CTR."""
    if impressions.is_empty():
        return {}
    exploited = impressions.filter(~pl.col("explored"))
    explored = impressions.filter(pl.col("explored"))
    # the deterministic policy's CTR from the logged (ε-greedy) data: clicks on policy items / propensity
    ips = float((impressions["clicked"].cast(pl.Float64) * (~impressions["explored"]).cast(pl.Float64)
                 / impressions["propensity"]).sum() / impressions.height)
    return {"impressions": float(impressions.height), "users": float(impressions["user_key"].n_unique()),
            "ctr": float(impressions["clicked"].mean()), "purchases": float(impressions["purchased"].sum()),
            "ctr_exploited": float(exploited["clicked"].mean()) if exploited.height else float("nan"),
            "ctr_explored": float(explored["clicked"].mean()) if explored.height else float("nan"),
            "ips_policy_ctr": ips}


def run_cycles(lake: Lake, landing_root: Path, truth_dir: Path, registry, *, cycles: int = 2,
               integration_config=None, config: FeedbackConfig = FeedbackConfig(),
               checks: pl.DataFrame | None = None, log: Callable[[str], None] = lambda _: None,
               **train_kwargs) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per-cycle figures, every impression): train → gate → serve → simulate a day → land → ingest."""
    from governance.recommendation import gate as G
    from governance.recommendation.data import load
    from governance.recommendation.pipeline import serve, train_and_gate, write_tables

    attractiveness = shop_attractiveness(truth_dir)
    checks = checks if checks is not None else G.checks_frame([])
    rows, all_impressions = [], []
    for cycle in range(1, cycles + 1):
        data = load(lake)
        stage = train_and_gate(data, registry, checks, log=log, **train_kwargs)
        served = serve(data, registry, k=config.k)
        if served is None:
            raise RuntimeError(f"no promoted model to serve: {stage.hybrid.reason}")
        day = max(data.days) + timedelta(days=1)
        impressions, events = simulate_day(served.recommendations, day,
                                           catalogue_frame(lake, data.products, attractiveness),
                                           user_source_ids(lake), config)
        land_events(events, landing_root, day)
        ingest_day(lake, landing_root, day, integration_config)
        all_impressions.append(impressions)
        figures = online_figures(impressions)
        m = stage.trained.metrics
        row = {"cycle": cycle, "trained_through": max(data.days), "simulated_day": day,
               "hybrid_version": stage.versions.get("reco_hybrid"), "promoted": stage.hybrid.promoted,
               "hybrid_ndcg@10": float(m.filter(pl.col("model") == "hybrid")["ndcg@10"][0]),
               "popularity_ndcg@10": float(m.filter(pl.col("model") == "popularity")["ndcg@10"][0]),
               "events_landed": events.height, **figures}
        rows.append(row)
        log(f"cycle {cycle}: trained through {row['trained_through']}, served {served.users} users, simulated "
            f"{day}: {figures.get('impressions', 0):.0f} impressions, CTR {figures.get('ctr', float('nan')):.3f}, "
            f"{events.height} events landed")
    impressions = pl.concat(all_impressions) if all_impressions else pl.DataFrame(schema=IMPRESSIONS_SCHEMA)
    if lake.exists("reco", "impressions"):  # earlier simulated days stay logged
        earlier = lake.read("reco", "impressions")
        impressions = pl.concat([earlier.filter(~pl.col("date").is_in(impressions["date"].unique().implode())),
                                 impressions])
    write_tables(lake, impressions=impressions)
    return pl.DataFrame(rows), impressions
