"""End-to-end labelling workflows: register/promote a trained model, and the CSV entry points for the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from governance.labelling.registry import ModelCard, ModelRegistry, PromotionDecision

PROMOTION_METRIC = "macro_f1"


def register_sentiment(trained, models_root: Path | str, *, metrics: dict, eval_set: str, training_fp: str,
                       notes: dict | None = None, evaluate_current=None,
                       metric: str = PROMOTION_METRIC, export_onnx: bool = True,
                       figures: tuple | None = None) -> tuple[PromotionDecision, str]:
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
    def write(d: Path) -> None:
        clf.save(d, export_onnx=export_onnx)
        if figures is not None:  # (ratings, proba) of the evaluation set: confusion matrix + reliability diagram
            from governance.labelling.figures import write_card_figures  # noqa: PLC0415
            card.notes["figures"] = {k: Path(v).name for k, v in write_card_figures(d, *figures).items()}

    version = reg.register(TASK, write, card)
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
                                f"`governance train-sentiment REVIEWS.csv --models-root {models_root}` "
                                f"(or materialize models/sentiment in Dagster)")
    return SentimentClassifier.load(reg.path(TASK, v), device=device, version=v)


# --------------------------------------------------------------------------------------------------
# CSV entry points for the `governance` CLI


def _read_table(path: Path | str) -> "pl.DataFrame":
    """A CSV or Parquet file; every failure is one line that says what is wrong with which file."""
    import polars as pl  # noqa: PLC0415
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise ValueError(f"{p} is empty (0 bytes): give a file with a header row and at least one row")
    try:
        df = pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_csv(p, infer_schema_length=10000)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        kind = "Parquet" if p.suffix == ".parquet" else "CSV (UTF-8, comma-separated, with a header row)"
        raise ValueError(f"{p} could not be read as {kind}: {first}") from None
    if df.height == 0:
        raise ValueError(f"{p} has a header but no rows: nothing to do")
    return df


def _require_columns(df, columns, source, what: str = "column") -> None:
    missing = [c for c in columns if c and c not in df.columns]
    if missing:
        raise ValueError(f"{source}: no {what} {missing[0]!r}; the file's columns are {df.columns} "
                         f"(choose one with the matching --{what.replace(' ', '-')} option)")


TITLE_CANDIDATES = ("title", "summary", "Title", "Summary", "review_title", "headline")


def resolve_title_column(df, requested: str | None, source: str, *, model_input: dict | None = None) -> str | None:
    """The title column to use: ``None``/"none" → no title; "auto" → the first of TITLE_CANDIDATES the file
    has (only if a model that reads titles is given, when one is); a name → that column, which must exist."""
    if requested is None or str(requested).lower() == "none":
        return None
    if requested == "auto":
        if model_input is not None and model_input.get("title_used") is False:
            return None
        return next((c for c in TITLE_CANDIDATES if c in df.columns), None)
    if requested not in df.columns:
        raise ValueError(f"{source}: no title column {requested!r}; the file's columns are {df.columns} "
                         f"(use --title-column none for the text alone)")
    return requested


def _write_table(df, path: Path | str) -> None:
    import polars as pl  # noqa: PLC0415
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".parquet":
        df.write_parquet(p)
    else:
        nested = {c: pl.format("[{}]", pl.col(c).list.eval(pl.element().struct.json_encode()).list.join(", "))
                  for c, t in df.schema.items() if isinstance(t, pl.List) and isinstance(t.inner, pl.Struct)}
        (df.with_columns(pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%S%.f%z"), **nested)
         .write_csv(p))


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
                      models_root: Path | str = "data/models", *, title_column: str | None = "auto",
                      progress=None, log_fn=None) -> LabelRunSummary:
    """Label the reviews of a CSV (or parquet) file with the promoted sentiment model; write all columns + labels.

    `title_column` "auto": the file's title/summary column when the model was trained with titles."""
    from governance.labelling.reviews import label_reviews  # noqa: PLC0415
    df = _read_table(in_path)
    if text_column not in df.columns:
        raise ValueError(f"{in_path}: no text column {text_column!r}; the file's columns are {df.columns} "
                         f"(choose one with --text-column)")
    model = load_current_sentiment(models_root)
    title = resolve_title_column(df, title_column, str(in_path), model_input=model.input or None)
    if log_fn:
        used = model.input.get("title_used")
        log_fn(f"model {model.name} {model.version} (trained {'with' if used else 'without' if used is False else 'with unrecorded'}"
               f" titles); reading {'title ' + repr(title) + ' + ' if title else ''}text {text_column!r} "
               f"of {df.height:,} rows")
    out = label_reviews(df, model, text_column=text_column, title_column=title, progress=progress)
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
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such categories file")
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8", errors="replace").splitlines()]
    cats = list(dict.fromkeys(ln for ln in lines if ln and not ln.startswith("#")))
    if not cats:
        raise ValueError(f"{p} lists no categories: write one category path per line ('Women > Dresses > Maxi')")
    return cats


def label_queries_csv(in_path: Path | str, out_path: Path | str, categories_file: Path | str | None = None,
                      query_column: str = "query_text", *, models_root: Path | str | None = None,
                      products_file: Path | str | None = None, events_file: Path | str | None = None,
                      top_k: int = 0, cache_dir: Path | str | None = None, progress=None,
                      log_fn=None) -> LabelRunSummary:
    """Label search queries of a CSV with intent (patterns + embedding model) and a category.

    The categories come from `categories_file`, else from the promoted intent model under `models_root`
    (which is then applied as is). `products_file` (product_id, category_path, title[, description,
    brand]) adds catalog prototypes and brands; `events_file` (session_id, item_id, event_type) click
    evidence for queries with a session_id. `top_k` > 0 writes ``top_categories``."""
    from governance.labelling.intent import MODEL_NAME, MODEL_VERSION, label_queries  # noqa: PLC0415
    df = _read_table(in_path)
    if query_column not in df.columns:
        raise ValueError(f"{in_path}: no query column {query_column!r}; the file's columns are {df.columns} "
                         f"(choose one with --query-column)")
    if top_k < 0:
        raise ValueError(f"--top-k must be 0 (off) or more, not {top_k}")
    products = events = model = None
    version = MODEL_VERSION
    if products_file:
        products = _read_table(products_file)
        _require_columns(products, ["product_id", "category_path"], products_file, "products column")
    if events_file:
        events = _read_table(events_file)
        _require_columns(events, ["session_id", "item_id", "event_type"], events_file, "events column")
    cats = read_categories(categories_file) if categories_file else None
    if not cats and products is None:
        current = None
        if models_root is not None:
            from governance.labelling.intent_training import load_current_intent  # noqa: PLC0415
            current = load_current_intent(models_root)
        if current is None:
            raise ValueError("no categories: give --categories FILE (one path per line) or --products CATALOG, or "
                             f"train an intent model into {models_root or 'the models root'} (Dagster: models/intent)")
        model, version = current
        if log_fn:
            log_fn(f"using the promoted intent model {version} ({len(model.categories)} categories)")
    out = label_queries(df, products=products, events=events, category_names=cats, query_column=query_column,
                        model=model, model_version=version, progress=progress, top_k=top_k, cache_dir=cache_dir)
    _write_table(out, out_path)
    counts = {str(k): int(v) for k, v in out["intent"].value_counts().iter_rows()}
    return LabelRunSummary(rows=out.height, labelled=int(out["intent"].is_not_null().sum()),
                           unlabelable=int(out["unlabelable_reason"].is_not_null().sum()), model_name=MODEL_NAME,
                           model_version=version, out_path=str(out_path), counts=counts)


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
    title_used: bool = False
    figures: dict | None = None   # name -> path of the card's pictures (confusion, reliability)
    per_domain: dict | None = None  # domain -> figures on its held-out part ("this shop" = the source)
    combiner: dict | None = None  # the stacked default's weights: feature -> (negative, neutral, positive)

    def as_dict(self) -> dict:
        return asdict(self)


def train_sentiment_from_csv(csv_path: Path | str, text_column: str = "text", rating_column: str = "rating",
                             models_root: Path | str = "data/models", setting: str = "demo",
                             title_column: str | None = "auto", *, log_fn=None, progress=None,
                             cache_dir: Path | str | None = None, other_shops=None, other_per_domain: int = 1500,
                             **overrides) -> TrainResult:
    """Train on a CSV (or Parquet) file of (text, 1–5 rating): see :func:`train_sentiment_on_frame`."""
    return train_sentiment_on_frame(_read_table(csv_path), text_column, rating_column, models_root, setting,
                                    title_column, source=str(csv_path), log_fn=log_fn, progress=progress,
                                    cache_dir=cache_dir, other_shops=other_shops, other_per_domain=other_per_domain,
                                    **overrides)


def other_shop_parts(other_shops, train_texts: list[str], held_out_texts: list[str], per_domain: int,
                     test_per_domain: int):
    """The other shops' reviews a training run adds: (training sample with a ``composed`` text column,
    {domain: (test texts, ratings)}). A review of this shop's file that is also in a shared set (the file
    may be one of them) never crosses the split: it is kept out of the other shops' training when it is
    held out here, and out of their test parts when it is trained on here — matched on its letters and
    digits alone, since a shared set's text may have lost markup and entities this file still has."""
    import polars as pl  # noqa: PLC0415

    from governance.labelling.review_sets import domain_sample, domain_split  # noqa: PLC0415
    from governance.labelling.text import compose_review_text  # noqa: PLC0415

    def composed(f: pl.DataFrame) -> pl.Series:
        return pl.Series("composed", [compose_review_text(t, x) for t, x in zip(f["title"], f["text"])],
                         dtype=pl.String)

    def key(texts: pl.Expr) -> pl.Expr:  # the same review whatever its markup, entities, case or spacing
        return (texts.str.replace_all(r"<[^>]*>|&#?\w+;", "").str.to_lowercase()
                .str.replace_all(r"[^\p{L}\p{N}]+", ""))

    held_out = pl.select(key(pl.lit(pl.Series(held_out_texts, dtype=pl.String)))).to_series()
    trained = pl.select(key(pl.lit(pl.Series(train_texts, dtype=pl.String)))).to_series()
    o_tr, o_te = (f.with_columns(composed(f)) for f in domain_split(other_shops))
    o_tr = domain_sample(o_tr.filter(~key(pl.col("composed")).is_in(held_out)), per_domain)
    o_te = o_te.filter(~key(pl.col("composed")).is_in(trained))
    tests = {dom: (g["composed"].head(test_per_domain).to_list(), g["rating"].head(test_per_domain).to_numpy())
             for (dom,), g in o_te.group_by(["domain"], maintain_order=True)}
    return o_tr, tests


def train_sentiment_on_frame(df, text_column: str = "text", rating_column: str = "rating",
                             models_root: Path | str = "data/models", setting: str = "demo",
                             title_column: str | None = None, *, source: str = "a data frame", log_fn=None,
                             progress=None, cache_dir: Path | str | None = None, other_shops=None,
                             other_per_domain: int = 1500, other_test_per_domain: int = 500,
                             **overrides) -> TrainResult:
    """Train on a frame of (text, 1–5 rating), evaluate on its held-out 20 % (stratified, random_state=0),
    register the model and promote it if it beats the current one on that same held-out set.

    `other_shops` (``review_sets.load_review_sets``: domain, title, text, rating, or a function that
    returns them, called once the file has proved usable): other shops'
    reviews added to the training part (`other_per_domain` per domain, from each domain's fixed
    training part), and scored on their fixed test parts — the card's per-domain table.

    `title_column`: a column read before the text ("Title. text"), "auto" (a title/summary column when
    there is one) or None; the card and the model record whether a title was used, and labelling then
    reads the same. `cache_dir` (``Settings.model_cache``): the frozen setting's sentence vectors are
    cached there by content hash, so retraining on (mostly) the same reviews skips the encoder."""
    import time  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import polars as pl  # noqa: PLC0415

    from governance.labelling.data import fingerprint  # noqa: PLC0415
    from governance.labelling.metrics import LABELS, sentiment_report, stars_to_class  # noqa: PLC0415
    from governance.labelling.sentiment import SentimentClassifier, config_for, train_sentiment  # noqa: PLC0415
    from governance.labelling.text import compose_review_text, unlabelable_reason  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    if df.height == 0:
        raise ValueError(f"{source} has no rows: nothing to train on")
    if text_column not in df.columns:
        raise ValueError(f"{source}: no text column {text_column!r}; the columns are {df.columns} "
                         f"(choose one with --text-column)")
    if rating_column not in df.columns:
        raise ValueError(f"{source}: no rating column {rating_column!r}; the columns are {df.columns} "
                         f"(choose one with --rating-column)")
    title_column = resolve_title_column(df, title_column, source)
    df = df.with_columns(pl.col(rating_column).cast(pl.Int64, strict=False)).filter(
        pl.col(rating_column).is_between(1, 5) & pl.col(text_column).is_not_null())
    titles = df[title_column].to_list() if title_column else [None] * df.height
    texts = [compose_review_text(t, x) if title_column else x for t, x in zip(titles, df[text_column].to_list())]
    keep = np.array([unlabelable_reason(x) is None for x in texts])
    texts = [t for t, k in zip(texts, keep) if k]
    ratings = df[rating_column].to_numpy()[keep]
    if len(texts) < 20:
        raise ValueError(f"{source}: only {len(texts)} labelable rated reviews; need at least 20")
    classes = sorted(set(stars_to_class(ratings).tolist()))
    if len(classes) < 2:
        raise ValueError(f"{source}: all {len(texts):,} labelable rated reviews are {LABELS[classes[0]]}; a sentiment "
                         f"model needs at least two of negative (1–2★), neutral (3★) and positive (4–5★)")
    idx = np.arange(len(texts))
    strat = ratings if np.bincount(ratings, minlength=6)[1:][np.bincount(ratings, minlength=6)[1:] > 0].min() >= 2 \
        else None
    tr, te = train_test_split(idx, test_size=0.2, random_state=0, stratify=strat)
    tr_t, tr_y = [texts[i] for i in tr], ratings[tr]
    te_t, te_y = [texts[i] for i in te], ratings[te]
    say = log_fn or (lambda _m: None)
    say(f"{source}: {len(texts):,} labelable rated reviews ({len(tr_t):,} to train, {len(te_t):,} held out); "
        f"reading {'title ' + repr(title_column) + ' + ' if title_column else ''}text {text_column!r}")
    config = config_for(setting, **overrides)
    t0 = time.perf_counter()
    if config.own_sample and len(tr_t) > config.own_sample:
        from governance.labelling.review_sets import domain_sample  # noqa: PLC0415
        own = domain_sample(pl.DataFrame({"domain": "this shop", "text": tr_t, "rating": tr_y}), config.own_sample)
        say(f"setting {config.setting}: {own.height:,} of the {len(tr_t):,} training reviews, every star level at "
            f"least a tenth of them (the held-out part is unchanged)")
        tr_t, tr_y = own["text"].to_list(), own["rating"].to_numpy()
    own_n_train = len(tr_t)
    groups = ["this shop"] * own_n_train  # the stacked combiner learns from scores on shops a part did not see
    domain_tests: dict[str, tuple[list[str], np.ndarray]] = {}
    if callable(other_shops):  # loaded only once this file has proved usable
        other_shops = other_shops()
    if other_shops is not None and other_shops.height:
        o_tr, domain_tests = other_shop_parts(other_shops, tr_t, te_t, other_per_domain, other_test_per_domain)
        tr_t, tr_y = tr_t + o_tr["composed"].to_list(), np.concatenate([tr_y, o_tr["rating"].to_numpy()])
        groups += o_tr["domain"].to_list()
        say(f"plus {o_tr.height:,} reviews of {o_tr['domain'].n_unique()} other shops/domains "
            f"({', '.join(sorted(domain_tests))}); each scored on its own held-out part, none of this file's "
            f"held-out reviews trained on")
    precomputed = test_vectors = None
    if config.freeze_encoder and cache_dir is not None and config.normalize_pooled and not config.num_layers:
        from governance.labelling.embed_cache import cached_encode  # noqa: PLC0415
        from governance.labelling.encoder import Embedder  # noqa: PLC0415
        emb = Embedder(max_length=config.max_length, backend="torch")
        extra = [t for texts_, _ in domain_tests.values() for t in texts_]
        say(f"embedding {len(tr_t) + len(te_t) + len(extra):,} texts (frozen encoder, cached by content hash "
            f"under {cache_dir})")
        vecs = cached_encode(emb, tr_t + te_t + extra, cache_dir, progress=progress)
        precomputed, test_vectors = vecs[:len(tr_t)], vecs[len(tr_t):len(tr_t) + len(te_t)]
        pos = len(tr_t) + len(te_t)
        domain_vectors = {}
        for dom, (texts_, _) in domain_tests.items():
            domain_vectors[dom] = vecs[pos:pos + len(texts_)]
            pos += len(texts_)
    trained = train_sentiment(tr_t, tr_y, config, log_fn=log_fn, progress=progress, precomputed=precomputed,
                              cache_dir=cache_dir if config.train_layers else None, groups=groups)
    train_seconds = time.perf_counter() - t0
    clf = trained.classifier
    clf.input = {"title_used": bool(title_column), "title_column": title_column, "text_column": text_column,
                 "formula": "title + '. ' + text (text alone where the title is empty)" if title_column else "text"}
    if test_vectors is not None:
        proba_test = _proba_from_vectors(clf, test_vectors, te_t)
    else:
        proba_test = clf.predict_proba(te_t)
    metrics = sentiment_report(te_y, proba_test)
    say(f"trained in {train_seconds:.0f}s; held-out balanced accuracy {metrics['balanced_accuracy']:.3f}, "
        f"3-class macro-F1 {metrics['macro_f1']:.3f}")
    per_domain = {"this shop": {k: metrics[k] for k in ("n", "balanced_accuracy", "macro_f1", "binary_accuracy")}}
    for dom, (texts_, ys) in domain_tests.items():
        pd_ = (_proba_from_vectors(clf, domain_vectors[dom], texts_) if test_vectors is not None
               else clf.predict_proba(texts_))
        r = sentiment_report(ys, pd_)
        per_domain[dom] = {k: r[k] for k in ("n", "balanced_accuracy", "macro_f1", "binary_accuracy")}
        say(f"  {dom}: balanced accuracy {r['balanced_accuracy']:.3f}, 3-class macro-F1 {r['macro_f1']:.3f}")

    def evaluate_current(path: Path) -> float:
        cur = SentimentClassifier.load(path)
        return sentiment_report(te_y, cur.predict_proba(te_t))[PROMOTION_METRIC]

    decision, version = register_sentiment(
        trained, models_root, metrics=metrics, eval_set=fingerprint(te_t, te_y), training_fp=fingerprint(tr_t, tr_y),
        notes={"source": source, "evaluation": "held-out 20% of the source", "input": clf.input,
               "train_seconds": round(train_seconds, 1), "per_domain": per_domain,
               "trained_on": {"this shop": own_n_train, "other shops": len(tr_t) - own_n_train},
               "combiner": clf.combiner.weights() if clf.combiner is not None else None},
        evaluate_current=evaluate_current, figures=(te_y, proba_test))
    figures = ModelRegistry(models_root).card("sentiment", version).notes.get("figures", {})
    result = TrainResult(version=version, promoted=decision.promoted, reason=decision.reason, setting=setting,
                         metrics=metrics, validation=trained.validation, epoch_seconds=trained.epoch_seconds,
                         train_seconds=train_seconds, model_path=str(trained.classifier.path), n_train=len(tr_t),
                         n_test=len(te_t), title_used=bool(title_column), per_domain=per_domain,
                         figures={k: str(Path(clf.path) / v) for k, v in figures.items()},
                         combiner=clf.combiner.weights() if clf.combiner is not None else None)
    from governance.labelling.figures import write_model_card  # noqa: PLC0415
    write_model_card(result)  # card.md beside card.json: the card for whoever opens the model's folder
    return result


def _proba_from_vectors(clf, vectors, texts):
    """Calibrated probabilities of a frozen-encoder model from its cached sentence vectors (and the texts,
    for the lexical part of the blend)."""
    from governance.labelling.encoder import torch_and_transformers  # noqa: PLC0415
    from governance.labelling.sentiment import apply_calibration_log3  # noqa: PLC0415
    torch, _ = torch_and_transformers()
    clf.net.eval()
    with torch.inference_mode():
        logits = clf.net.head_logits(torch.tensor(vectors).to(clf.device)).float().cpu().numpy()
    return apply_calibration_log3(clf.log3(texts, logits), clf.calibration)
