"""The analysts' quality report: one self-contained HTML file, plus one validation page per suite.

``build_report`` writes ``quality_report.html`` (a stable path, for a link on the Dagster asset page),
``index.html`` (every page, and ``experiments.html`` when one lies beside it) and
``suites/<table>.html``. Failures are counted as ``results.failure_counts`` defines: the latest result
of each table, partition and check — GX expectations, anomaly tests and every stage's own checks
(``results.record_check_result``) alike — so the counts equal what the runs reported. With a
``lake`` it also groups orphaned rows by their root cause (``causes.root_causes``) and shows the
integration stage's rejections.

Everything is inline (CSS and SVG charts, no scripts, no fonts or CDNs), so the file opens offline
and can be mailed. Built only from the quality store and the suite files, never from table rows; every
text that reaches the page passes ``scrub`` (no e-mail/phone shapes) and values of PII columns are
never stored in the first place.

Why our own validation pages instead of GX Data Docs: Data Docs are built from a file-backed GX
project's validation-result store and load Bootstrap/jQuery/Font Awesome from CDNs. Our checks run
in separate Dagster processes on an ephemeral GX context (nothing persisted on the GX side), and
the report must not fetch anything from the network, so each suite gets a page rendered here from
the stored results (GX's own observed values, counts and examples).
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from governance.contracts import CONTRACTS, LINEAGE_COLUMNS
from governance.quality.anomalies import DriftConfig, day_count
from governance.quality.profile import NULL_SEGMENT_PREFIX
from governance.quality.results import KIND_CHECK, FailureCounts, count_failures
from governance.quality.store import SNAPSHOT_KEY, CheckRecord, QualityStore
from governance.quality.suites import Suite, load_suites
from governance.quality.validation import scrub

STATUS_ORDER = {"failed": 3, "warn": 2, "passed": 1, "no data": 0}
STATUS_LABEL = {"failed": "FAILED", "warn": "WARNINGS", "passed": "PASSED", "no data": "NO DATA"}
PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e",
           "#9498a0")
TREND_PARTITIONS = 60
MAX_FAILURES = 40

CSS = """
:root{--fg:#1d2330;--muted:#5d6677;--line:#dde2ea;--bg:#f6f7f9;--card:#fff;--red:#c62828;--amber:#b26a00;
--green:#2e7d32;--grey:#757575}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}header{background:#1d2330;color:#fff;padding:22px 32px}
header h1{margin:0 0 4px;font-size:24px}header .sub{color:#c9d1dd}main{padding:20px 32px 48px;max-width:1320px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 18px}
h2{font-size:18px;margin:0 0 12px}h3{font-size:15px;margin:16px 0 8px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.pill{display:inline-block;border-radius:10px;
padding:1px 9px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}.failed{background:var(--red)}.warn{background:var(--amber)}
.passed{background:var(--green)}.nodata{background:var(--grey)}.big{font-size:20px;padding:4px 16px;border-radius:14px}
.kpis{display:flex;gap:14px;flex-wrap:wrap;margin-top:14px}.kpi{background:#2a3242;border-radius:8px;padding:8px 14px}
.kpi b{display:block;font-size:20px}.kpi span{color:#c9d1dd;font-size:12px}.muted{color:var(--muted)}
.card{border:1px solid var(--line);border-left:4px solid var(--red);border-radius:6px;padding:10px 14px;margin:10px 0}
.card.warn{border-left-color:var(--amber);background:none}.card .meta{color:var(--muted);font-size:12px}
code{background:#eef1f5;border-radius:4px;padding:1px 5px;font-size:12px}.grid{display:grid;
grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px 28px}.grid>div{max-width:640px}
svg{max-width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin:4px 0 0}.legend i{display:inline-block;
width:10px;height:10px;margin-right:4px;border-radius:2px}a{color:#2553b8}nav a{margin-right:14px;color:#c9d1dd}
.examples td,.examples th{font-size:12px;padding:3px 6px}
"""


def h(value: Any) -> str:
    """Escape for HTML after removing anything e-mail or phone shaped."""
    return html.escape(str(scrub("" if value is None else value)))


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in list(value.items())[:8])
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + (", …" if len(value) > 8 else "") + "]"
    return str(value)


def pill(status: str) -> str:
    cls = {"failed": "failed", "warn": "warn", "passed": "passed"}.get(status, "nodata")
    return f'<span class="pill {cls}">{h(STATUS_LABEL.get(status, status))}</span>'


# -------------------------------------------------------------------------------------- charts

def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _tick(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"


def svg_line(points: list[tuple[str, float]], title: str, width: int = 600, height: int = 200,
             marks: set[str] | None = None, fmt=lambda v: f"{v:,.0f}", percent: bool = False) -> str:
    """A line chart with axis labels; ``marks`` highlights some x labels (anomalies) in red."""
    if not points:
        return f'<p class="muted">{h(title)}: no data yet.</p>'
    left, right, top, bottom = 64, 26, 26, 34
    w, hh = width - left - right, height - top - bottom
    ymax = _nice_max(max(v for _, v in points) or 1)
    n = len(points)
    xs = [left + (w * i / (n - 1) if n > 1 else w / 2) for i in range(n)]
    ys = [top + hh - hh * (v / ymax) for _, v in points]
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" role="img" aria-label="{h(title)}" '
           f'xmlns="http://www.w3.org/2000/svg">',
           f'<text x="{left}" y="16" font-size="13" font-weight="600" fill="#1d2330">{h(title)}</text>']
    for i in range(5):
        y = top + hh * i / 4
        val = ymax * (1 - i / 4)
        label = f"{val:.0%}" if percent else (fmt(val) if val == int(val) else f"{val:,.1f}")
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e9ef"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5d6677">{h(label)}</text>')
    step = max(1, n // 6)
    for i in list(range(0, n, step)) + ([n - 1] if (n - 1) % step else []):
        out.append(f'<text x="{xs[i]:.1f}" y="{height - 12}" font-size="11" text-anchor="middle" '
                   f'fill="#5d6677">{h(points[i][0][5:] if len(points[i][0]) == 10 else points[i][0])}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(zip(xs, ys, strict=True)))
    out.append(f'<path d="{path}" fill="none" stroke="#4269d0" stroke-width="2"/>')
    for (label, v), x, y in zip(points, xs, ys, strict=True):
        bad = marks and label in marks
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4.5 if bad else 2.5}" fill="{"#c62828" if bad else "#4269d0"}">'
                   f'<title>{h(label)}: {h(f"{v:.1%}" if percent else fmt(v))}{" — anomaly" if bad else ""}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def svg_stacked_bars(partitions: list[str], series: dict[str, list[int]], title: str, width: int = 600,
                     height: int = 220) -> str:
    if not partitions or not series:
        return f'<p class="muted">{h(title)}: nothing quarantined.</p>'
    left, right, top, bottom = 56, 12, 26, 34
    w, hh = width - left - right, height - top - bottom
    totals = [sum(vals[i] for vals in series.values()) for i in range(len(partitions))]
    ymax = _nice_max(max(totals) or 1)
    n = len(partitions)
    bw = min(max(2.0, w / n * 0.75), 48.0)
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" role="img" aria-label="{h(title)}" '
           f'xmlns="http://www.w3.org/2000/svg">',
           f'<text x="{left}" y="16" font-size="13" font-weight="600" fill="#1d2330">{h(title)}</text>']
    for i in range(5):
        y = top + hh * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e9ef"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5d6677">'
                   f'{_tick(ymax * (1 - i / 4))}</text>')
    for i, part in enumerate(partitions):
        x = left + w * (i + 0.5) / n - bw / 2
        y = top + hh
        for k, (rule, vals) in enumerate(series.items()):
            v = vals[i]
            if not v:
                continue
            bh = hh * v / ymax
            y -= bh
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                       f'fill="{PALETTE[k % len(PALETTE)]}"><title>{h(part)} · {h(rule)}: {v:,}</title></rect>')
    step = max(1, n // 6)
    for i in range(0, n, step):
        label = partitions[i][5:] if len(partitions[i]) == 10 else partitions[i]
        out.append(f'<text x="{left + w * (i + 0.5) / n:.1f}" y="{height - 12}" font-size="11" text-anchor="middle" '
                   f'fill="#5d6677">{h(label)}</text>')
    out.append("</svg>")
    legend = "".join(f'<span><i style="background:{PALETTE[k % len(PALETTE)]}"></i>{h(rule)}</span>'
                     for k, rule in enumerate(series))
    return "".join(out) + f'<div class="legend">{legend}</div>'


def _heat_fill(v: float, scale: str = "red") -> str:
    t = min(1.0, math.sqrt(max(v, 0.0)))  # sqrt: small rates stay visible
    if scale == "blue":  # by design: white → the palette's blue
        return f"rgb({int(255 - 189 * t)},{int(255 - 150 * t)},{int(255 - 47 * t)})"
    return f"rgb({int(255 - 57 * t)},{int(255 - 215 * t)},{int(255 - 215 * t)})"


def svg_heatmap(rows: list[str], cols: list[str], values: dict[tuple[str, str], float], title: str,
                width: int = 600, scales: dict[str, str] | None = None) -> str:
    """Null rates: one row per column of the table, one cell per partition, darker = more nulls.

    ``scales``: row → "red" (nulls are faults) or "blue" (nulls by design); red by default."""
    if not rows or not cols:
        return f'<p class="muted">{h(title)}: no nulls in any column.</p>'
    scales = scales or {}
    left, top, cell_h = 270, 26, 16
    w = width - left - 10
    cw = w / len(cols)
    height = top + cell_h * len(rows) + 30
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" role="img" aria-label="{h(title)}" '
           f'xmlns="http://www.w3.org/2000/svg">',
           f'<text x="0" y="16" font-size="13" font-weight="600" fill="#1d2330">{h(title)}</text>']
    for r, row in enumerate(rows):
        y = top + r * cell_h
        label = row if len(row) <= 44 else row[:43] + "…"
        out.append(f'<text x="{left - 6}" y="{y + 12}" font-size="11" text-anchor="end" fill="#1d2330">'
                   f'<title>{h(row)}</title>{h(label)}</text>')
        for c, col in enumerate(cols):
            v = values.get((row, col))
            fill = "#f0f0f0" if v is None else _heat_fill(v, scales.get(row, "red"))
            out.append(f'<rect x="{left + c * cw:.1f}" y="{y}" width="{max(cw - 1, 1):.1f}" height="{cell_h - 2}" '
                       f'fill="{fill}" stroke="#e3e6ec" stroke-width="0.5"><title>{h(row)} {h(col)}: {"—" if v is None else f"{v:.2%}"} null</title></rect>')
    step = max(1, len(cols) // 6)
    for c in range(0, len(cols), step):
        label = cols[c][5:] if len(cols[c]) == 10 else cols[c]
        out.append(f'<text x="{left + (c + 0.5) * cw:.1f}" y="{height - 10}" font-size="11" text-anchor="middle" '
                   f'fill="#5d6677">{h(label)}</text>')
    out.append("</svg>")
    legend = []
    for scale, name in (("red", "null where required"), ("blue", "null by design")):
        if scale == "red" and not any(scales.get(r, "red") == "red" for r in rows):
            continue
        if scale == "blue" and not any(scales.get(r) == "blue" for r in rows):
            continue
        cells = "".join(f'<span><i style="background:{_heat_fill(v, scale)};border:1px solid #ddd"></i>{v:.0%}</span>'
                        for v in (0.0, 0.01, 0.1, 0.5, 1.0))
        legend.append(f'<div class="legend">{name}: {cells}</div>')
    return "".join(out) + "".join(legend)


def svg_sparkline(values: list[float], width: int = 120, height: int = 28, bad: list[bool] | None = None) -> str:
    if len(values) < 2:
        return ""
    vmax, vmin = max(values), min(values)
    span = (vmax - vmin) or 1
    pts = [(2 + (width - 4) * i / (len(values) - 1), height - 3 - (height - 6) * (v - vmin) / span)
           for i, v in enumerate(values)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(pts))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#c62828"/>'
                   for (x, y), b in zip(pts, bad or [False] * len(pts), strict=True) if b)
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg"><path d="{path}" fill="none" stroke="#4269d0" stroke-width="1.5"/>'
            f'{dots}</svg>')


# -------------------------------------------------------------------------------------- model

@dataclass
class TableState:
    """One table: the latest result of each (partition, check), and what they add up to.

    Failure counts cover every partition (the rule of ``results.failure_counts``); ``status`` is the
    worst of them (plus staleness); ``checks_total``/``checks_passed`` describe the latest partition."""

    table: str
    latest_partition: str | None
    row_count: int | None
    status: str
    checks: list[CheckRecord]  # latest evaluation of each check, all partitions
    checks_total: int = 0  # expectations and stage checks of the latest partition
    checks_passed: int = 0
    evaluated: int = 0  # latest results counted, all partitions, every kind
    failed_error: int = 0  # blocking failures, all partitions
    failed_warn: int = 0  # non-blocking failures that are not anomalies, all partitions
    anomalies: int = 0  # failed anomaly and drift tests, all partitions
    partitions_with_failures: int = 0
    freshness: str = ""
    stale: bool = False

    @property
    def failed(self) -> int:
        return self.failed_error + self.failed_warn + self.anomalies


@dataclass
class Report:
    """What ``build_report`` wrote. Counts follow ``results.failure_counts``: ``failed_error`` blocking,
    ``failed_warn`` every non-blocking failure (anomalies included, as Dagster's WARN checks are),
    ``anomalies`` how many of those are anomaly/drift tests; ``failed_total`` = error + warn."""

    path: Path
    status: str
    table_status: dict[str, str]
    failed_error: int
    failed_warn: int
    anomalies: int
    suite_pages: list[Path] = field(default_factory=list)
    index: Path | None = None
    counts: FailureCounts | None = None
    root_causes: int = 0

    @property
    def failed_total(self) -> int:
        return self.failed_error + self.failed_warn

    @property
    def url(self) -> str:
        """A file:// URL of the report (for a link on the Dagster asset page)."""
        return self.path.resolve().as_uri()


def _partition_label(p: str | None) -> str:
    return p or SNAPSHOT_KEY


def _freshness(store: QualityStore, table: str, latest: str | None, now: datetime,
               cfg: DriftConfig) -> tuple[str, bool]:
    """How old the newest data is, judged now (checks only run when data arrives, so the report does this)."""
    if latest is None:
        return "", False
    if latest != SNAPSHOT_KEY:
        age = (now.date() - date.fromisoformat(latest)).days
        stale = age > cfg.max_age_days
        return f"{'stale: ' if stale else ''}newest partition {day_count(age)} old", stale
    hist = store.profile_history(table, limit=1)
    if not hist:
        return "", False
    days = max(0.0, (now - hist[-1].computed_at).total_seconds() / 86400)  # a clock behind the store's: now
    stale = days > cfg.snapshot_max_age_days
    return f"{'stale: ' if stale else ''}snapshot profiled {_ago(days)}", stale


def _ago(days: float) -> str:
    """A time span in the unit people use for it: "just now", "40 minutes ago", "5 hours ago", "3.5 days ago"."""
    minutes = days * 24 * 60
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes:.0f} minute{'s' if round(minutes) != 1 else ''} ago"
    if minutes < 48 * 60:
        hours = minutes / 60
        return f"{hours:.0f} hour{'s' if round(hours) != 1 else ''} ago"
    return f"{days:.1f} days ago"


def _table_states(store: QualityStore, suites: dict[str, Suite], now: datetime | None = None,
                  records: list[CheckRecord] | None = None) -> list[TableState]:
    now = now or datetime.now(UTC)
    cfg = DriftConfig()
    records = store.check_results() if records is None else records
    by_table: dict[str, list[CheckRecord]] = defaultdict(list)
    for r in records:
        by_table[r.table].append(r)
    states = []
    for table in sorted(set(by_table) | set(suites) | set(store.tables())):
        recs = by_table.get(table, [])
        counts = count_failures(recs)
        parts = sorted({_partition_label(r.partition) for r in recs})
        latest = parts[-1] if parts else None
        current = [r for r in recs if _partition_label(r.partition) == latest and r.kind != "anomaly"]
        freshness, stale = _freshness(store, table, latest, now, cfg)
        if not recs:
            status = "no data"
        elif counts.error:
            status = "failed"
        elif counts.warn or stale:
            status = "warn"
        else:
            status = "passed"
        profiles = store.row_counts(table, limit=1)
        row_count = None
        if latest is not None and profiles.height:
            match = profiles.filter(profiles["partition"] == latest)
            row_count = int(match["row_count"][-1]) if match.height else None
        failing_parts = {_partition_label(r.partition) for r in recs if not r.passed}
        states.append(TableState(
            table=table, latest_partition=latest, row_count=row_count, status=status, checks=recs,
            checks_total=len(current), checks_passed=sum(1 for r in current if r.passed), evaluated=counts.evaluated,
            failed_error=counts.error, failed_warn=counts.warn - counts.anomalies, anomalies=counts.anomalies,
            partitions_with_failures=len(failing_parts), freshness=freshness, stale=stale))
    return states


def overall_status(states: list[TableState]) -> str:
    if not states or all(s.status == "no data" for s in states):
        return "no data"
    return max((s.status for s in states), key=lambda s: STATUS_ORDER[s])


# ------------------------------------------------------------------------------------ sections

def _examples_table(rows: list[dict] | None) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{h(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{h(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f'<table class="examples"><tr>{head}</tr>{body}</table>'


def _observed_text(r: CheckRecord) -> str:
    """What a check saw, in a few words (row counts for row-level checks, values for the others)."""
    if r.observed_value is not None:
        return _fmt(r.observed_value)
    details = r.details or {}
    if r.unexpected_count is not None and r.element_count is not None:
        return f"{r.unexpected_count:,} of {r.element_count:,} unexpected ({(r.unexpected_percent or 0):.3g}%)"
    bits = []
    if details.get("partial_missing_list"):
        bits.append(f"missing {_fmt(details['partial_missing_list'])}")
    if details.get("partial_unexpected_counts"):
        bits.append("unexpected " + _fmt([c.get("value") for c in details["partial_unexpected_counts"]
                                          if isinstance(c, dict)]))
    return "; ".join(bits) or ("passed" if r.passed else "failed")


def _partitions_text(parts: list[str], show: int = 6) -> str:
    parts = sorted(parts)
    if len(parts) <= show:
        return ", ".join(parts)
    return f"{', '.join(parts[:2])}, … {', '.join(parts[-2:])} ({len(parts)} partitions)"


def _failure_card(r: CheckRecord, link: str | None = None, group: list[CheckRecord] | None = None) -> str:
    """One failed check: the newest failing partition in detail; ``group`` = every partition it failed on."""
    group = group or [r]
    cls = "card" if r.severity == "error" else "card warn"
    counts = ""
    if r.unexpected_count is not None and r.element_count is not None:
        counts = (f"<b>{r.unexpected_count:,}</b> of {r.element_count:,} rows unexpected "
                  f"({(r.unexpected_percent or 0):.3g}%). ")
    observed = f"Observed: <code>{h(_fmt(r.observed_value))}</code>. " if r.observed_value is not None else ""
    details = r.details or {}
    if details.get("partial_missing_list"):
        observed += f"Missing: <code>{h(_fmt(details['partial_missing_list']))}</code>. "
    if details.get("partial_unexpected_counts") and not r.examples:
        observed += "Unexpected values: <code>" + h(", ".join(
            f"{c.get('value')} ×{c.get('count')}" for c in details["partial_unexpected_counts"][:5]
            if isinstance(c, dict))) + "</code>. "
    exception = details.get("exception")
    err = f'<div class="meta">Could not evaluate: {h(exception)}</div>' if exception else ""
    more = f' · <a href="{h(link)}">suite page</a>' if link else ""
    kind = (f"stage check ({details['stage']})" if r.kind == KIND_CHECK and details.get("stage") else
            "stage check" if r.kind == KIND_CHECK else "GX expectation" if r.kind == "expectation" else r.kind)
    parts = [_partition_label(g.partition) for g in group]
    where = h(_partition_label(r.partition))
    across = ""
    if len(group) > 1:
        where = f"{len(group)} partitions"
        total = [g.unexpected_count for g in group if g.unexpected_count is not None]
        across = (f'<div class="meta">Failed on {h(_partitions_text(parts))}'
                  + (f"; {sum(total):,} unexpected rows in all" if total else "")
                  + f". Below: the newest, {h(_partition_label(r.partition))}.</div>")
    return (f'<div class="{cls}"><div><b>{h(r.table)}</b> · {where} · '
            f'<code>{h(r.check_name)}</code> {pill("failed" if r.severity == "error" else "warn")} '
            f'<span class="meta">{h(kind)}</span></div>{across}'
            f'{f"<div>{h(r.notes)}</div>" if r.notes and r.notes != r.description else ""}'
            f'<div class="meta">{h(r.description)}{more}</div>'
            f'<div>{counts}{observed}</div>{err}{_examples_table(r.examples)}</div>')


def _tables_section(states: list[TableState], store: QualityStore, pages: dict[str, str]) -> str:
    rows = []
    empty = [s.table for s in states if s.status == "no data"]
    for s in states:
        if s.status == "no data":
            continue
        counts = store.row_counts(s.table, limit=TREND_PARTITIONS)
        anomalous = {_partition_label(r.partition) for r in s.checks if r.check_name == "volume_anomaly" and not r.passed}
        spark = svg_sparkline([float(v) for v in counts["row_count"]],
                              bad=[p in anomalous for p in counts["partition"]]) if counts.height > 1 else ""
        link = f'<a href="{h(pages[s.table])}">suite</a>' if s.table in pages else ""
        rows.append(
            f"<tr><td><b>{h(s.table)}</b></td><td>{pill(s.status)}</td><td>{h(s.latest_partition or '—')}"
            f"<div class='muted' style='font-size:12px;{'color:#b26a00;font-weight:600' if s.stale else ''}'>"
            f"{h(s.freshness)}</div></td>"
            f'<td class="num">{_fmt(s.row_count)}</td><td>{spark}</td>'
            f'<td class="num">{s.checks_passed}/{s.checks_total}</td>'
            f'<td class="num">{s.failed_error}</td><td class="num">{s.failed_warn}</td>'
            f'<td class="num">{s.anomalies}</td><td class="num">{s.partitions_with_failures}</td><td>{link}</td></tr>')
    return (
        '<section id="tables"><h2>Tables</h2><p class="muted">Failures count the latest result of each partition '
        "and check (every partition, every stage); status is the worst of them. "
        '<b>FAILED</b>: a blocking (error) check failed, downstream assets of that partition were held back. '
        '<b>WARNINGS</b>: a warn check failed, an anomaly was detected, or the table is stale (judged now: '
        'newest daily partition older than 2 days, snapshot older than 7). “Latest partition passed” counts the '
        "expectations and stage checks of the newest partition.</p>"
        '<table><tr><th>table</th><th>status</th><th>latest partition</th><th class="num">rows</th>'
        '<th>row count trend</th><th class="num">latest partition passed</th><th class="num">blocking fails</th>'
        '<th class="num">warn fails</th><th class="num">anomalies</th><th class="num">partitions with failures</th>'
        "<th>details</th></tr>" + "".join(rows) + "</table>"
        + (f'<p class="muted">Suites without results yet: {h(", ".join(empty))}.</p>' if empty else "")
        + "</section>")


def failure_groups(states: list[TableState]) -> list[list[CheckRecord]]:
    """Failed expectations and stage checks (not anomalies), one group per table and check, newest
    failing partition first in each; blocking groups first, then by their newest partition."""
    return _group_failures(r for s in states for r in s.checks)


def _group_failures(records) -> list[list[CheckRecord]]:
    groups: dict[tuple[str, str], list[CheckRecord]] = defaultdict(list)
    for r in records:
        if r.kind != "anomaly" and not r.passed:
            groups[(r.table, r.check_name)].append(r)
    out = [sorted(g, key=lambda r: _partition_label(r.partition), reverse=True) for g in groups.values()]
    out.sort(key=lambda g: (g[0].table, g[0].check_name))
    out.sort(key=lambda g: _partition_label(g[0].partition), reverse=True)
    out.sort(key=lambda g: g[0].severity != "error")
    return out


def _failures_section(states: list[TableState], pages: dict[str, str]) -> str:
    groups = failure_groups(states)
    if not groups:
        return ('<section id="failures"><h2>Failed checks</h2>'
                '<p>No expectation or stage check failed in the latest evaluation of any partition.</p></section>')
    failed = [r for g in groups for r in g]
    n_err = sum(1 for r in failed if r.severity == "error")
    cards = "".join(_failure_card(g[0], pages.get(g[0].table), g) for g in groups[:MAX_FAILURES])
    more = f'<p class="muted">… and {len(groups) - MAX_FAILURES} more.</p>' if len(groups) > MAX_FAILURES else ""
    return (f'<section id="failures"><h2>Failed checks</h2><p class="muted">{n_err} blocking (error) and '
            f"{len(failed) - n_err} warn failures of GX expectations and stage checks (the latest result of each "
            f"table, partition and check), in {len(groups)} cards: one per table and check, with the partitions it "
            "failed on and the newest one's figures and example rows (keys and the offending value). Anomalies "
            f"are counted in their own section.</p>{cards}{more}</section>")


def _recent_anomalies(s: TableState, partitions: int = 14) -> list[CheckRecord]:
    """Failed anomaly checks of a table's last partitions; freshness only from the latest (it is about now)."""
    parts = sorted({_partition_label(r.partition) for r in s.checks})[-partitions:]
    return [r for r in s.checks if r.kind == "anomaly" and not r.passed and _partition_label(r.partition) in parts
            and (r.check_name != "freshness" or _partition_label(r.partition) == s.latest_partition)]


def _drift_section(states: list[TableState]) -> str:
    found = [r for s in states for r in _recent_anomalies(s)]
    found.sort(key=lambda r: (_partition_label(r.partition), r.table), reverse=True)
    total = sum(s.anomalies for s in states)
    if not total:
        return ('<section id="drift"><h2>Anomalies and drift</h2><p>No anomaly or drift was detected in the latest '
                "evaluation of any partition.</p></section>")
    rows = "".join(f"<tr><td>{h(_partition_label(r.partition))}</td><td>{h(r.table)}</td><td><code>{h(r.check_name)}"
                   f"</code></td><td>{h(r.notes)}</td></tr>" for r in found[:60])
    shown = (f"{total} failed anomaly tests in all (latest result of each partition); listed: "
             f"{min(len(found), 60)} of the last 14 partitions of each table. ")
    return ('<section id="drift"><h2>Anomalies and drift</h2><p class="muted">' + h(shown) +
            "Warnings computed from the profile history of each table: volume (robust z-score over the trailing 14 "
            "partitions), freshness (as of the latest check), null-rate jumps, schema changes and distribution drift "
            "(PSI, KS) against the previous 14 partitions.</p>"
            "<table><tr><th>partition</th><th>table</th><th>check</th><th>what happened</th></tr>"
            f"{rows}</table></section>")


def _lake_rejections(lake: Any, table: str, stage: str = "integration") -> pl.DataFrame:
    """partition, rule, rows of one stage's quarantine part of a table (read from the lake)."""
    schema = {"partition": pl.String, "rule": pl.String, "rows": pl.Int64}
    try:
        lf = lake.scan("quarantine", table, part=stage)
    except FileNotFoundError:
        return pl.DataFrame(schema=schema)
    return (lf.group_by(pl.col("partition").cast(pl.String), "rule").agg(pl.len().cast(pl.Int64).alias("rows"))
            .collect().select(list(schema)))


def _routed(lake: Any) -> int:
    from governance.integration.events import ANONYMOUS_TABLE

    try:
        return int(lake.scan("integrated", ANONYMOUS_TABLE).select(pl.len()).collect().item())
    except FileNotFoundError:
        return 0


def _quarantine_section(store: QualityStore, tables: list[str], lake: Any = None) -> str:
    charts = []
    integration_rows = 0
    for table in tables:
        if not table.startswith(("raw.", "clean.")):  # a source's quarantine, not an integrated table's
            continue
        q = store.quarantine_history(table, limit=TREND_PARTITIONS)
        q = q.group_by("partition", "rule").agg(pl.col("rows").sum())
        if lake is not None and table.startswith("clean."):
            later = _lake_rejections(lake, table.split(".", 1)[1])
            integration_rows += int(later["rows"].sum())
            q = pl.concat([q, later.with_columns(("integration: " + pl.col("rule")).alias("rule"))])
        if q.is_empty():
            continue
        q = q.sort("partition")
        parts = sorted(set(q["partition"].to_list()))[-TREND_PARTITIONS:]
        totals = q.group_by("rule").agg(pl.col("rows").sum()).sort("rows", descending=True)
        rules = totals["rule"].to_list()
        top, rest = rules[:8], rules[8:]
        lookup = {(p, r): n for p, r, n in q.iter_rows()}
        series = {r: [lookup.get((p, r), 0) for p in parts] for r in top}
        if rest:
            series["other rules"] = [sum(lookup.get((p, r), 0) for r in rest) for p in parts]
        charts.append(f"<div>{svg_stacked_bars(parts, series, f'{table}: rows quarantined by rule')}</div>")
    body = f'<div class="grid">{"".join(charts)}</div>' if charts else "<p>Nothing quarantined yet.</p>"
    note = ""
    if lake is not None:
        routed = _routed(lake)
        note = (f" The integration stage's rejections ({integration_rows:,} rows) are the rules prefixed "
                f"“integration:”. Not shown, because they are not rejections: {routed:,} valid events without a "
                "user, routed to <code>integrated.anonymous_events</code> (they count in sessions and product "
                "activity).")
    return ('<section id="quarantine"><h2>Quarantine by rule over time</h2><p class="muted">Rows the collection, '
            f"cleaning and integration stages rejected, per partition and rule (hover a bar for counts).{note}</p>"
            f"{body}</section>")


def _short(partition: str | None) -> str:
    return "—" if partition is None else partition[5:] if len(partition) == 10 else partition


def _incidents_section(incidents: list[dict[str, Any]]) -> str:
    if not incidents:
        return ""
    rows = []
    for i in incidents[-MAX_FAILURES:][::-1]:
        checks = ", ".join(str(f.get("check_name")) for f in i["failing"] or [])
        rows.append(f"<tr><td class='num'>{i['id']}</td><td><b>{h(i['table'])}</b></td>"
                    f"<td>{h(_partition_label(i['partition']))}</td><td><code>{h(checks)}</code></td>"
                    f"<td>{h(i['first_seen'].strftime('%Y-%m-%d %H:%M') if i['first_seen'] else '—')}</td>"
                    f"<td>{h(i['last_seen'].strftime('%Y-%m-%d %H:%M') if i['last_seen'] else '—')}</td>"
                    f"<td class='num'>{i['occurrences']}</td><td>{h(i['notify_result'] or 'not notified')}</td></tr>")
    return ('<section id="incidents"><h2>Open incidents</h2><p class="muted">Runs that failed on blocking checks, '
            "one incident per table partition until its checks pass again (the run-failure sensor opens them and "
            "posts them to the webhook).</p><table><tr><th class='num'>id</th><th>table</th><th>partition</th>"
            "<th>failing checks</th><th>first seen</th><th>last seen</th><th class='num'>runs</th><th>webhook</th></tr>"
            + "".join(rows) + "</table></section>")


def _causes_section(causes: pl.DataFrame | None) -> str:
    if causes is None:
        return ""
    head = ('<section id="causes"><h2>Root causes</h2><p class="muted">Rows rejected because they reference a '
            "product or user the stage could not find (cleaning's <code>unknown_item</code>/<code>unknown_user</code>, "
            "integration's <code>unknown_product</code>/<code>unknown_user</code>, …), grouped by the reference row "
            "behind them: a catalog or user row that was itself quarantined is one finding with every row it "
            "orphaned; keys that never landed at all are one finding per referenced table.</p>")
    if causes.is_empty():
        return head + "<p>No row was rejected for an unknown reference.</p></section>"
    total = int(causes["orphaned_rows"].sum())
    explained = causes.filter(pl.col("cause") == "quarantined")
    lead = ""
    if explained.height:
        top = explained.row(0, named=True)
        lead = (f"<p><b>{explained.height}</b> quarantined reference row(s) explain "
                f"<b>{int(explained['orphaned_rows'].sum()):,}</b> of {total:,} orphaned rows; the largest, "
                f"{h(top['referenced_table'].rstrip('s'))} <code>{h(top['key'])}</code> ({h(top['root_rule'])}), explains "
                f"{top['orphaned_rows']:,} ({top['share']:.0%}).</p>")
    rows = []
    for c in causes.head(MAX_FAILURES).iter_rows(named=True):
        if c["cause"] == "quarantined":
            what = (f"{h(c['referenced_table'].rstrip('s'))} <code>{h(c['key'])}</code> quarantined by "
                    f"{h(c['root_stage'])}: <b>{h(c['root_rule'])}</b><div class='muted' style='font-size:12px'>"
                    f"{h(c['root_reason'])}</div>")
        elif c["cause"] == "never landed":
            what = (f"{c['distinct_keys']:,} {h(c['referenced_table'].rstrip('s'))} key(s) that never landed "
                    "<div class='muted' style='font-size:12px'>in no landed file of the referenced table, "
                    "nor its quarantine</div>")
        elif c["cause"] == "no key in record":
            what = (f"{h(c['referenced_table'].rstrip('s'))} reference not kept in the record"
                    "<div class='muted' style='font-size:12px'>the quarantined rows do not say which key they "
                    "named</div>")
        else:
            what = (f"{c['distinct_keys']:,} {h(c['referenced_table'].rstrip('s'))} key(s) in the clean table now"
                    "<div class='muted' style='font-size:12px'>rejected before the reference arrived: "
                    "re-run those partitions</div>")
        rows.append(f"<tr><td>{what}</td><td class='num'><b>{c['orphaned_rows']:,}</b></td>"
                    f"<td class='num'>{c['share']:.1%}</td><td>{h(c['affected'])}</td>"
                    f"<td style='white-space:nowrap'>{h(_short(c['first_partition']))} … "
                    f"{h(_short(c['last_partition']))} ({c['days']} d)</td></tr>")
    return (head + lead + "<table><tr><th>cause</th><th class='num'>rows orphaned</th><th class='num'>share</th>"
            "<th>rejected as (table · stage · rule: rows)</th><th>days</th></tr>" + "".join(rows)
            + "</table></section>")


# ------------------------------------------------------------------------------ null rates by design

_NOT_NULL = "expect_column_values_to_not_be_null"


def _condition_text(condition: str) -> str:
    return condition.replace('"', "").replace("'", "").replace("[", "").replace("]", "")


def null_design(table: str, suite: Suite | None, columns: list[str]) -> dict[str, tuple[str, str | None, str | None]]:
    """column → (class, check name, condition) for the null-rate view; lineage columns are left out.

    class ``required``: never null (the contract requires it or the suite expects it not null);
    ``conditional``: required only on some rows (a suite expectation with a ``row_condition``, e.g.
    price on add_to_cart/purchase events) — its null rate is the expectation's, on those rows;
    ``optional``: null allowed by the contract (user_id of anonymous events, price of views), or up
    to a share (a not-null expectation with ``mostly``; that share is the third item).
    """
    contract = CONTRACTS.get(table.split(".", 1)[1]) if table.startswith(("raw.", "clean.")) else None
    required = set(contract.required) if contract else set()
    conditional: dict[str, tuple[str, str]] = {}
    tolerated: dict[str, float] = {}
    for e in suite.expectations if suite else ():
        col = e.kwargs.get("column")
        if e.type != _NOT_NULL or not col:
            continue
        if e.kwargs.get("row_condition"):
            conditional[col] = (e.check_name, str(e.kwargs["row_condition"]))
        elif e.kwargs.get("mostly") is not None and float(e.kwargs["mostly"]) < 1:
            tolerated[col] = 1 - float(e.kwargs["mostly"])
        else:
            required.add(col)
    out: dict[str, tuple[str, str | None, str | None]] = {}
    for c in columns:
        if c in LINEAGE_COLUMNS or c.startswith("_"):
            continue
        if c in conditional:
            out[c] = ("conditional", *conditional[c])
        elif c in required:
            out[c] = ("required", None, None)
        elif c in tolerated:
            out[c] = ("optional", None, f"≤{tolerated[c]:.0%} allowed")
        else:
            out[c] = ("optional", None, None)
    return out


def _selects(condition: str | None, column: str, value: str) -> bool | None:
    """Whether a row condition selects the rows where ``column`` is ``value`` (None: it does not name it)."""
    if not condition or column not in condition:
        return None
    return f'"{value}"' in condition or f"'{value}'" in condition


HEAT_ROWS = 24


def _null_view(store: QualityStore, s: TableState, suite: Suite | None) -> str:
    nulls = store.null_rates(s.table, limit=TREND_PARTITIONS)
    parts = sorted(set(nulls["partition"].to_list()))[-TREND_PARTITIONS:]
    nulls = nulls.filter(nulls["partition"].is_in(parts))
    segments = store.segment_null_rates(s.table, limit=TREND_PARTITIONS)
    segments = segments.filter(segments["partition"].is_in(parts))
    design = null_design(s.table, suite, list(dict.fromkeys(nulls["column"].to_list())))
    segmented = set(segments["column"].to_list()) & set(design)
    values: dict[tuple[str, str], float] = {}
    scales: dict[str, str] = {}
    order: dict[str, tuple] = {}
    peak: dict[str, float] = {}

    conditional: set[str] = set()  # rows that show a condition holding: kept at 0%

    def add(label: str, p: str, v: float, red: bool, key: tuple, shown_at_zero: bool = False) -> None:
        if shown_at_zero:
            conditional.add(label)
        values[(label, p)] = v
        scales[label] = "red" if red else "blue"
        order[label] = (0 if red else 1, *key)
        peak[label] = max(peak.get(label, 0.0), v)

    by_check = {(r.check_name, _partition_label(r.partition)): r for r in s.checks}
    for p, c, v in nulls.iter_rows():
        if c not in design or c in segmented:
            continue
        cls, check, condition = design[c]
        if cls == "conditional":
            r = by_check.get((check, p))
            if r is None or not r.element_count:
                continue
            add(f"{c} | {_condition_text(condition)}", p, (r.unexpected_count or 0) / r.element_count, True, (c,),
                True)
        else:
            add(c if cls == "required" else f"{c} ({condition or 'optional'})", p, v, cls == "required", (c,))
    for p, c, segment, _rows, v in segments.iter_rows():
        if c not in segmented:
            continue
        by, _, value = segment.removeprefix(NULL_SEGMENT_PREFIX).partition("=")
        cls, _check, condition = design[c]
        selected = cls == "conditional" and bool(_selects(condition, by, value))
        add(f"{c} · {by}={value}", p, v, cls == "required" or selected, (c, value), selected)
    rows = [r for r in dict.fromkeys(label for label, _ in values) if peak[r] > 0 or r in conditional]
    rows.sort(key=lambda r: (order[r][0], -peak[r] if order[r][0] else 0, order[r][1:]))
    return svg_heatmap(rows[:HEAT_ROWS], parts, values, f"{s.table}: nulls by column and partition", scales=scales)


def _trends_section(store: QualityStore, states: list[TableState], suites: dict[str, Suite] | None = None) -> str:
    blocks = []
    for s in states:
        counts = store.row_counts(s.table, limit=TREND_PARTITIONS)
        if counts.is_empty():
            continue
        anomalous = {_partition_label(r.partition) for r in s.checks if r.check_name == "volume_anomaly" and not r.passed}
        if s.latest_partition == SNAPSHOT_KEY:  # a snapshot: its size at each materialization
            hist = store.profile_history(s.table)[-TREND_PARTITIONS:]
            points = [(p.computed_at.strftime("%m-%d %H:%M"), float(p.row_count)) for p in hist]
            line = (svg_line(points, f"{s.table}: rows per snapshot") if len(points) > 1 else
                    f'<p><b>{h(s.table)}</b>: one snapshot so far, {points[0][1]:,.0f} rows.</p>')
        elif counts.height == 1:
            line = (f'<p><b>{h(s.table)}</b>: one partition so far ({h(counts["partition"][0])}), '
                    f'{counts["row_count"][0]:,} rows.</p>')
        else:
            line = svg_line(list(zip(counts["partition"].to_list(), [float(v) for v in counts["row_count"]],
                                     strict=True)), f"{s.table}: rows per partition", marks=anomalous)
        heat = _null_view(store, s, (suites or {}).get(s.table))
        blocks.append(f"<div>{line}</div><div>{heat}</div>")
    body = f'<div class="grid">{"".join(blocks)}</div>' if blocks else "<p>No profiles recorded yet.</p>"
    return ('<section id="trends"><h2>Trends</h2><p class="muted">Row counts (red: volume anomaly) and nulls as the '
            "contract and the suite define them. Red rows: values that must not be null — required columns, and "
            "conditionally required ones on the rows their condition selects (per event type, “price · "
            "event_type=purchase”, where the table is profiled per group; else from the suite's expectation, “price "
            "| event_type in add_to_cart, purchase”). Blue rows: null by design — optional columns, and conditional "
            "ones where the condition does not require them (price on views); shown for drift, not as a fault. "
            "Lineage columns and columns without nulls are left out.</p>"
            f"{body}</section>")


def _suites_section(suites: dict[str, Suite], pages: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td><b>{h(t)}</b></td><td>{h(s.path.name)}</td><td class='num'>{len(s.expectations)}</td>"
        f"<td class='num'>{s.counts()['error']}</td><td class='num'>{s.counts()['warn']}</td>"
        f"<td>{'<a href=' + chr(34) + h(pages[t]) + chr(34) + '>validation page</a>' if t in pages else ''}</td></tr>"
        for t, s in sorted(suites.items()))
    return ('<section id="suites"><h2>Suites and validation pages</h2><p class="muted">The Great Expectations '
            "suites in <code>expectations/</code> (GX 1.x JSON). Each page shows the suite's expectations with their "
            "latest results per partition and the table's stage checks (our rendering of GX's validation results; "
            "see the report's notes on why not GX Data Docs).</p><table><tr><th>table</th><th>suite file</th>"
            "<th class='num'>expectations</th>"
            f"<th class='num'>error</th><th class='num'>warn</th><th></th></tr>{rows}</table></section>")


def _page(title: str, subtitle: str, body: str, nav: str = "", status: str | None = None, kpis: str = "") -> str:
    badge = f'<div style="margin-top:10px">{pill(status).replace("pill", "pill big", 1)}</div>' if status else ""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{h(title)}</title><style>{CSS}</style></head><body><header><h1>{h(title)}</h1>"
            f"<div class='sub'>{h(subtitle)}</div>{badge}{kpis}<nav style='margin-top:10px'>{nav}</nav></header>"
            f"<main>{body}</main></body></html>")


def _square(p: str, r: CheckRecord | None, severity: str) -> str:
    color = "#e0e0e0" if r is None else ("#2e7d32" if r.passed else ("#c62828" if severity == "error" else "#b26a00"))
    tip = "not evaluated" if r is None else ("passed" if r.passed else "failed")
    return (f'<td style="padding:2px"><svg width="12" height="12" xmlns="http://www.w3.org/2000/svg">'
            f'<rect width="12" height="12" rx="2" fill="{color}"><title>{h(p)}: {tip}</title></rect></svg></td>')


def _stage_checks_table(records: list[CheckRecord]) -> str:
    """The table's checks outside its suite, as a matrix: one row per check, one square per partition."""
    checks = [r for r in records if r.kind == KIND_CHECK]
    if not checks:
        return ""
    by_check: dict[str, dict[str, CheckRecord]] = defaultdict(dict)
    for r in checks:
        by_check[r.check_name][_partition_label(r.partition)] = r
    parts = sorted({_partition_label(r.partition) for r in checks})[-31:]
    head = "".join(f'<th title="{h(p)}" style="writing-mode:vertical-rl;font-size:10px">{h(_short(p))}</th>'
                   for p in parts)
    rows = []
    for name in sorted(by_check):
        results = by_check[name]
        latest = results[max(results)]
        stage = (latest.details or {}).get("stage")
        severity = f'<span class="pill {"failed" if latest.severity == "error" else "warn"}">{h(latest.severity)}</span>'
        rows.append(f"<tr><td><code>{h(name)}</code><div class='muted' style='font-size:12px'>{h(latest.description)}"
                    f"{' · ' + h(stage) if stage else ''}</div></td><td>{severity}</td>"
                    f"<td style='font-size:12px'>{h(_partition_label(latest.partition))}: {h(_observed_text(latest))}</td>"
                    + "".join(_square(p, results.get(p), latest.severity) for p in parts) + "</tr>")
    return ("<section><h2>Stage checks</h2><p class='muted'>The table's checks outside its GX suite (conservation, "
            "reconciliation, references, aggregates, findings; run by its Dagster asset checks): the newest result's "
            "figures and one square per partition, coloured as above.</p><table><tr><th>check</th><th>severity</th>"
            f"<th>latest figures</th>{head}</tr>{''.join(rows)}</table></section>")


def _suite_page(suite: Suite, records: list[CheckRecord], generated: str) -> str:
    by_part: dict[str, dict[str, CheckRecord]] = defaultdict(dict)
    for r in records:
        by_part[_partition_label(r.partition)][r.check_name] = r
    parts = sorted(by_part)[-TREND_PARTITIONS:]
    latest = parts[-1] if parts else None
    # matrix: expectations × partitions
    head = "".join(f'<th title="{h(p)}" style="writing-mode:vertical-rl;font-size:10px">{h(p[5:] if len(p) == 10 else p)}'
                   "</th>" for p in parts[-31:])
    rows = []
    for e in suite.expectations:
        cells = []
        for p in parts[-31:]:
            cells.append(_square(p, by_part[p].get(e.check_name), e.severity))
        cur = by_part[latest].get(e.check_name) if latest else None
        observed = "" if cur is None else _observed_text(cur)
        severity = f'<span class="pill {"failed" if e.severity == "error" else "warn"}">{h(e.severity)}</span>'
        rows.append(f"<tr><td><code>{h(e.check_name)}</code><div class='muted' style='font-size:12px'>"
                    f"{h(e.describe())}</div></td><td>{severity}</td><td>{h(e.notes)}</td><td>{h(observed)}</td>"
                    f"{''.join(cells)}</tr>")
    matrix = ("<section><h2>Expectations</h2><p class='muted'>One row per expectation (severity, what it means, "
              f"latest result on {h(latest or '—')}) and one square per partition: green passed, red failed (error), "
              "amber failed (warn), grey not evaluated.</p><table><tr><th>check</th><th>severity</th><th>notes</th>"
              f"<th>latest observed</th>{head}</tr>{''.join(rows)}</table></section>")
    groups = _group_failures(r for p in parts for r in by_part[p].values())
    fail_html = "".join(_failure_card(g[0], group=g) for g in groups[:MAX_FAILURES]) or "<p>No failures.</p>"
    anomalies = [r for p in reversed(parts) for r in by_part[p].values() if r.kind == "anomaly"][:40]
    anom_rows = "".join(f"<tr><td>{h(_partition_label(r.partition))}</td><td><code>{h(r.check_name)}</code></td>"
                        f"<td>{pill('passed' if r.passed else 'warn')}</td><td>{h(r.notes)}</td></tr>" for r in anomalies)
    body = (matrix + _stage_checks_table(records) + f"<section><h2>Failures with examples</h2>{fail_html}</section>"
            "<section><h2>Anomaly checks</h2><table><tr><th>partition</th><th>check</th><th>result</th>"
            f"<th>explanation</th></tr>{anom_rows}</table></section>")
    return _page(f"Validation: {suite.table}", f"Suite {suite.path.name} · {len(suite.expectations)} expectations · "
                 f"generated {generated}", body, nav=f'<a href="../{REPORT_FILE}">← quality report</a>')


REPORT_FILE = "quality_report.html"
INDEX_FILE = "index.html"
EXPERIMENTS_FILE = "experiments.html"


def _write(path: Path, text: str) -> None:
    """Atomically: a reader (a browser, the Dagster UI) never sees half a page."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _index_page(out_dir: Path, status: str, counts: FailureCounts, pages: dict[str, str], generated: str) -> str:
    links = [(REPORT_FILE, "Data quality report", f"{STATUS_LABEL[status]} — {counts.line()}")]
    if (out_dir / EXPERIMENTS_FILE).exists():
        links.append((EXPERIMENTS_FILE, "Experiments", "offline estimates and online A/B tests"))
    links += [(page, f"Validation: {table}", "GX suite results per partition") for table, page in sorted(pages.items())]
    rows = "".join(f'<tr><td><a href="{h(href)}">{h(title)}</a></td><td class="muted">{h(note)}</td></tr>'
                   for href, title, note in links)
    return _page("Governance reports", f"Generated {generated}",
                 f"<section><h2>Pages</h2><table>{rows}</table></section>", status=status)


def build_report(store: QualityStore, out_dir: str | Path, suites_dir: str | Path | None = None,
                 now: datetime | None = None, lake: Any = None) -> Report:
    """Write ``quality_report.html`` (stable path), ``index.html`` and ``suites/<table>.html`` into ``out_dir``.

    ``lake`` (a ``governance.storage.Lake``, optional): adds the root-cause grouping of orphaned rows
    and the integration stage's rejections, read from the lake's quarantine."""
    out_dir = Path(out_dir)
    (out_dir / "suites").mkdir(parents=True, exist_ok=True)
    suites = load_suites(suites_dir) if suites_dir and Path(suites_dir).exists() else {}
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    records = store.check_results()
    counts = count_failures(records)
    states = _table_states(store, suites, now, records)
    status = overall_status(states)
    pages: dict[str, str] = {}
    written = []
    by_table: dict[str, list[CheckRecord]] = defaultdict(list)
    for r in records:
        by_table[r.table].append(r)
    for table, suite in suites.items():
        page = out_dir / "suites" / f"{table}.html"
        _write(page, _suite_page(suite, by_table.get(table, []), generated))
        pages[table] = f"suites/{table}.html"
        written.append(page)
    causes = None
    if lake is not None:
        from governance.quality.causes import root_causes

        causes = root_causes(lake)
    incidents = store.incidents(status="open")
    kpis = ('<div class="kpis">' + "".join(
        f'<div class="kpi"><b>{v}</b><span>{h(k)}</span></div>' for k, v in (
            ("tables", sum(1 for s in states if s.status != "no data")),
            ("failed checks", counts.failed),
            ("blocking (error)", counts.error), ("warn", counts.warn - counts.anomalies),
            ("anomalies", counts.anomalies), ("checks evaluated", f"{counts.evaluated:,}"),
            ("open incidents", len(incidents)))) + "</div>")
    experiments = (out_dir / EXPERIMENTS_FILE).exists()
    nav = "".join(f'<a href="{a}">{t}</a>' for a, t in (
        ("#tables", "Tables"), *((("#incidents", "Incidents"),) if incidents else ()), ("#failures", "Failed checks"), *((("#causes", "Root causes"),) if causes is not None
                                                                 else ()),
        ("#drift", "Anomalies & drift"), ("#quarantine", "Quarantine"), ("#trends", "Trends"), ("#suites", "Suites"),
        *(((EXPERIMENTS_FILE, "Experiments →"),) if experiments else ()), (INDEX_FILE, "All pages")))
    tables = [s.table for s in states]
    body = (_tables_section(states, store, pages) + _incidents_section(incidents) + _failures_section(states, pages)
            + _causes_section(causes)
            + _drift_section(states) + _quarantine_section(store, tables, lake)
            + _trends_section(store, states, suites) + _suites_section(suites, pages))
    path = out_dir / REPORT_FILE
    subtitle = (f"Generated {generated} from the quality store · {counts.failed} failed checks: the latest result "
                "of each table, partition and check, every stage")
    _write(path, _page("Data quality report", subtitle, body, nav=nav, status=status, kpis=kpis))
    index = out_dir / INDEX_FILE
    _write(index, _index_page(out_dir, status, counts, pages, generated))
    return Report(path=path, status=status, table_status={s.table: s.status for s in states},
                  failed_error=counts.error, failed_warn=counts.warn, anomalies=counts.anomalies,
                  suite_pages=written, index=index, counts=counts,
                  root_causes=0 if causes is None else causes.height)


def summary_text(store: QualityStore, report_path: str | Path | None = None, limit: int = 10,
                 now: datetime | None = None) -> str:
    """A few lines for a terminal: overall status, the failure counts (as the report counts them) and the
    failed checks of each table, newest partitions first."""
    records = store.check_results()
    counts = count_failures(records)
    states = _table_states(store, {}, now, records)
    status = overall_status(states)
    lines = [f"Quality: {STATUS_LABEL[status]} — {sum(1 for s in states if s.status != 'no data')} tables, "
             f"{counts.line()} (latest result of each table, partition and check)"
             + (f"; report: {report_path}" if report_path else "")]
    for s in states:
        if s.status == "no data":
            continue
        lines.append(f"  {s.table:<28} {s.latest_partition or '—':<10}  {STATUS_LABEL[s.status]:<8}  "
                     f"{s.checks_passed}/{s.checks_total} checks passed (latest partition)"
                     + (f", {s.failed} failed in all partitions" if s.failed else "")
                     + (f"  ({s.freshness})" if s.stale else ""))
        failed = sorted((r for r in s.checks if not r.passed), key=lambda r: r.check_name)
        failed.sort(key=lambda r: _partition_label(r.partition), reverse=True)  # newest first, then by severity
        failed.sort(key=lambda r: (r.severity != "error", r.kind == "anomaly"))
        for r in failed[:limit]:
            what = (f"{r.unexpected_count:,} unexpected ({(r.unexpected_percent or 0):.3g}%)"
                    if r.unexpected_count is not None else (r.notes if r.kind == "anomaly" else
                                                            f"observed {_fmt(r.observed_value)}"))
            lines.append(f"      ✗ {r.check_name} [{r.severity}] {_partition_label(r.partition)}: {scrub(what)}")
        if len(failed) > limit:
            lines.append(f"      … and {len(failed) - limit} more")
    return "\n".join(lines)
