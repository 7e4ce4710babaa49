"""Labelling on a generated shop, scored against the generator's truth tables.

    python -m governance.labelling.evaluate_shop [--events 300000] [--seed 7]

* sentiment, **demo setting** (frozen encoder + trained head) trained on the shop's reviews (80 %
  split, stratified by rating, random_state=0) and scored on the rest against the truth's
  ``text_sentiment`` (what the text says) as well as the star-derived label;
* the audit queue: how many true contradictions (``is_contradiction``) are among its top entries,
  and the confident-learning noise estimate against the true share of star/text disagreement;
* query intent and leaf category against ``true_intent`` / ``true_leaf_category``, with the session
  click evidence from the shop's events.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl


def run_shop_evaluation(n_events: int = 300_000, seed: int = 7, *, log_fn=print) -> dict:
    from governance.shop.config import ShopConfig
    from governance.shop.generator import generate_shop
    from sklearn.model_selection import train_test_split

    from governance.labelling.audit import build_review_audit, estimate_weak_label_noise
    from governance.labelling.intent import evaluate_queries, label_queries
    from governance.labelling.metrics import LABELS, macro_f1, sentiment_report
    from governance.labelling.reviews import label_reviews, review_texts
    from governance.labelling.sentiment import config_for, train_sentiment

    t0 = time.perf_counter()
    shop = generate_shop(ShopConfig(n_events=n_events, seed=seed))
    log_fn(f"shop generated in {time.perf_counter() - t0:.0f}s")
    res: dict = {"n_events": n_events, "seed": seed}

    # ---- sentiment (demo) ------------------------------------------------------------------------
    rv = shop.clean["reviews"]
    truth = shop.truth["reviews"].select("review_id", "text_sentiment", "is_contradiction").unique("review_id")
    rv = rv.join(truth, on="review_id", how="left")
    texts = review_texts(rv)
    ok = np.array([t is not None for t in texts])
    rv, texts = rv.filter(pl.Series(ok)), [t for t in texts if t is not None]
    idx = np.arange(rv.height)
    tr, te = train_test_split(idx, test_size=0.2, random_state=0, stratify=rv["rating"].to_numpy())
    t0 = time.perf_counter()
    trained = train_sentiment([texts[i] for i in tr], rv["rating"].to_numpy()[tr], config_for("demo"),
                              log_fn=log_fn, check_backends=False)
    res["demo_train_seconds"] = time.perf_counter() - t0
    clf = trained.classifier
    test = rv[te]
    t0 = time.perf_counter()
    labelled = label_reviews(test, clf, backend="torch")
    res["label_seconds"] = time.perf_counter() - t0
    p = labelled.select("p_negative", "p_neutral", "p_positive").to_numpy()
    res["sentiment_vs_stars"] = sentiment_report(test["rating"].to_numpy(), p)
    ts = np.array([LABELS.index(s) for s in test["text_sentiment"].to_list()])
    res["sentiment_vs_text_truth"] = {"accuracy": float((p.argmax(1) == ts).mean()),
                                      "macro_f1": macro_f1(ts, p.argmax(1))}
    # ---- audit -----------------------------------------------------------------------------------
    audit = build_review_audit(labelled)
    contra = labelled.filter(pl.col("is_contradiction"))["review_id"].to_list()
    top = audit.head(max(1, len(contra)))["review_id"].to_list()
    res["audit"] = {"true_contradictions": len(contra), "queue_rows": audit.height,
                    "contradictions_found_in_top_k": len(set(top) & set(contra)),
                    "k": len(top),
                    "flagged_contradiction_rows": int((audit["issue"] == "contradiction").sum())}
    noise = estimate_weak_label_noise(labelled)
    stars = np.where(test["rating"].to_numpy() <= 2, 0, np.where(test["rating"].to_numpy() == 3, 1, 2))
    res["noise"] = {"estimated": noise.noise_rate, "true_star_vs_text_disagreement": float((stars != ts).mean())}

    # ---- queries ---------------------------------------------------------------------------------
    q = shop.clean["queries"]
    t0 = time.perf_counter()
    lq = label_queries(q, products=shop.clean["products"], events=shop.clean["events"])
    res["query_label_seconds"] = time.perf_counter() - t0
    res["queries"] = evaluate_queries(lq, shop.truth["queries"])
    lq_ns = label_queries(q, products=shop.clean["products"], events=None)
    res["queries_without_clicks"] = evaluate_queries(lq_ns, shop.truth["queries"])
    j = lq.join(shop.truth["queries"].select("query_id", "true_intent"), on="query_id")
    res["intent_confusion"] = (j.group_by("true_intent", "intent").len().sort("true_intent", "len", descending=[False, True])
                               .to_dicts())
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="labelling vs a generated shop's truth")
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    import json
    res = run_shop_evaluation(a.events, a.seed)
    print(json.dumps(res, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
