"""Intent/category labelling against a small generated shop's truth (skipped when the generator is absent)."""

import pytest

shop_generator = pytest.importorskip("governance.shop.generator", reason="the shop generator is not available")


@pytest.mark.slow
def test_query_labels_match_generated_truth():
    from governance.shop.config import ShopConfig

    from governance.labelling.intent import evaluate_queries, label_queries
    shop = shop_generator.generate_shop(ShopConfig(n_events=20_000, seed=11))
    out = label_queries(shop.clean["queries"], products=shop.clean["products"], events=shop.clean["events"])
    res = evaluate_queries(out, shop.truth["queries"])
    assert res["n"] > 500
    assert res["intent_accuracy"] >= 0.7
    assert res["category_accuracy"] >= 0.7
