"""The feedback loop: served lists → impressions with propensities → position-biased clicks and purchases →
events landed and ingested like any other day → the next training sees them (two cycles)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from governance.recommendation.feedback import FeedbackConfig, online_figures, simulate_day


def _served(n_users: int = 3000, k: int = 10) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    users = [f"u_{i:012d}" for i in range(n_users)]
    recs = pl.DataFrame({"user_key": np.repeat(users, k), "rank": np.tile(np.arange(1, k + 1), n_users),
                         "product_id": [f"p{j}" for _ in users for j in range(k)], "model_version": "v0007"})
    catalogue = pl.DataFrame({"product_id": [f"p{j}" for j in range(50)],
                              "source_product_id": [f"src{j}" for j in range(50)], "price": 10.0,
                              "attractiveness": [1.0 if j < k else 0.1 for j in range(50)]})  # the served ones appeal
    ids = pl.DataFrame({"user_key": users, "source_user_id": [f"s{i}" for i in range(n_users)]})
    return recs, catalogue, ids


def test_a_simulated_day_logs_propensities_position_bias_and_the_funnel():
    recs, catalogue, ids = _served()
    config = FeedbackConfig(k=10, epsilon=0.2, visit_share=0.5, seed=3)
    imp, events = simulate_day(recs, date(2026, 10, 9), catalogue, ids, config)
    visitors = imp["user_key"].n_unique()
    assert 0.4 < visitors / 3000 < 0.6 and imp.height == visitors * 10
    assert abs(imp["explored"].mean() - 0.2) < 0.03
    # the propensity of the shown item under the ε-greedy policy
    policy = imp.join(recs.select("user_key", pl.col("rank").alias("position"), pl.col("product_id").alias("pol")),
                      on=["user_key", "position"])
    same = policy["product_id"] == policy["pol"]
    expected = np.where(same.to_numpy(), 0.8 + 0.2 / 50, 0.2 / 50)
    np.testing.assert_allclose(policy["propensity"].to_numpy(), expected)
    ctr = imp.group_by("position").agg(pl.col("clicked").mean()).sort("position")["clicked"].to_numpy()
    assert ctr[0] > 2 * ctr[4] > 0 and ctr[0] > 3 * ctr[9]  # examination falls as 1/position
    assert not (imp["purchased"] & ~imp["clicked"]).any() and not (imp["clicked"] & ~imp["examined"]).any()
    counts = dict(events.group_by("event_type").len().iter_rows())
    assert counts["view"] == counts["click"] == imp["clicked"].sum()
    assert counts.get("purchase", 0) == imp["purchased"].sum() <= counts.get("add_to_cart", 0)
    assert events["user_id"].str.starts_with("s").all() and events["item_id"].str.starts_with("src").all()
    assert events.filter(pl.col("event_type") == "purchase")["price"].is_not_null().all()
    assert events["event_time"].dt.date().unique().to_list() == [date(2026, 10, 9)]
    figures = online_figures(imp)
    assert figures["ctr_exploited"] > figures["ctr_explored"]  # exploration shows less appealing items
    assert abs(figures["ips_policy_ctr"] - figures["ctr_exploited"]) < 0.03
    again, _ = simulate_day(recs, date(2026, 10, 9), catalogue, ids, config)
    assert again.equals(imp)  # seeded


@pytest.mark.slow
def test_two_feedback_cycles_land_days_the_next_training_sees(tmp_path):
    """A generated shop through collection, cleaning and integration; then two cycles of train → serve →
    simulate → land → ingest. Each cycle's day is integrated and becomes the next cycle's held-out day."""
    from governance.cleaning import clean_partition
    from governance.collection import ingest_partition, landed_partitions
    from governance.contracts import CONTRACTS
    from governance.integration.config import IntegrationConfig
    from governance.integration.pipeline import integrate
    from governance.labelling.registry import ModelRegistry
    from governance.recommendation.feedback import run_cycles
    from governance.settings import DEMO_PSEUDONYM_SECRET
    from governance.shop import ShopConfig, generate_shop, land_shop
    from governance.storage import Lake

    landing, truth = tmp_path / "landing", tmp_path / "truth"
    land_shop(generate_shop(ShopConfig(n_events=30_000, days=4, seed=5, end_date=date(2026, 10, 8))), landing, truth)
    lake = Lake.at(tmp_path / "lake")
    now, run = datetime(2026, 10, 9, 6, tzinfo=UTC), uuid.uuid4().hex
    for source in ("products", "users"):
        ingest_partition(lake, CONTRACTS[source], landing, None, run_id=run, ingested_at=now)
        clean_partition(lake, source, None, run_id=run, now=now)
    for source in ("events", "reviews", "queries"):
        for day in landed_partitions(landing, source):
            ingest_partition(lake, CONTRACTS[source], landing, day, run_id=run, ingested_at=now)
            clean_partition(lake, source, day, run_id=run, now=now)
    config = IntegrationConfig().with_(pseudonym_secret=DEMO_PSEUDONYM_SECRET)
    integrate(lake, config, now=now)

    rows, impressions = run_cycles(lake, landing, truth, ModelRegistry(tmp_path / "models"), cycles=2,
                                   integration_config=config, config=FeedbackConfig(k=10, epsilon=0.1, seed=1),
                                   ranker_rounds=10)
    assert rows["cycle"].to_list() == [1, 2]
    assert rows["simulated_day"].to_list() == [date(2026, 10, 9), date(2026, 10, 10)]
    assert rows["trained_through"][1] == date(2026, 10, 9)  # cycle 2 trained on the day cycle 1 caused
    assert (rows["impressions"] > 0).all() and (rows["ctr"] > 0).all()
    days = lake.partitions("integrated", "interactions")
    assert days[-2:] == ["2026-10-09", "2026-10-10"]
    fed = lake.read("integrated", "interactions", "2026-10-09")
    clicked = impressions.filter(pl.col("clicked") & (pl.col("date") == date(2026, 10, 9)))
    # every clicked impression became an interaction of that user with that product
    assert clicked.select("user_key", "product_id").unique().join(
        fed, on=["user_key", "product_id"], how="anti").is_empty()
    stored = lake.read("reco", "impressions")
    assert stored.height == impressions.height and stored["propensity"].is_between(0, 1).all()
