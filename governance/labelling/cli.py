"""Labelling sub-commands of the `governance` command (registered by ``governance.cli``).

    governance label-reviews IN OUT [--text-column text] [--title-column auto] [--models-root M]
    governance label-queries IN OUT [--categories FILE] [--products FILE] [--events FILE]
                                    [--query-column query_text] [--top-k 0] [--models-root M]
    governance train-sentiment CSV [--text-column text] [--rating-column rating] [--title-column auto]
                                   [--setting demo|full] [--models-root M]

Errors are one line naming the fix (the ``governance`` command prints them); long steps print
progress lines to stderr when the output is not a terminal (a bar when it is).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

MODELS_ROOT_HELP = ("model registry to %s (default: the settings' models_root, i.e. <data>/models; "
                    "`governance settings` shows it)")
TITLE_HELP = ("column with the review's title or summary, read before the text ('Title. text'); 'auto' (default) "
              "uses a column named title/summary/Title/Summary when the file has one%s; 'none' uses the text alone")

SETTINGS_HELP = """settings (--setting):
  budget (default) the whole encoder fine-tuned (2 epochs) on at most 4,000 of the file's training
         reviews (every star level at least a tenth of them) plus the other shops' review sets,
         stacked with a TF-IDF word-n-gram model and the VADER lexicon: ~7 minutes on 2 CPU cores.
         Leave-one-domain-out on the shared review sets: 90-93 % balanced accuracy on a shop it
         never saw; 94.6 % in-domain on the women's clothing file
  demo   the frozen MiniLM encoder's sentence vectors (computed once, cached by content hash) with
         a small trained head, stacked the same way, the weights learned on scores of shops each
         part was trained without: ~4 minutes for ~24k reviews (the demo's labelling stage trains
         it in under a minute). Leave-one-domain-out 87-93 % on a shop it never saw; 93.2 %
         in-domain on the clothing file
  full   budget on all of the file's training reviews: the best in-domain figures (95.8 % on the
         clothing file), ~18 minutes for ~24k reviews on 2 CPU cores, minutes on a GPU
  upper  the top 2 encoder layers + a linear head fine-tuned (2 epochs) over the lower 4 layers'
         states, computed once and cached by content hash: the full recipe's idea at about a
         third of its cost per epoch (on the shared sets in-domain 86-91 % balanced, 3-class
         macro-F1 0.64-0.69)
In every setting 20 % of the file is held out (stratified, random_state=0), the model is
registered under <models-root>/sentiment/<version> with a model card (metrics, per-domain table,
confusion matrix, reliability diagram, training time, whether a title was used) and promoted only
if it beats the current model on that held-out set."""


class PrintProgress:
    """``progress(done, total)`` that prints a line to stderr at most every `every` seconds (for logs and
    pipes, where no bar is drawn)."""

    def __init__(self, desc: str, every: float = 15.0, stream=None):
        self.desc, self.every = desc, every
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.last = -every

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter() - self.t0
        if now - self.last < self.every and done < total:
            return
        self.last = now
        eta = f", ~{(total - done) * now / done:.0f}s left" if 0 < done < total else ""
        print(f"{self.desc}: {done:,}/{total:,} ({100 * done / max(total, 1):.0f}%) after {now:.0f}s{eta}",
              file=self.stream, flush=True)


def progress_for(desc: str):
    """A printing progress callback when stderr is not a terminal (a tqdm bar is drawn when it is)."""
    return None if sys.stderr.isatty() else PrintProgress(desc)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _models_root(a: argparse.Namespace):
    root = a.models_root or a.settings.models_root
    if Path(root).exists() and not Path(root).is_dir():
        raise ValueError(f"--models-root {root} is a file: give the model registry's folder (default <data>/models)")
    return root


def _readable(path, what: str = "file", kinds: str = "a .csv or .parquet file") -> None:
    """Refuse a directory given where a file is read, in one line (a missing file is reported by the reader)."""
    if path is not None and Path(path).is_dir():
        raise ValueError(f"{path} is a directory, not a {what}: give {kinds}")


def _writable(path) -> None:
    """Refuse, before minutes of labelling, an output that cannot be written: a directory, or a path under a file."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{path} is a directory: give the file to write, e.g. {p / 'labelled.csv'}")
    parent = next((q for q in p.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"{path} cannot be written: {parent} is a file, not a folder")


def _label_reviews(a: argparse.Namespace) -> int:
    from governance.labelling.workflows import label_reviews_csv
    _readable(a.input)
    _writable(a.output)
    s = label_reviews_csv(a.input, a.output, a.text_column, _models_root(a), title_column=a.title_column,
                          progress=progress_for("label-reviews"), log_fn=_say)
    print(f"labelled {s.labelled:,} of {s.rows:,} reviews with {s.model_name} {s.model_version} "
          f"({s.unlabelable:,} unlabelable) → {s.out_path}; {counts_text(s.counts)}")
    return 0


def _label_queries(a: argparse.Namespace) -> int:
    from governance.labelling.workflows import label_queries_csv
    if a.top_k < 0:
        raise ValueError(f"--top-k must be 0 (off) or more, not {a.top_k}")
    _readable(a.input)
    _readable(a.categories, "categories file", "a text file with one path per line, or a .csv/.parquet file")
    _readable(a.products, "catalog file")
    _readable(a.events, "clicks file")
    _writable(a.output)
    s = label_queries_csv(a.input, a.output, a.categories, a.query_column, models_root=_models_root(a),
                          products_file=a.products, events_file=a.events, top_k=a.top_k,
                          cache_dir=a.settings.model_cache, progress=progress_for("label-queries"), log_fn=_say)
    print(f"labelled {s.labelled:,} of {s.rows:,} queries with {s.model_name} {s.model_version} "
          f"({s.unlabelable:,} unlabelable) → {s.out_path}; intents: {counts_text(s.counts)}")
    return 0


def counts_text(counts: dict) -> str:
    """``{'positive': 2, 'None': 1}`` as people read it: "positive 2, no label 1", largest first."""
    named = {("no label" if k in (None, "None", "") else str(k)): int(v) for k, v in (counts or {}).items()}
    return ", ".join(f"{k} {v:,}" for k, v in sorted(named.items(), key=lambda kv: -kv[1])) or "nothing labelled"


def _other_shops(a: argparse.Namespace):
    """The shared review sets of other shops (settings shared_data), or None (--other-shops 0 / absent)."""
    if a.other_shops == 0:
        return None
    shared = a.settings.shared_data
    if shared is None:
        _say("no shared review sets (settings shared_data): training on this file only")
        return None
    from governance.labelling.review_sets import load_review_sets
    df = load_review_sets(shared)
    if df.is_empty():
        _say(f"no review sets under {shared}: training on this file only")
        return None
    return df


def _train(a: argparse.Namespace) -> int:
    from governance.labelling.workflows import train_sentiment_from_csv
    if a.other_shops < 0:
        raise ValueError(f"--other-shops must be 0 (off) or more, not {a.other_shops}")
    _readable(a.input)
    r = train_sentiment_from_csv(a.input, a.text_column, a.rating_column, _models_root(a), setting=a.setting,
                                 title_column=a.title_column, log_fn=_say, progress=progress_for("train-sentiment"),
                                 cache_dir=a.settings.model_cache, other_shops=lambda: _other_shops(a),
                                 other_per_domain=a.other_shops)
    if a.json:
        print(json.dumps({k: v for k, v in r.as_dict().items() if k != "validation"}, indent=2, default=float))
    else:
        print(training_summary(r))
    return 0


def _figure(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def training_summary(r) -> str:
    """What a training run did, for a person: the decision first, then the held-out figures, the per-domain
    table and where the card and its pictures are (``--json`` prints the same as JSON)."""
    decision = "promoted" if r.promoted else "not promoted"
    lines = [f"{decision}: sentiment {r.version} ({r.setting} setting) - {r.reason}",
             f"trained on {r.n_train:,} reviews in {r.train_seconds:.0f}s{' (titles read)' if r.title_used else ''}; "
             f"held out {r.n_test:,}"]
    shown = {k: v for k, v in (r.metrics or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if shown:
        lines.append("held-out figures: " + ", ".join(f"{k} {_figure(v)}" for k, v in shown.items()))
    if r.per_domain:
        columns = list(dict.fromkeys(k for m in r.per_domain.values() for k, v in m.items()
                                     if isinstance(v, int | float) and not isinstance(v, bool)))
        rows = [["domain", *columns]] + [[d, *(_figure(m.get(c, "")) for c in columns)]
                                         for d, m in r.per_domain.items()]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        lines.append("per domain (each on its own held-out part):")
        lines += ["  " + "  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in
                                   enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.append(f"model card: {Path(r.model_path) / 'card.md'}" if (Path(r.model_path) / "card.md").exists()
                 else f"model: {r.model_path}")
    for name, path in (r.figures or {}).items():
        lines.append(f"{name}: {path}")
    return "\n".join(lines)


def _wrap(text: str, width: int = 100) -> str:
    """Paragraphs filled to `width` (a paragraph already laid out in short lines is kept as it is)."""
    return "\n\n".join(textwrap.fill(p, width) if "\n" not in p else p for p in text.split("\n\n"))


def _parser(sub, name: str, help_: str, description: str):
    return sub.add_parser(name, help=help_, description=_wrap(description),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_commands(sub) -> None:
    p = _parser(sub, "label-reviews", "label the reviews of a CSV/Parquet file with the promoted sentiment model",
                "Label each review of IN with the promoted sentiment model (negative / neutral / positive, the "
                "three probabilities, the model's name and version) and write every input column plus the "
                "labels to OUT (CSV or .parquet by extension). Empty, emoji-only, non-English and over-long "
                "texts get no label and an unlabelable_reason. Without a promoted model, train one with "
                "`governance train-sentiment REVIEWS.csv`.")
    p.add_argument("input", metavar="IN", help="reviews file (.csv or .parquet)")
    p.add_argument("output", metavar="OUT", help="labelled file to write (.parquet by extension, else CSV)")
    p.add_argument("--text-column", default="text", help="column with the review text (default: %(default)s)")
    p.add_argument("--title-column", default="auto",
                   help=TITLE_HELP % " and the model was trained with titles (its card says so)")
    p.add_argument("--models-root", default=None, help=MODELS_ROOT_HELP % "read the promoted model from")
    p.set_defaults(func=_label_reviews)

    q = _parser(sub, "label-queries", "label search queries with an intent and a category of your tree",
                "Label each search query of IN with an intent (product, category, brand, deal, support) and a "
                "category of your tree, independently (a support query still gets a category), and write every "
                "input column plus intent, category, category_confident (the deepest path that is at least 50 % "
                "likely: the leaf, else an ancestor) and, with --top-k, the k best categories with scores to OUT. "
                "The categories come from --categories, or the promoted intent model under --models-root "
                "(the labelling stage's models/intent asset trains one: `make demo`, or materialize it in `make dev`). "
                "A catalog (--products) and clicks (--events) "
                "make the categories far better than names alone.")
    q.add_argument("input", metavar="IN", help="queries file (.csv or .parquet)")
    q.add_argument("output", metavar="OUT", help="labelled file to write (.parquet by extension, else CSV)")
    q.add_argument("--categories", default=None,
                   help="category tree: a text file with one path per line ('Women > Dresses > Maxi'), or a "
                        "CSV/Parquet with a category_path/category column (default: the promoted intent model's "
                        "categories)")
    q.add_argument("--products", default=None,
                   help="catalog (.csv/.parquet) with product_id, category_path and title[, description, brand]: "
                        "category prototypes from product texts and brand names (default: none)")
    q.add_argument("--events", default=None,
                   help="clicks (.csv/.parquet) with session_id, item_id, event_type[, event_time]: items clicked "
                        "after a query are weak category labels; the queries then need session_id (default: none)")
    q.add_argument("--query-column", default="query_text", help="column with the query text (default: %(default)s)")
    q.add_argument("--top-k", type=int, default=0,
                   help="also write top_categories: the k best categories with scores (default: %(default)s, off)")
    q.add_argument("--models-root", default=None, help=MODELS_ROOT_HELP % "read the promoted intent model from")
    q.set_defaults(func=_label_queries)

    t = _parser(sub, "train-sentiment", "train, evaluate, register and maybe promote a sentiment model",
                "Train a review sentiment model on a file of (text, 1–5 star rating) rows: 1–2 stars are "
                "negative, 3 neutral, 4–5 positive.\n\n" + SETTINGS_HELP)
    t.add_argument("input", metavar="IN", help="reviews with ratings (.csv or .parquet)")
    t.add_argument("--text-column", default="text", help="column with the review text (default: %(default)s)")
    t.add_argument("--rating-column", default="rating", help="column with the 1–5 star rating (default: %(default)s)")
    t.add_argument("--title-column", default="auto", help=TITLE_HELP % "")
    t.add_argument("--other-shops", type=int, default=1500, metavar="N",
                   help="also train on N reviews per domain of the other shops' review sets under the settings' "
                        "shared_data (clothing, food, instruments, headphones; each scored on its own held-out "
                        "part, the card's per-domain table), so the model holds on other shops; 0 trains on this "
                        "file only (default: %(default)s; skipped when no sets are there)")
    t.add_argument("--setting", default="budget", choices=["budget", "demo", "full", "upper"],
                   help="training recipe: budget, demo, full or upper, each explained above (default: %(default)s)")
    t.add_argument("--models-root", default=None, help=MODELS_ROOT_HELP % "register the model in")
    t.add_argument("--json", action="store_true",
                   help="print the result (metrics, per-domain figures, paths) as JSON instead of a summary "
                        "(default: a summary)")
    t.set_defaults(func=_train)
