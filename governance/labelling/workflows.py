"""End-to-end labelling workflows: register/promote a trained model, and the CSV entry points for the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from governance.labelling.registry import ModelCard, ModelRegistry, PromotionDecision

PROMOTION_METRIC = "macro_f1"


def register_sentiment(trained, models_root: Path | str, *, metrics: dict, eval_set: str, training_fp: str,
                       notes: dict | None = None, evaluate_current=None,
                       metric: str = PROMOTION_METRIC, export_onnx: bool = True) -> tuple[PromotionDecision, str]:
    """Store the trained classifier as a new version of task ``sentiment`` and promote it if better."""
    from governance.labelling.encoder import BASE_MODEL_NAME  # noqa: PLC0415
    from governance.labelling.sentiment import MODEL_NAME, TASK  # noqa: PLC0415
    reg = ModelRegistry(models_root)
    clf = trained.classifier
    card = ModelCard(
        task=TASK, model_name=MODEL_NAME,
        metrics={k: v for k, v in metrics.items()},
        eval_set=eval_set, training_data=training_fp,
        hyperparameters=asdict(trained.config), base_model=BASE_MODEL_NAME, n_train=trained.n_train,
        notes={"validation": trained.validation, "epoch_seconds": trained.epoch_seconds,
               "embed_seconds": trained.embed_seconds, "history": trained.history,
               "calibration": asdict(clf.calibration), "backend_check": trained.backend_check,
               "preferred_backend": clf.preferred_backend, **(notes or {})},
    )
    version = reg.register(TASK, lambda d: clf.save(d, export_onnx=export_onnx), card)
    clf.version = version
    clf.path = reg.path(TASK, version)
    decision = reg.promote_if_better(TASK, version, metric, evaluate_current=evaluate_current)
    return decision, version


# --------------------------------------------------------------------------------------------------
# loading the current model


def load_current_sentiment(models_root: Path | str = "data/models", *, device: str | None = None):
    """The promoted sentiment model (``<models_root>/sentiment/CURRENT``) as a SentimentClassifier."""
    from governance.labelling.sentiment import TASK, SentimentClassifier  # noqa: PLC0415
    reg = ModelRegistry(models_root)
    v = reg.current(TASK)
    if v is None:
        raise FileNotFoundError(f"no promoted sentiment model under {Path(models_root) / TASK}; train one with "
                                f"train_sentiment_from_csv(...) or `python -m governance.labelling.evaluate`")
    return SentimentClassifier.load(reg.path(TASK, v), device=device, version=v)


# --------------------------------------------------------------------------------------------------
# CSV entry points for the `governance` CLI


def _read_table(path: Path | str) -> "pl.DataFrame":
    import polars as pl  # noqa: PLC0415
    p = Path(path)
    if p.suffix == ".parquet":
        return pl.read_parquet(p)
    return pl.read_csv(p, infer_schema_length=10000)


def _write_table(df, path: Path | str) -> None:
    import polars as pl  # noqa: PLC0415
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".parquet":
        df.write_parquet(p)
    else:
        df.with_columns(pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%S%.f%z")).write_csv(p)


@dataclass
class LabelRunSummary:
    rows: int
    labelled: int
    unlabelable: int
    model_name: str
    model_version: str
    out_path: str
    counts: dict


def label_reviews_csv(in_path: Path | str, out_path: Path | str, text_column: str = "text",
                      models_root: Path | str = "data/models", *, title_column: str | None = None,
                      progress=None) -> LabelRunSummary:
    """Label the reviews of a CSV (or parquet) file with the promoted sentiment model; write all columns + labels."""
    from governance.labelling.reviews import label_reviews  # noqa: PLC0415
    df = _read_table(in_path)
    if text_column not in df.columns:
        raise ValueError(f"{in_path}: no column {text_column!r}; columns are {df.columns}")
    model = load_current_sentiment(models_root)
    out = label_reviews(df, model, text_column=text_column, title_column=title_column, progress=progress)
    _write_table(out, out_path)
    counts = {k: v for k, v in out["sentiment"].value_counts().iter_rows()}
    return LabelRunSummary(rows=out.height, labelled=int(out["sentiment"].is_not_null().sum()),
                           unlabelable=int(out["unlabelable_reason"].is_not_null().sum()), model_name=model.name,
                           model_version=model.version, out_path=str(out_path),
                           counts={str(k): int(v) for k, v in counts.items()})


def read_categories(categories_file: Path | str) -> list[str]:
    """Category paths from a text file (one per line) or a CSV/parquet with a category_path/category column."""
    p = Path(categories_file)
    if p.suffix in (".csv", ".parquet"):
        df = _read_table(p)
        col = next((c for c in ("category_path", "category", "name") if c in df.columns), df.columns[0])
        return list(dict.fromkeys(x for x in df[col].drop_nulls().cast(str).to_list() if x.strip()))
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    return list(dict.fromkeys(ln for ln in lines if ln and not ln.startswith("#")))


def label_queries_csv(in_path: Path | str, out_path: Path | str, categories_file: Path | str,
                      query_column: str = "query_text", *, progress=None) -> LabelRunSummary:
    """Label search queries of a CSV with intent (patterns + embedding model) and a category of `categories_file`."""
    from governance.labelling.intent import MODEL_NAME, MODEL_VERSION, label_queries  # noqa: PLC0415
    df = _read_table(in_path)
    if query_column not in df.columns:
        raise ValueError(f"{in_path}: no column {query_column!r}; columns are {df.columns}")
    cats = read_categories(categories_file)
    out = label_queries(df, category_names=cats, query_column=query_column, progress=progress)
    _write_table(out, out_path)
    counts = {str(k): int(v) for k, v in out["intent"].value_counts().iter_rows()}
    return LabelRunSummary(rows=out.height, labelled=int(out["intent"].is_not_null().sum()),
                           unlabelable=int(out["unlabelable_reason"].is_not_null().sum()), model_name=MODEL_NAME,
                           model_version=MODEL_VERSION, out_path=str(out_path), counts=counts)


@dataclass
class TrainResult:
    version: str
    promoted: bool
    reason: str                 # the promotion decision, human-readable
    setting: str
    metrics: dict               # on the held-out split of the file
    validation: dict            # on the validation split carved from the training part
    epoch_seconds: list
    train_seconds: float
    model_path: str
    n_train: int
    n_test: int

    def as_dict(self) -> dict:
        return asdict(self)


def train_sentiment_from_csv(csv_path: Path | str, text_column: str = "text", rating_column: str = "rating",
                             models_root: Path | str = "data/models", setting: str = "demo",
                             title_column: str | None = None, *, log_fn=None, progress=None,
                             **overrides) -> TrainResult:
    """Train on a CSV (or Parquet) file of (text, 1–5 rating): see :func:`train_sentiment_on_frame`."""
    return train_sentiment_on_frame(_read_table(csv_path), text_column, rating_column, models_root, setting,
                                    title_column, source=str(csv_path), log_fn=log_fn, progress=progress, **overrides)


def train_sentiment_on_frame(df, text_column: str = "text", rating_column: str = "rating",
                             models_root: Path | str = "data/models", setting: str = "demo",
                             title_column: str | None = None, *, source: str = "a data frame", log_fn=None,
                             progress=None, **overrides) -> TrainResult:
    """Train on a frame of (text, 1–5 rating), evaluate on its held-out 20 % (stratified, random_state=0),
    register the model and promote it if it beats the current one on that same held-out set."""
    import time  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import polars as pl  # noqa: PLC0415

    from governance.labelling.data import fingerprint  # noqa: PLC0415
    from governance.labelling.metrics import sentiment_report  # noqa: PLC0415
    from governance.labelling.sentiment import SentimentClassifier, config_for, train_sentiment  # noqa: PLC0415
    from governance.labelling.text import compose_review_text, unlabelable_reason  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    for c in (text_column, rating_column) + ((title_column,) if title_column else ()):
        if c not in df.columns:
            raise ValueError(f"{source}: no column {c!r}; columns are {df.columns}")
    df = df.with_columns(pl.col(rating_column).cast(pl.Int64, strict=False)).filter(
        pl.col(rating_column).is_between(1, 5) & pl.col(text_column).is_not_null())
    titles = df[title_column].to_list() if title_column else [None] * df.height
    texts = [compose_review_text(t, x) if title_column else x for t, x in zip(titles, df[text_column].to_list())]
    keep = np.array([unlabelable_reason(x) is None for x in texts])
    texts = [t for t, k in zip(texts, keep) if k]
    ratings = df[rating_column].to_numpy()[keep]
    if len(texts) < 20:
        raise ValueError(f"{source}: only {len(texts)} labelable rated reviews; need at least 20")
    idx = np.arange(len(texts))
    strat = ratings if np.bincount(ratings, minlength=6)[1:][np.bincount(ratings, minlength=6)[1:] > 0].min() >= 2 \
        else None
    tr, te = train_test_split(idx, test_size=0.2, random_state=0, stratify=strat)
    tr_t, tr_y = [texts[i] for i in tr], ratings[tr]
    te_t, te_y = [texts[i] for i in te], ratings[te]
    t0 = time.perf_counter()
    trained = train_sentiment(tr_t, tr_y, config_for(setting, **overrides), log_fn=log_fn, progress=progress)
    train_seconds = time.perf_counter() - t0
    metrics = sentiment_report(te_y, trained.classifier.predict_proba(te_t))

    def evaluate_current(path: Path) -> float:
        cur = SentimentClassifier.load(path)
        return sentiment_report(te_y, cur.predict_proba(te_t))[PROMOTION_METRIC]

    decision, version = register_sentiment(
        trained, models_root, metrics=metrics, eval_set=fingerprint(te_t, te_y), training_fp=fingerprint(tr_t, tr_y),
        notes={"source": source, "evaluation": "held-out 20% of the source"},
        evaluate_current=evaluate_current)
    return TrainResult(version=version, promoted=decision.promoted, reason=decision.reason, setting=setting,
                       metrics=metrics, validation=trained.validation, epoch_seconds=trained.epoch_seconds,
                       train_seconds=train_seconds, model_path=str(trained.classifier.path), n_train=len(tr_t),
                       n_test=len(te_t))
