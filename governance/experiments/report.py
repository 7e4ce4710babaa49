"""The "experiments and search" page: one self-contained HTML file beside the quality report.

``<data_root>/reports/experiments.html`` (Jinja2, inline SVG, no JavaScript): the search
evaluation per data set and component with the published anchors beside it, the queries that
need a merchandiser, the off-policy validation on Open Bandit, and each experiment's table with a
plot of every metric and its interval. Only aggregates and query texts (PII-masked by cleaning)
are shown — no user keys.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from jinja2 import Environment, select_autoescape

from governance.search.evaluate import ANCHORS

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Experiments and search</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.bad{color:#b00}.good{color:#070}.note{color:#555;font-size:.9em}
</style></head><body>
<h1>Experiments and search</h1>
<p class="note">Generated {{ generated }}. Back to the <a href="quality_report.html">quality report</a>.</p>

<h2>Search ranking</h2>
{% if search %}
<p class="note">NDCG@10 gains are exponential in the grade (2<sup>grade</sup>−1). CrowdFlower: median rating 1–4 →
grade 0–3 (gains 0/1/3/7), each query's judged products re-ranked; MRR counts rating 4 as relevant.
Shop: grade 1 viewed/clicked after the query, 2 added to cart, 3 bought; retrieval over the whole catalogue.
Hybrid = BM25 and MiniLM scores fused as z-scores, BM25's weighted by the share of query words it matched;
rrf = reciprocal-rank fusion (K = 60) of the same two, for comparison.</p>
<table><tr><th class="l">data set</th><th class="l">method</th><th>queries</th><th>NDCG@10</th><th>MRR</th>
<th>Recall@100</th><th>p50 ms</th><th>p95 ms</th><th>build s</th></tr>
{% for r in search %}<tr><td class="l">{{ r.dataset }}</td><td class="l">{{ r.method }}</td><td>{{ r.queries }}</td>
<td>{{ f(r["ndcg@10"]) }}</td><td>{{ f(r.mrr) }}</td><td>{{ f(r["recall@100"]) }}</td><td>{{ f(r.p50_ms, 1) }}</td>
<td>{{ f(r.p95_ms, 1) }}</td><td>{{ f(r.build_s, 2) }}</td></tr>{% endfor %}
</table>
{% for ds, ok in beats.items() %}<p>{{ ds }}: the hybrid {% if ok %}<span class="good">beats</span>{% else %}
<span class="bad">does not beat</span>{% endif %} both of its parts on NDCG@10.</p>{% endfor %}
<p class="note">Anchors:
{% for group, values in anchors.items() %}<br>{{ group }}: {% for k, v in values.items() %}{{ k }} {{ v }}{% if not loop.last %}; {% endif %}{% endfor %}{% endfor %}</p>
{% else %}<p>No search evaluation yet (materialize <code>search/evaluation</code>).</p>{% endif %}

<h3>Queries for merchandisers</h3>
{% if poor %}<table><tr><th class="l">query</th><th>searches</th><th class="l">problem</th></tr>
{% for r in poor %}<tr><td class="l">{{ r.query }}</td><td>{{ r.searches }}</td><td class="l">{{ r.problem }}</td></tr>{% endfor %}
</table>{% else %}<p>None found.</p>{% endif %}

<h2>Off-policy evaluation (validation on Open Bandit)</h2>
{% if obd %}<p>Bernoulli TS's CTR estimated from the uniform-random policy's log (ZOZOTOWN sample, campaign all);
its own on-policy CTR is {{ f(obd[0].on_policy_ctr, 4) }} (the random policy's {{ f(obd[0].logging_policy_ctr, 4) }}).</p>
<table><tr><th class="l">estimator</th><th>estimate</th><th>95% CI</th><th>relative error</th><th>OBP's example</th></tr>
{% for r in obd %}<tr><td class="l">{{ r.estimator }}</td><td>{{ f(r.value, 5) }}</td><td>{{ f(r.ci_low, 5) }} – {{ f(r.ci_high, 5) }}</td>
<td>{{ f(r.relative_error) }}</td><td>{{ f(r.obp_relative_error) }}</td></tr>{% endfor %}</table>
{% else %}<p>The Open Bandit sample is not available here.</p>{% endif %}

<h2>Experiment: {{ experiment or "none yet" }}</h2>
{% if results %}
<p>Users: control {{ users.control }}, treatment {{ users.treatment }}. Sample-ratio check:
χ² {{ f(srm.chi2, 2) }}, p = {{ f(srm.p_value, 4) }} —
{% if srm.mismatch %}<span class="bad">MISMATCH: do not read the results</span>{% else %}<span class="good">no mismatch</span>{% endif %}.
Guardrail (revenue per user): {% if guardrail_violated %}<span class="bad">violated</span>{% else %}<span class="good">holds</span>{% endif %}.</p>
<table><tr><th class="l">metric</th><th class="l">kind</th><th>control</th><th>treatment</th><th>difference (95% CI)</th>
<th>relative</th><th>p-value</th><th>variance removed</th></tr>
{% for r in results %}<tr><td class="l">{{ r.metric }}</td><td class="l">{{ r.kind }}</td><td>{{ f(r.control) }}</td><td>{{ f(r.treatment) }}</td>
<td>{{ f(r.diff) }} ({{ f(r.diff_low) }} – {{ f(r.diff_high) }})</td><td>{{ pct(r.relative) }}</td><td>{{ f(r.p_value, 4) }}</td>
<td>{{ pct(r.variance_reduction) }}</td></tr>{% endfor %}</table>
{{ plot | safe }}
<h3>Offline estimate before the test, against the online result</h3>
<p>Clicks per search from the exploration log (logged propensities); online: control {{ f(verdict.online_control) }},
treatment {{ f(verdict.online_treatment) }} ({{ pct(verdict.online_lift) }}, p = {{ f(verdict.online_p_value, 4) }}).</p>
<table><tr><th class="l">estimator</th><th>control</th><th>treatment</th><th>predicted lift</th><th class="l">predicted winner</th><th class="l">agrees with online</th></tr>
{% for name, r in verdict.by_estimator.items() %}<tr><td class="l">{{ name }}</td><td>{{ f(r.control) }}</td><td>{{ f(r.treatment) }}</td>
<td>{{ pct(r.predicted_lift) }}</td><td class="l">{{ r.predicted_winner }}</td><td class="l">{{ "yes" if r.agrees else "no" }}</td></tr>{% endfor %}</table>
{% else %}<p>No experiment has run yet (materialize <code>experiments/search_ab_test</code>).</p>{% endif %}
</body></html>
"""


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def _pct(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{100 * value:+.1f}%"


def interval_plot(rows: list[dict], width: int = 720) -> str:
    """Inline SVG: per metric, each arm's value with its 95% interval on the metric's own scale."""
    metrics = [r for r in rows if r.get("kind") == "metric"]
    if not metrics:
        return ""
    row_h, label_w, pad = 46, 300, 20
    height = row_h * len(metrics) + pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="metrics with 95% intervals">']
    for k, r in enumerate(metrics):
        lo = min(r["control_low"], r["treatment_low"])
        hi = max(r["control_high"], r["treatment_high"])
        span = (hi - lo) or 1.0
        x = lambda v: label_w + (width - label_w - pad) * (v - lo) / span  # noqa: E731
        y0 = pad + k * row_h
        parts.append(f'<text x="0" y="{y0 + 14}" font-size="12">{r["metric"][:44]}</text>')
        for j, (arm, colour) in enumerate((("control", "#555"), ("treatment", "#1f6fb4"))):
            y = y0 + 8 + 14 * j
            parts.append(f'<line x1="{x(r[arm + "_low"]):.1f}" x2="{x(r[arm + "_high"]):.1f}" y1="{y}" y2="{y}" '
                         f'stroke="{colour}" stroke-width="2"/>')
            parts.append(f'<circle cx="{x(r[arm]):.1f}" cy="{y}" r="4" fill="{colour}"><title>{arm}: '
                         f'{r[arm]:.4f} [{r[arm + "_low"]:.4f}, {r[arm + "_high"]:.4f}]</title></circle>')
        parts.append(f'<text x="{width - pad}" y="{y0 + 14}" font-size="10" text-anchor="end" fill="#888">'
                     f'{lo:.3g} … {hi:.3g}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 2}" font-size="10" fill="#555">grey: control, blue: treatment '
                 '(dot = estimate, bar = 95% interval)</text></svg>')
    return "".join(parts)


def _read(lake, layer: str, table: str) -> list[dict]:
    return lake.read(layer, table).to_dicts() if lake.exists(layer, table) else []


def build_report(settings) -> Path:
    """Render the page from the ``search.*`` and ``experiments.*`` tables; returns its path."""
    from governance.search.stage import hybrid_beats_parts  # noqa: PLC0415

    lake = settings.lake()
    search = _read(lake, "search", "evaluation")
    results = _read(lake, "experiments", "ab_results")
    summary_path = Path(settings.data_root) / "search" / "experiment.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    page = env.from_string(TEMPLATE).render(
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), f=_f, pct=_pct,
        search=search, beats=hybrid_beats_parts(pl.DataFrame(search)) if search else {}, anchors=ANCHORS,
        poor=_read(lake, "search", "poor_queries"), obd=_read(lake, "experiments", "open_bandit"),
        results=results, experiment=results[0]["experiment"] if results else None,
        plot=interval_plot(results), users=summary.get("users", {}), srm=summary.get("srm", {}),
        verdict=summary.get("verdict", {}), guardrail_violated=summary.get("guardrail_violated"))
    out = Path(settings.reports_dir) / "experiments.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
