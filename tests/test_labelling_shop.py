"""Intent/category labelling against a small generated shop's truth."""

import pytest

from governance.shop import generator as shop_generator


@pytest.fixture(scope="module")
def shop():
    from governance.shop.config import ShopConfig
    return shop_generator.generate_shop(ShopConfig(n_events=20_000, seed=11))


@pytest.mark.slow
def test_query_labels_match_generated_truth(shop):
    from governance.labelling.intent import evaluate_queries, label_queries
    out = label_queries(shop.clean["queries"], products=shop.clean["products"], events=shop.clean["events"])
    res = evaluate_queries(out, shop.truth["queries"])
    assert res["n"] > 500
    assert res["intent_accuracy"] >= 0.7
    assert res["category_accuracy"] >= 0.7


@pytest.mark.slow
def test_intent_model_is_registered_with_truth_metrics_and_reused(shop, tmp_path):
    import polars as pl

    from governance.labelling.intent import IntentModel, label_queries
    from governance.labelling.intent_training import load_current_intent, split_queries, train_intent
    queries, products, events = shop.clean["queries"], shop.clean["products"], shop.clean["events"]
    first = train_intent(queries, products=products, events=events, truth=shop.truth["queries"],
                         models_root=tmp_path, log_fn=lambda _: None)
    assert first.promoted and first.version == "v0001"
    assert first.evaluated_against.startswith("the shop's true")
    assert first.metrics["intent_accuracy"] >= 0.7 and first.metrics["category_accuracy"] >= 0.7
    train, held_out = split_queries(queries)
    assert first.n_train == train.height and first.n_eval == held_out.height
    assert held_out.join(train, on="query_id", how="semi").is_empty()
    card = (tmp_path / "intent" / "v0001" / "card.json").read_text()
    assert '"intent_macro_f1"' in card and '"git_commit"' in card

    # the same data again: not better, so the current model stays and the decision says why
    second = train_intent(queries, products=products, events=events, truth=shop.truth["queries"],
                          models_root=tmp_path, log_fn=lambda _: None)
    assert not second.promoted and second.reason.startswith("kept v0001")

    model, version = load_current_intent(tmp_path)
    assert version == "v0001" and isinstance(model, IntentModel) and model.trained
    day = queries.head(200)
    out = label_queries(day, products=products, events=events, model=model, model_version=version)
    assert out["model_version"].unique().to_list() == ["v0001"]
    assert out.filter(pl.col("unlabelable_reason").is_null())["intent"].null_count() == 0
    # the registered model reproduces what the fitted one says on the same queries
    again = label_queries(day, products=products, events=events, model=IntentModel.load(first.model_path))
    assert out["intent"].to_list() == again["intent"].to_list()
    assert out["category"].to_list() == again["category"].to_list()
