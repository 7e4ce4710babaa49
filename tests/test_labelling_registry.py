"""Model registry: versioning, cards, CURRENT pointer, guarded promotion (no torch needed)."""

import json

import pytest

from governance.labelling.registry import ModelCard, ModelRegistry


def _card(score, eval_set="E1", metric="macro_f1"):
    return ModelCard(task="sentiment", model_name="m", metrics={metric: score}, eval_set=eval_set,
                     training_data="T1", hyperparameters={"lr": 1e-3})


def _write(payload="weights"):
    return lambda d: (d / "weights.bin").write_text(payload)


def test_first_model_is_promoted_and_card_is_complete(tmp_path):
    reg = ModelRegistry(tmp_path)
    v = reg.register("sentiment", _write(), _card(0.70))
    assert v == "v0001"
    d = reg.promote_if_better("sentiment", v, "macro_f1")
    assert d.promoted and reg.current("sentiment") == "v0001"
    assert "no current" in d.reason
    card = json.loads((tmp_path / "sentiment" / "v0001" / "card.json").read_text())
    for key in ("metrics", "training_data", "hyperparameters", "code_version", "created_at", "eval_set"):
        assert card[key], key
    assert card["code_version"]["governance"]
    assert (tmp_path / "sentiment" / "CURRENT").read_text().strip() == "v0001"


def test_better_model_promoted_worse_refused_with_reason(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1 = reg.register("sentiment", _write(), _card(0.70))
    reg.promote_if_better("sentiment", v1, "macro_f1")
    v2 = reg.register("sentiment", _write(), _card(0.65))
    d = reg.promote_if_better("sentiment", v2, "macro_f1")
    assert not d.promoted
    assert reg.current("sentiment") == v1
    assert "kept v0001" in d.reason and "0.6500" in d.reason and "0.7000" in d.reason
    assert "by more than" not in d.reason  # no margin asked for, none named
    v3 = reg.register("sentiment", _write(), _card(0.74))
    d = reg.promote_if_better("sentiment", v3, "macro_f1")
    assert d.promoted and reg.current("sentiment") == "v0003"
    assert d.current == "v0001" and d.candidate_score == pytest.approx(0.74)
    # a tie keeps the current model
    v4 = reg.register("sentiment", _write(), _card(0.74))
    assert not reg.promote_if_better("sentiment", v4, "macro_f1").promoted
    # a margin is named in the reason when one is asked for
    v5 = reg.register("sentiment", _write(), _card(0.745))
    d = reg.promote_if_better("sentiment", v5, "macro_f1", min_delta=0.01)
    assert not d.promoted and "by more than 0.01" in d.reason
    assert reg.versions("sentiment") == ["v0001", "v0002", "v0003", "v0004", "v0005"]


def test_different_eval_sets_are_not_compared_without_evaluator(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1 = reg.register("sentiment", _write(), _card(0.90, eval_set="A"))
    reg.promote_if_better("sentiment", v1, "macro_f1")
    v2 = reg.register("sentiment", _write(), _card(0.80, eval_set="B"))
    d = reg.promote_if_better("sentiment", v2, "macro_f1")
    assert not d.promoted and "different evaluation set" in d.reason
    # re-scoring the current model on B (0.75) lets the candidate win
    d = reg.promote_if_better("sentiment", v2, "macro_f1", evaluate_current=lambda path: 0.75)
    assert d.promoted and reg.current("sentiment") == v2 and "re-scored" in d.reason


def test_failed_write_leaves_no_version_and_no_temp(tmp_path):
    reg = ModelRegistry(tmp_path)

    def boom(d):
        (d / "partial").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        reg.register("sentiment", boom, _card(0.5))
    assert reg.versions("sentiment") == []
    assert list((tmp_path / "sentiment").iterdir()) == []


def test_missing_metric_refused(tmp_path):
    reg = ModelRegistry(tmp_path)
    v = reg.register("sentiment", _write(), _card(0.7, metric="accuracy"))
    d = reg.promote_if_better("sentiment", v, "macro_f1")
    assert not d.promoted and reg.current("sentiment") is None
