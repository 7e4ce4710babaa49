"""Labelling sub-commands of the `governance` command (registered by ``governance.cli``).

    governance label-reviews IN OUT [--text-column text] [--title-column title] [--models-root <data>/models]
    governance label-queries IN OUT --categories FILE [--query-column query_text]
    governance train-sentiment CSV [--text-column text] [--rating-column rating] [--title-column T]
                                   [--models-root <data>/models] [--setting demo|full]
"""

from __future__ import annotations

import argparse
import json


def _label_reviews(a: argparse.Namespace) -> int:
    from governance.labelling.workflows import label_reviews_csv
    s = label_reviews_csv(a.input, a.output, a.text_column, a.models_root or a.settings.models_root,
                          title_column=a.title_column)
    print(f"labelled {s.labelled:,} of {s.rows:,} reviews with {s.model_name} {s.model_version} "
          f"({s.unlabelable:,} unlabelable) → {s.out_path}; {s.counts}")
    return 0


def _label_queries(a: argparse.Namespace) -> int:
    from governance.labelling.workflows import label_queries_csv
    s = label_queries_csv(a.input, a.output, a.categories, a.query_column)
    print(f"labelled {s.labelled:,} of {s.rows:,} queries ({s.unlabelable:,} unlabelable) → {s.out_path}; {s.counts}")
    return 0


def _train(a: argparse.Namespace) -> int:
    from governance.labelling.workflows import train_sentiment_from_csv
    r = train_sentiment_from_csv(a.input, a.text_column, a.rating_column, a.models_root or a.settings.models_root,
                                 setting=a.setting,
                                 title_column=a.title_column, log_fn=print)
    print(json.dumps({k: v for k, v in r.as_dict().items() if k != "validation"}, indent=2, default=float))
    print(r.reason)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("label-reviews", help="label the reviews of a CSV/parquet with the promoted sentiment model")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--text-column", default="text")
    p.add_argument("--title-column", default=None)
    p.add_argument("--models-root", default=None, help="model registry (default: <data>/models)")
    p.set_defaults(func=_label_reviews)
    q = sub.add_parser("label-queries", help="label search queries with intent and a category of your tree")
    q.add_argument("input")
    q.add_argument("output")
    q.add_argument("--categories", required=True, help="text file, one category path per line (or CSV/parquet)")
    q.add_argument("--query-column", default="query_text")
    q.set_defaults(func=_label_queries)
    t = sub.add_parser("train-sentiment", help="train, evaluate, register and maybe promote a sentiment model")
    t.add_argument("input")
    t.add_argument("--text-column", default="text")
    t.add_argument("--rating-column", default="rating")
    t.add_argument("--title-column", default=None)
    t.add_argument("--models-root", default=None, help="model registry (default: <data>/models)")
    t.add_argument("--setting", default="demo", choices=["demo", "full"])
    t.set_defaults(func=_train)
