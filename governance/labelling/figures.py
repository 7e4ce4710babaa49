"""Model-card pictures as SVG (no plotting dependency): the confusion matrix and the reliability diagram.

``write_card_figures(directory, ratings, proba)`` writes ``confusion.svg`` and ``reliability.svg``
beside a model's card and returns their paths; ``markdown_image(path)`` embeds one as a data URI in
Markdown (what the Dagster metadata shows).
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import numpy as np

from governance.labelling.metrics import LABELS, confusion, stars_to_class


def confusion_svg(matrix, labels=LABELS, title: str = "confusion matrix (rows: truth from stars)") -> str:
    m = np.asarray(matrix, dtype=float)
    k = len(labels)
    cell, left, top = 70, 90, 50
    w, h = left + k * cell + 20, top + k * cell + 40
    row_share = m / np.maximum(m.sum(1, keepdims=True), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<text x="{w / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
             f'<text x="{left + k * cell / 2}" y="{h - 8}" text-anchor="middle">predicted</text>']
    for j, lab in enumerate(labels):
        parts.append(f'<text x="{left + j * cell + cell / 2}" y="{top - 6}" text-anchor="middle">{escape(lab)}</text>')
        parts.append(f'<text x="{left - 6}" y="{top + j * cell + cell / 2 + 4}" text-anchor="end">{escape(lab)}</text>')
    for i in range(k):
        for j in range(k):
            s = row_share[i, j]
            shade = int(255 - 190 * s)
            colour = f"rgb({shade},{shade},255)" if i == j else f"rgb(255,{shade},{shade})"
            x, y = left + j * cell, top + i * cell
            ink, soft = ("#fff", "#eef") if s > 0.55 else ("#000", "#444")  # readable on a dark cell too
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{colour}" stroke="#888"/>')
            parts.append(f'<text x="{x + cell / 2}" y="{y + cell / 2}" text-anchor="middle" fill="{ink}">'
                         f'{int(m[i, j]):,}</text>')
            parts.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 15}" text-anchor="middle" fill="{soft}">'
                         f'{100 * s:.0f}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def reliability_svg(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 10,
                    title: str = "reliability (confidence vs accuracy)") -> str:
    proba = np.asarray(proba, dtype=float)
    conf = proba.max(1) if len(proba) else np.zeros(0)
    correct = (proba.argmax(1) == np.asarray(y_true)).astype(float) if len(proba) else np.zeros(0)
    size, left, top = 240, 56, 30
    w, h = left + size + 90, top + size + 72
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
             f'<text x="{w / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#888"/>',
             f'<line x1="{left}" y1="{top + size}" x2="{left + size}" y2="{top}" stroke="#aaa" stroke-dasharray="4"/>']
    edges = np.linspace(0, 1, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bw = size / n_bins
    for b in range(n_bins):
        sel = bins == b
        if not sel.any():
            continue
        acc = correct[sel].mean()
        x, bh = left + b * bw, acc * size
        parts.append(f'<rect x="{x + 1}" y="{top + size - bh}" width="{bw - 2}" height="{bh}" fill="steelblue" '
                     f'opacity="0.8"><title>{int(sel.sum())} texts, confidence {conf[sel].mean():.2f}, '
                     f'accuracy {acc:.2f}</title></rect>')
    for t in (0, 0.5, 1):
        parts.append(f'<text x="{left + t * size}" y="{top + size + 14}" text-anchor="middle">{t:g}</text>')
        parts.append(f'<text x="{left - 4}" y="{top + size - t * size + 4}" text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{left - 30}" y="{top + size / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 {left - 30} {top + size / 2})">accuracy</text>')
    parts.append(f'<text x="{left + size / 2}" y="{top + size + 30}" text-anchor="middle">confidence '
                 f'(the model\'s top probability)</text>')
    parts.append(f'<text x="{left + size / 2}" y="{h - 20}" text-anchor="middle" fill="#444">bars: accuracy of '
                 f'the texts in each bin</text>')
    parts.append(f'<text x="{left + size / 2}" y="{h - 6}" text-anchor="middle" fill="#444">dashed: perfect '
                 f'calibration</text></svg>')
    return "".join(parts)


def write_card_figures(directory: Path | str, ratings, proba: np.ndarray) -> dict[str, str]:
    """``confusion.svg`` and ``reliability.svg`` of 3-class probabilities against star-derived truth."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    y = stars_to_class(ratings)
    out = {}
    (d / "confusion.svg").write_text(confusion_svg(confusion(y, np.asarray(proba).argmax(1))))
    out["confusion"] = str(d / "confusion.svg")
    (d / "reliability.svg").write_text(reliability_svg(proba, y))
    out["reliability"] = str(d / "reliability.svg")
    return out


def markdown_image(path: Path | str, alt: str = "") -> str:
    """A Markdown image of an SVG file as a data URI (renders in the Dagster UI without a file server)."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"![{alt}](data:image/svg+xml;base64,{data})"


#: what each held-out figure of a sentiment card means, for people reading it in the Dagster UI
METRIC_MEANING = {
    "macro_f1": "3-class F1, averaged over negative / neutral / positive (what promotion compares)",
    "balanced_accuracy": "mean recall of the three classes (a rare class counts as much as a common one)",
    "accuracy_3class": "share of texts given the class their stars imply",
    "binary_accuracy": "negative vs positive only (neutral left out)",
    "ece": "expected calibration error: mean gap between confidence and accuracy (lower is better)",
    "n": "held-out texts scored",
}


def _cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def metrics_markdown(metrics: dict, meaning: dict | None = None) -> str:
    """``metric | value | meaning`` for the numeric figures of a card (a table, not a JSON dump)."""
    meaning = METRIC_MEANING if meaning is None else meaning
    rows = [(k, v) for k, v in (metrics or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)]
    if not rows:
        return "_no figures_"
    lines = ["| metric | value | meaning |", "|---|---:|---|"]
    lines += [f"| {k} | {_cell(v)} | {meaning.get(k, '')} |" for k, v in rows]
    return "\n".join(lines)


def per_domain_markdown(per_domain: dict | None) -> str:
    """``domain | n | figures…``: each domain scored on its own held-out part ("this shop" = the source)."""
    if not per_domain:
        return "_one domain only: the figures above_"
    columns = list(dict.fromkeys(k for m in per_domain.values() for k in m))
    lines = ["| domain | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {d} | " + " | ".join(_cell(m.get(c)) for c in columns) + " |" for d, m in per_domain.items()]
    return "\n".join(lines)


def model_card_markdown(result, inline: bool = True) -> str:
    """The whole model card of a sentiment training run as one Markdown page (what the Dagster UI opens): the
    promotion decision and why, the held-out figures, the per-domain table, training time and size, and the
    confusion matrix and reliability diagram as pictures. `result` is a ``workflows.TrainResult``.

    `inline`: pictures as data URIs (the Dagster UI has no file server); else links to the SVG files beside
    the card (``card.md`` in the model's folder, read in any Markdown viewer)."""
    decision = "promoted" if result.promoted else "not promoted"
    lines = [f"# sentiment {result.version}: {decision}", "",
             f"**Why:** {result.reason}", "",
             f"Setting `{result.setting}`; trained on {result.n_train:,} reviews in {result.train_seconds:,.1f} s; "
             f"scored on {result.n_test:,} held-out reviews; titles {'read' if result.title_used else 'not read'}.",
             "", "## Held-out figures", "", metrics_markdown(result.metrics), "",
             "## Per domain", "", per_domain_markdown(result.per_domain), ""]
    if result.combiner:
        lines += ["## How the parts are combined", "",
                  "Standardised weights of the stacked combiner (coefficient × the score's spread), learned on "
                  "scores of reviews each part was not trained on (whole shops, when it was trained on several): "
                  "a large weight means that part's scores carried over to reviews it had not seen.", "",
                  "| part | → negative | → neutral | → positive |", "| --- | ---: | ---: | ---: |",
                  *(f"| {name.replace('_', ' ')} | {w[0]:+.2f} | {w[1]:+.2f} | {w[2]:+.2f} |"
                    for name, w in result.combiner.items()), ""]
    figures = result.figures or {}
    for name, title in (("confusion", "Confusion matrix"), ("reliability", "Reliability diagram")):
        if figures.get(name) and Path(figures[name]).is_file():
            image = (markdown_image(figures[name], f"{name} (held-out split)") if inline
                     else f"![{name} (held-out split)]({Path(figures[name]).name})")
            lines += [f"## {title}", "", image, ""]
    lines.append(f"Model files: `{result.model_path}`")
    return "\n".join(lines)


def write_model_card(result) -> Path:
    """``card.md`` beside the registered model's ``card.json``: the same card, its pictures linked (not inlined)."""
    path = Path(result.model_path) / "card.md"
    path.write_text(model_card_markdown(result, inline=False) + "\n", encoding="utf-8")
    return path
