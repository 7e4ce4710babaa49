"""Sentiment evaluation on the real reviews: production model and both baselines, one run, one table.

    python -m governance.labelling.evaluate --setting full      # the real evaluation (CPU: ~1 h)
    python -m governance.labelling.evaluate --setting demo      # frozen encoder + trained head
    python -m governance.labelling.evaluate --distill 3 --teacher v0003   # a 3-layer student of v0003

Data and split: see :mod:`governance.labelling.data`. The production model is trained on the
training part only; its calibration and epoch selection use a 10 % validation split carved from
the training part (never the test split). Figures: see :mod:`governance.labelling.metrics`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from governance.labelling.metrics import format_report_table, sentiment_report


def baseline_embeddings(texts: list[str], cache_dir: Path | str | None = "data/eval") -> np.ndarray:
    """Frozen MiniLM embeddings for the LR baseline, cached on disk by a fingerprint of the texts.

    bf16 autocast where the CPU has native bf16 (for time); fp32 elsewhere.
    """
    from governance.labelling.data import fingerprint  # noqa: PLC0415
    from governance.labelling.encoder import Embedder, cpu_has_bf16  # noqa: PLC0415
    key = fingerprint(texts, ["" for _ in texts])[:16] + ("-bf16" if cpu_has_bf16() else "-fp32")
    path = Path(cache_dir) / "cache" / f"minilm-{key}.npy" if cache_dir else None
    if path is not None and path.is_file():
        return np.load(path)
    e = Embedder().encode(texts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, e)
    return e


def run_evaluation(setting: str = "full", *, models_root: Path | str = "data/models", limit: int | None = None,
                   out: Path | str | None = "data/eval", register: bool = True, baselines: bool = True,
                   data_path: str | None = None, overrides: dict | None = None, log_fn=print) -> dict:
    from governance.labelling.baselines import frozen_lr, vader_proba  # noqa: PLC0415
    from governance.labelling.data import fingerprint, fixed_split, load_real_reviews  # noqa: PLC0415
    from governance.labelling.encoder import Embedder  # noqa: PLC0415
    from governance.labelling.sentiment import config_for, train_sentiment  # noqa: PLC0415
    from governance.labelling.workflows import register_sentiment  # noqa: PLC0415

    df = load_real_reviews(data_path)
    train, test = fixed_split(df)
    if limit:  # smoke runs only: figures are then not comparable
        train, test = train.sample(min(limit, train.height), seed=0), test.sample(min(limit // 4, test.height), seed=0)
    tr_text, tr_y = train["text"].to_list(), train["rating"].to_numpy()
    te_text, te_y = test["text"].to_list(), test["rating"].to_numpy()
    log_fn(f"reviews: {df.height} with text; train {train.height}, test {test.height}; setting {setting!r}")
    config = config_for(setting, **(overrides or {}))
    results: dict = {"setting": setting, "config": config.__dict__, "n_train": train.height, "n_test": test.height,
                     "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.processor()
                     or platform.machine(), "limit": limit}
    rows: dict[str, dict] = {}

    # the frozen encoder's embeddings are shared by the demo model and the frozen+LR baseline
    shared = config.freeze_encoder and config.normalize_pooled and config.num_layers is None
    e_tr = e_te = None
    if shared or baselines:
        t0 = time.perf_counter()
        e_te, e_tr = baseline_embeddings(te_text, cache_dir=out), baseline_embeddings(tr_text, cache_dir=out)
        results["frozen_embedding_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    trained = train_sentiment(tr_text, tr_y, config, log_fn=log_fn, check_backends=not shared,
                              precomputed=e_tr if shared else None)
    results["train_seconds"] = time.perf_counter() - t0
    results["epoch_seconds"] = trained.epoch_seconds
    results["embed_seconds"] = trained.embed_seconds
    results["history"] = trained.history
    results["validation"] = trained.validation
    results["backend_check"] = trained.backend_check
    clf = trained.classifier
    speeds = {}
    if shared:
        # the cached test vectors are what the model's torch-bf16 path computes: no second encoder pass
        import torch  # noqa: PLC0415

        from governance.labelling.sentiment import apply_calibration  # noqa: PLC0415
        from governance.labelling.encoder import cpu_has_bf16  # noqa: PLC0415
        with torch.inference_mode():
            logits = clf.net.head_logits(torch.tensor(e_te).to(clf.device)).float().cpu().numpy()
        main_label = f"production [{setting}] frozen encoder, {'bf16' if cpu_has_bf16() else 'fp32'}"
        rows[main_label] = sentiment_report(te_y, apply_calibration(logits, clf.calibration))
        paths = ("onnx-int8",)
    else:
        main_label = f"production [{setting}] fp32"
        paths = ("torch", "onnx-int8")
    for backend in paths:
        try:
            t0 = time.perf_counter()
            p = clf.predict_proba(te_text, backend=backend)
            speeds[backend] = len(te_text) / (time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            log_fn(f"backend {backend} failed: {e}")
            continue
        label = f"production [{setting}] fp32" if backend == "torch" else f"production [{setting}] ONNX int8"
        rows[label] = sentiment_report(te_y, p)
    results["test_texts_per_second"] = speeds
    prod = rows[main_label]

    if baselines:
        t0 = time.perf_counter()
        rows["baseline VADER"] = sentiment_report(te_y, vader_proba(te_text))
        log_fn(f"VADER done in {time.perf_counter() - t0:.0f}s")
        t0 = time.perf_counter()
        rows["baseline frozen MiniLM + LogisticRegression"] = sentiment_report(te_y, frozen_lr(e_tr, tr_y, e_te))
        log_fn(f"frozen+LR done in {time.perf_counter() - t0:.0f}s")

    results["test"] = rows
    table = format_report_table(rows, title=f"Sentiment on the real reviews, fixed test split (n={test.height}); "
                                            f"production setting {setting!r}")
    results["table"] = table
    if register:
        eval_fp = fingerprint(te_text, te_y)
        decision, version = register_sentiment(trained, models_root, metrics=prod, eval_set=eval_fp,
                                               training_fp=fingerprint(tr_text, tr_y),
                                               notes={"evaluation": "real reviews fixed split",
                                                      "test_rows": {k: {m: v for m, v in r.items()}
                                                                    for k, r in rows.items()}})
        results["registered_version"] = version
        results["promotion"] = decision.reason
        log_fn(decision.reason)
    if out:
        o = Path(out)
        o.mkdir(parents=True, exist_ok=True)
        (o / f"sentiment_eval_{setting}{'_limit' if limit else ''}.json").write_text(
            json.dumps(results, indent=2, default=float))
    print(table)
    ep = trained.epoch_seconds
    ep_txt = (f"{len(ep)} head epochs on cached embeddings, {np.mean(ep):.2f}s each" if config.freeze_encoder
              else "encoder epochs " + ", ".join(f"{s:.0f}s" for s in ep))
    print(f"\ntraining [{setting}]: {results['train_seconds']:.0f}s total; {ep_txt}"
          + (f"; embedding the training data once {trained.embed_seconds:.0f}s" if trained.embed_seconds else "")
          + "\ntest inference texts/s: " + ", ".join(f"{k} {v:.0f}" for k, v in speeds.items()))
    return results


def run_distillation(num_layers: int = 3, *, teacher_version: str | None = None,
                     models_root: Path | str = "data/models", epochs: int = 2, out: Path | str | None = "data/eval",
                     register: bool = True, limit: int | None = None, log_fn=print) -> dict:
    """Distil a fine-tuned sentiment model (``teacher_version``, else the promoted one) into a
    ``num_layers`` student on the training part of the fixed split, then report teacher and student,
    fp32 and ONNX int8, on the test part: accuracy and reviews/s side by side, so the accuracy kept
    for the speed is visible."""
    from governance.labelling.data import fingerprint, fixed_split, load_real_reviews  # noqa: PLC0415
    from governance.labelling.distill import distill_sentiment  # noqa: PLC0415
    from governance.labelling.workflows import load_current_sentiment, register_sentiment  # noqa: PLC0415

    if teacher_version:
        from governance.labelling.registry import ModelRegistry  # noqa: PLC0415
        from governance.labelling.sentiment import TASK, SentimentClassifier  # noqa: PLC0415
        teacher = SentimentClassifier.load(ModelRegistry(models_root).path(TASK, teacher_version),
                                           version=teacher_version)
    else:
        teacher = load_current_sentiment(models_root)
    if teacher.config.freeze_encoder:
        raise ValueError(f"sentiment model {teacher.version} has a frozen encoder: distil from a fine-tuned one "
                         f"(python -m governance.labelling.evaluate --setting full, then --teacher <its version>)")
    train, test = fixed_split(load_real_reviews())
    if limit:  # smoke runs only
        train, test = train.sample(min(limit, train.height), seed=0), test.sample(min(limit // 4, test.height), seed=0)
    tr_text, tr_y = train["text"].to_list(), train["rating"].to_numpy()
    te_text, te_y = test["text"].to_list(), test["rating"].to_numpy()
    log_fn(f"teacher {teacher.version} ({teacher.config.setting}); distilling a {num_layers}-layer student")
    t0 = time.perf_counter()
    trained = distill_sentiment(teacher, tr_text, tr_y, num_layers=num_layers, epochs=epochs, log_fn=log_fn)
    results: dict = {"teacher": teacher.version, "num_layers": num_layers, "train_seconds": time.perf_counter() - t0,
                     "epoch_seconds": trained.epoch_seconds, "history": trained.history,
                     "validation": trained.validation, "backend_check": trained.backend_check}
    rows, speeds = {}, {}
    for who, clf in (("teacher", teacher), ("student", trained.classifier)):
        layers = clf.net.encoder.config.num_hidden_layers
        for backend in ("torch", "onnx-int8"):
            t0 = time.perf_counter()
            p = clf.predict_proba(te_text, backend=backend)
            label = f"{who} ({layers} layers) {'fp32' if backend == 'torch' else 'ONNX int8'}"
            speeds[label] = len(te_text) / (time.perf_counter() - t0)
            rows[label] = sentiment_report(te_y, p)
    results["test"], results["test_texts_per_second"] = rows, speeds
    table = format_report_table(rows, title=f"Distillation on the real reviews, fixed test split (n={test.height})")
    results["table"] = table
    if register:
        student_label = f"student ({num_layers} layers) fp32"
        decision, version = register_sentiment(
            trained, models_root, metrics=rows[student_label], eval_set=fingerprint(te_text, te_y),
            training_fp=fingerprint(tr_text, tr_y),
            notes={"evaluation": "real reviews fixed split", "distilled_from": teacher.version,
                   "test_rows": rows, "test_texts_per_second": speeds})
        results["registered_version"], results["promotion"] = version, decision.reason
        log_fn(decision.reason)
    if out:
        o = Path(out)
        o.mkdir(parents=True, exist_ok=True)
        (o / f"sentiment_distill_{num_layers}l{'_limit' if limit else ''}.json").write_text(
            json.dumps(results, indent=2, default=float))
    print(table)
    print("\ntest reviews/s: " + ", ".join(f"{k} {v:.0f}" for k, v in speeds.items()))
    print("student training: " + ", ".join(f"{s:.0f}s" for s in trained.epoch_seconds) + " per epoch")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setting", default="full", choices=["demo", "full"])
    ap.add_argument("--models-root", default="data/models")
    ap.add_argument("--out", default="data/eval")
    ap.add_argument("--limit", type=int, default=None, help="smoke run on a sample (figures not comparable)")
    ap.add_argument("--no-register", action="store_true")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--only-baseline-embeddings", action="store_true",
                    help="just compute and cache the frozen-encoder embeddings of the fixed split")
    ap.add_argument("--distill", type=int, metavar="LAYERS", default=None,
                    help="distil a fine-tuned model into a student of LAYERS layers instead of training")
    ap.add_argument("--teacher", default=None, help="--distill: the teacher's version (default: the promoted one)")
    a = ap.parse_args(argv)
    if a.distill:
        run_distillation(a.distill, teacher_version=a.teacher, models_root=a.models_root, epochs=a.epochs or 2,
                         out=a.out, register=not a.no_register, limit=a.limit)
        return 0
    if a.only_baseline_embeddings:
        from governance.labelling.data import fixed_split, load_real_reviews  # noqa: PLC0415
        train, test = fixed_split(load_real_reviews())
        baseline_embeddings(test["text"].to_list(), cache_dir=a.out)
        baseline_embeddings(train["text"].to_list(), cache_dir=a.out)
        return 0
    overrides = {k: v for k, v in {"epochs": a.epochs, "max_steps": a.max_steps}.items() if v is not None}
    run_evaluation(a.setting, models_root=a.models_root, limit=a.limit, out=a.out, register=not a.no_register,
                   baselines=not a.no_baselines, overrides=overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
