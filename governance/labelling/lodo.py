"""Leave-one-domain-out evaluation of the sentiment recipe over the shared review sets.

    python -m governance.labelling.lodo [--per-domain 1500] [--test-per-domain 1000]

For every domain D (clothing, food, instruments, headphones — ``review_sets``): train on a sample of
the *other* domains' training parts, test on D's fixed test part; also "all" (every domain's
training sample, tested per domain: the in-domain figure of a multi-domain model). The recipe is
the frozen-encoder head (the ``demo`` setting) on sentence vectors cached by content hash under
``settings.model_cache`` (each text is embedded once, ever). Per held-out domain the table shows
balanced accuracy (1–2★ vs 4–5★), 3-class macro-F1 and plain accuracy, then the same after the
label-shift correction with the target's known star prior, and with the EM-estimated prior.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from governance.labelling.label_shift import em_priors, implied_prior, prior_correct, star_prior
from governance.labelling.review_sets import domain_sample, domain_split, load_review_sets
from governance.labelling.text import compose_review_text


def _texts(df: pl.DataFrame) -> list[str]:
    return [compose_review_text(t, x) for t, x in zip(df["title"].to_list(), df["text"].to_list())]


def _scores(ratings, proba) -> dict:
    from governance.labelling.metrics import binary_scores, macro_f1, stars_to_class  # noqa: PLC0415
    acc, bal = binary_scores(ratings, proba)
    y = stars_to_class(np.asarray(ratings))
    return {"balanced": bal, "binary_acc": acc, "macro_f1": macro_f1(y, proba.argmax(1)),
            "neutral_recall": float((proba.argmax(1)[y == 1] == 1).mean()) if (y == 1).any() else float("nan")}


def _lower(config, texts: list[str], cache_dir):
    from governance.labelling.encoder import base_model_path, load_encoder, load_tokenizer  # noqa: PLC0415
    from governance.labelling.upper import lower_states  # noqa: PLC0415
    path = base_model_path()
    encoder = load_encoder(path)
    n_lower = encoder.config.num_hidden_layers - config.train_layers
    return lower_states(encoder, load_tokenizer(path), texts, n_lower, config.max_length, cache_root=cache_dir,
                        encoder_path=path)


def _proba_from_states(clf, states, texts) -> np.ndarray:
    """Calibrated probabilities of an upper-layer model from cached lower states (same as the full encoder)."""
    from governance.labelling.sentiment import apply_calibration_log3  # noqa: PLC0415
    from governance.labelling.upper import upper_logits  # noqa: PLC0415
    n_lower = len(clf.net.encoder.encoder.layer) - clf.config.train_layers
    return apply_calibration_log3(clf.log3(texts, upper_logits(clf.net, states, n_lower)), clf.calibration)


def run_lodo(shared: Path, cache_dir: Path | None, *, per_domain: int = 1500, test_per_domain: int = 1000,
             setting: str = "demo", log_fn=print, only: str | None = None, verbose: bool = False,
             **overrides) -> dict:
    from governance.labelling.embed_cache import cached_encode  # noqa: PLC0415
    from governance.labelling.encoder import Embedder  # noqa: PLC0415
    from governance.labelling.sentiment import config_for, train_sentiment  # noqa: PLC0415
    from governance.labelling.workflows import _proba_from_vectors  # noqa: PLC0415

    config = config_for(setting, **overrides)
    df = load_review_sets(shared)
    train, test = domain_split(df)
    train = domain_sample(train, per_domain)
    test = pl.concat([g.head(test_per_domain) for _, g in test.group_by(["domain"], maintain_order=True)])
    domains = train["domain"].unique(maintain_order=True).to_list()
    t0 = time.perf_counter()
    all_texts = _texts(train) + _texts(test)
    if config.freeze_encoder:
        emb = Embedder(max_length=config.max_length, backend="torch")
        log_fn(f"{len(domains)} domains, {train.height:,} training + {test.height:,} test texts; embedding (cached)")
        vecs = cached_encode(emb, all_texts, cache_dir, progress=None)
        tv, sv = vecs[:train.height], vecs[train.height:]
    elif config.train_layers:  # upper-layer setting: the lower layers' states, cached by content hash
        log_fn(f"{len(domains)} domains, {train.height:,} training + {test.height:,} test texts; lower-layer states "
               f"(cached)")
        states = _lower(config, all_texts, cache_dir)
        tv, sv = states[:train.height], states[train.height:]
    else:  # whole-encoder fine-tune: the texts themselves
        log_fn(f"{len(domains)} domains, {train.height:,} training + {test.height:,} test texts")
        tv, sv = np.asarray(_texts(train), dtype=object), np.asarray(_texts(test), dtype=object)
    log_fn(f"inputs ready in {time.perf_counter() - t0:.0f}s")
    tr_dom, te_dom = train["domain"].to_numpy(), test["domain"].to_numpy()
    tr_texts, tr_y, te_y = _texts(train), train["rating"].to_numpy(), test["rating"].to_numpy()
    te_texts = _texts(test)
    rows = []
    folds = [*domains, None] if only is None else [None if only == "all" else only]
    for held in folds:
        m = tr_dom != held if held else np.ones(len(tr_dom), dtype=bool)
        t1, c1 = time.perf_counter(), time.process_time()
        fold_texts = [t for t, k in zip(tr_texts, m) if k]
        if config.freeze_encoder:
            trained = train_sentiment(fold_texts, tr_y[m], config, precomputed=tv[m], check_backends=False,
                                      log_fn=log_fn if verbose else (lambda _m: None), groups=tr_dom[m].tolist())
        else:
            trained = train_sentiment(fold_texts, tr_y[m], config, cache_dir=cache_dir, check_backends=False,
                                      log_fn=log_fn if verbose else (lambda _m: None))
        secs, cpu = time.perf_counter() - t1, time.process_time() - c1
        clf = trained.classifier

        def proba(vectors, mask, texts, clf=clf):
            if config.freeze_encoder:
                return _proba_from_vectors(clf, vectors[mask], [t for t, k in zip(texts, mask) if k])
            if not config.train_layers:
                return clf.predict_proba([t for t, k in zip(texts, mask) if k], backend="torch")
            return _proba_from_states(clf, [v for v, k in zip(vectors, mask) if k],
                                      [t for t, k in zip(texts, mask) if k])

        src = implied_prior(proba(tv, m, tr_texts))
        for dom in ([held] if held else domains):
            sel = te_dom == dom
            p = proba(sv, sel, te_texts)
            # the target's known stars: its training part's star distribution (not the test's)
            known = star_prior(train.filter(pl.col("domain") == dom)["rating"].to_numpy())
            est, p_em = em_priors(p, src)
            rows.append({"trained_on": "all but " + dom if held else "all domains", "tested_on": dom,
                         "n_test": int(sel.sum()), "train_seconds": round(secs, 1), "train_cpu_seconds": round(cpu, 1),
                         "plain": _scores(te_y[sel], p),
                         "known_prior": _scores(te_y[sel], prior_correct(p, src, known)),
                         "em_prior": _scores(te_y[sel], p_em), "em_estimate": [round(float(x), 3) for x in est]})
            log_fn(f"{rows[-1]['trained_on']:>22} → {dom:12} balanced {100 * rows[-1]['plain']['balanced']:.1f}%  "
                   f"macro-F1 {rows[-1]['plain']['macro_f1']:.3f}")
    return {"setting": setting, "config": {k: v for k, v in vars(config).items()}, "lexical_weight": config.lexical_weight, "per_domain": per_domain, "test_per_domain": test_per_domain, "rows": rows}


def format_lodo(res: dict) -> str:
    head = (f"{'trained on':24} {'tested on':12} {'n':>5} {'balanced':>9} {'macro-F1':>8} {'acc':>6} "
            f"{'neu-rec':>7} | {'known prior: bal/F1/acc':>24} | {'EM prior: bal/F1/acc':>22}")
    lines = [head, "-" * len(head)]
    for r in res["rows"]:
        p, k, e = r["plain"], r["known_prior"], r["em_prior"]
        lines.append(f"{r['trained_on']:24} {r['tested_on']:12} {r['n_test']:>5} {100 * p['balanced']:8.1f}% "
                     f"{p['macro_f1']:8.3f} {100 * p['binary_acc']:5.1f}% {100 * p['neutral_recall']:6.1f}% | "
                     f"{100 * k['balanced']:6.1f}% {k['macro_f1']:.3f} {100 * k['binary_acc']:5.1f}% | "
                     f"{100 * e['balanced']:6.1f}% {e['macro_f1']:.3f} {100 * e['binary_acc']:5.1f}%")
    return "\n".join(lines)


def main(argv=None) -> int:
    from governance.settings import Settings  # noqa: PLC0415
    ap = argparse.ArgumentParser(description="leave-one-domain-out sentiment evaluation over the shared review sets")
    ap.add_argument("--per-domain", type=int, default=1500, help="training reviews per domain (default %(default)s)")
    ap.add_argument("--test-per-domain", type=int, default=1000, help="test reviews per domain (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print the full results as JSON too")
    ap.add_argument("--lexical-weight", type=float, default=None,
                    help="a fixed TF-IDF blend weight instead of the setting's combination (implies --combine "
                         "blend; 0 = the network alone)")
    ap.add_argument("--setting", default="demo", help="the sentiment setting to evaluate (default %(default)s)")
    ap.add_argument("--only", default=None, help="one fold: a held-out domain, or 'all' (default: every fold)")
    ap.add_argument("--epochs", type=int, default=None, help="override the setting's epochs")
    ap.add_argument("--train-layers", type=int, default=None, help="override the setting's trained top layers")
    ap.add_argument("--max-length", type=int, default=None, help="override the setting's word-piece limit per text")
    ap.add_argument("--combine", choices=("blend", "stack"), default=None,
                    help="override how the frozen setting combines head, TF-IDF and lexicon (default: the setting's)")
    ap.add_argument("--out", default=None, help="also write the results as JSON to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="training progress")
    a = ap.parse_args(argv)
    s = Settings.load()
    if s.shared_data is None or not Path(s.shared_data).is_dir():
        print("no shared review data (settings shared_data); nothing to run")
        return 2
    overrides = {} if a.lexical_weight is None else {"lexical_weight": a.lexical_weight, "combine": "blend"}
    if a.epochs is not None:
        overrides["epochs"] = a.epochs
    if a.train_layers is not None:
        overrides["train_layers"] = a.train_layers
    if a.combine is not None:
        overrides["combine"] = a.combine
    if a.max_length is not None:
        overrides["max_length"] = a.max_length
    res = run_lodo(Path(s.shared_data), s.model_cache, per_domain=a.per_domain, test_per_domain=a.test_per_domain,
                   setting=a.setting, only=a.only, verbose=a.verbose, **overrides)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2))
    print(format_lodo(res))
    if a.json:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
