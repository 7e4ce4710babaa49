"""Upper-layer fine-tuning over cached lower-layer states (governance.labelling.upper)."""

import numpy as np
import pytest

from governance.labelling.upper import StateCache

from test_labelling_sentiment import HELD_OUT, _data


def test_state_cache_round_trip_duplicates_damage_and_merge(tmp_path, monkeypatch):
    from governance.labelling import upper
    from governance.labelling.embed_cache import text_keys
    rng = np.random.default_rng(0)
    cache = StateCache(tmp_path, "k")
    texts = [f"text {i}" for i in range(6)]
    keys = text_keys(texts)
    states = [rng.normal(size=(i + 2, 4)).astype(np.float16) for i in range(6)]
    cache.store(keys[:3], states[:3])
    got = cache.lookup(text_keys(texts + ["text 1"]))
    assert [g is None for g in got] == [False] * 3 + [True] * 3 + [False]
    for a, b in zip(got[:3], states[:3]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[6], states[1])  # a repeated text shares its states
    (cache.dir / "shard-0.npz").write_bytes(b"not a zip")  # a damaged shard is ignored
    monkeypatch.setattr(upper, "MAX_SHARDS", 2)
    cache.store(keys[3:], states[3:])  # over the limit: everything merged into one shard
    got = cache.lookup(keys)
    assert all(g is not None for g in got)
    for a, b in zip(got, states):
        np.testing.assert_array_equal(a, b)
    assert len(list(cache.dir.glob("shard-*.npz"))) == 1


def test_upper_over_cached_states_equals_the_full_encoder(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from governance.labelling import upper
    from governance.labelling.encoder import base_model_path, load_encoder, load_tokenizer, mean_pool
    path = base_model_path()
    enc, tok = load_encoder(path), load_tokenizer(path)
    texts = ["Lovely dress, fits well", "Broke after a day. Returned it and will never buy this brand again.", "ok"]
    states = upper.lower_states(enc, tok, texts, 4, 128, cache_root=tmp_path, encoder_path=path)
    assert [len(s) for s in states] == [len(x) for x in tok(texts)["input_ids"]]
    b = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        full = mean_pool(enc(**b).last_hidden_state, b["attention_mask"]).numpy()
        h, m = upper._pad(states, np.arange(3))
        part = mean_pool(upper.upper_forward(enc, h, m, 4), m).numpy()
    np.testing.assert_allclose(part, full, atol=2e-2)
    assert np.abs(part - full).max() < 0.05 * np.abs(full).max()

    def boom(*_a, **_k):
        raise AssertionError("cached states must not be recomputed")

    monkeypatch.setattr(upper, "lower_forward", boom)
    again = upper.lower_states(enc, tok, texts, 4, 128, cache_root=tmp_path, encoder_path=path)
    for a, b_ in zip(again, states):
        np.testing.assert_array_equal(a, b_)


@pytest.mark.slow
def test_upper_setting_trains_only_the_top_layers_and_separates(tmp_path):
    torch = pytest.importorskip("torch")
    from governance.labelling.encoder import base_model_path, load_encoder
    from governance.labelling.sentiment import config_for, train_sentiment
    texts, ratings = _data()
    texts, ratings = texts * 3, np.tile(ratings, 3)
    config = config_for("upper", epochs=4, val_fraction=0.2, lr=3e-4, head_lr=3e-3)
    trained = train_sentiment(texts, ratings, config, cache_dir=tmp_path, check_backends=False)
    clf = trained.classifier
    base = load_encoder(base_model_path()).state_dict()
    tuned = clf.net.encoder.state_dict()
    lower = [k for k in base if k.startswith(("embeddings.", *(f"encoder.layer.{i}." for i in range(4))))]
    top = [k for k in base if k.startswith(("encoder.layer.4.", "encoder.layer.5."))]
    assert lower and top
    assert all(torch.equal(base[k], tuned[k]) for k in lower)
    assert any(not torch.equal(base[k], tuned[k]) for k in top)
    assert list((tmp_path / "hidden").iterdir())  # the lower states were cached
    pred = clf.predict([t for t, _ in HELD_OUT])
    assert pred == [label for _, label in HELD_OUT]
