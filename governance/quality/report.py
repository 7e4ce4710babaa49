"""The analysts' quality report: one self-contained HTML file, plus one validation page per suite.

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

from governance.quality.anomalies import DriftConfig
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


def svg_heatmap(rows: list[str], cols: list[str], values: dict[tuple[str, str], float], title: str,
                width: int = 600) -> str:
    """Null rates: one row per column of the table, one cell per partition, darker = more nulls."""
    if not rows or not cols:
        return f'<p class="muted">{h(title)}: no nulls in any column.</p>'
    left, top, cell_h = 150, 26, 16
    w = width - left - 10
    cw = w / len(cols)
    height = top + cell_h * len(rows) + 30
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" role="img" aria-label="{h(title)}" '
           f'xmlns="http://www.w3.org/2000/svg">',
           f'<text x="0" y="16" font-size="13" font-weight="600" fill="#1d2330">{h(title)}</text>']
    for r, row in enumerate(rows):
        y = top + r * cell_h
        out.append(f'<text x="{left - 6}" y="{y + 12}" font-size="11" text-anchor="end" fill="#1d2330">{h(row)}</text>')
        for c, col in enumerate(cols):
            v = values.get((row, col))
            if v is None:
                fill = "#f0f0f0"
            else:
                t = min(1.0, math.sqrt(v))  # sqrt: small rates stay visible
                fill = f"rgb({int(255 - 57 * t)},{int(255 - 215 * t)},{int(255 - 215 * t)})"
            out.append(f'<rect x="{left + c * cw:.1f}" y="{y}" width="{max(cw - 1, 1):.1f}" height="{cell_h - 2}" '
                       f'fill="{fill}"><title>{h(row)} {h(col)}: {"—" if v is None else f"{v:.2%}"} null</title></rect>')
    step = max(1, len(cols) // 6)
    for c in range(0, len(cols), step):
        label = cols[c][5:] if len(cols[c]) == 10 else cols[c]
        out.append(f'<text x="{left + (c + 0.5) * cw:.1f}" y="{height - 10}" font-size="11" text-anchor="middle" '
                   f'fill="#5d6677">{h(label)}</text>')
    out.append("</svg>")
    scale = "".join(f'<span><i style="background:rgb({int(255 - 57 * math.sqrt(v))},{int(255 - 215 * math.sqrt(v))},'
                    f'{int(255 - 215 * math.sqrt(v))});border:1px solid #ddd"></i>{v:.0%}</span>'
                    for v in (0.0, 0.01, 0.1, 0.5, 1.0))
    return "".join(out) + f'<div class="legend">null rate: {scale}</div>'



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
    table: str
    latest_partition: str | None
    row_count: int | None
    status: str
    checks: list[CheckRecord]  # latest evaluation of each check, all partitions
    expectations_total: int = 0
    expectations_passed: int = 0
    failed_error: int = 0
    failed_warn: int = 0
    anomalies: int = 0
    partitions_with_failures: int = 0
    freshness: str = ""
    stale: bool = False


@dataclass
class Report:
    path: Path
    status: str
    table_status: dict[str, str]
    failed_error: int
    failed_warn: int
    anomalies: int
    suite_pages: list[Path] = field(default_factory=list)


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
        return f"{'stale: ' if stale else ''}newest partition {age} day(s) old", stale
    hist = store.profile_history(table, limit=1)
    if not hist:
        return "", False
    days = (now - hist[-1].computed_at).total_seconds() / 86400
    stale = days > cfg.snapshot_max_age_days
    return f"{'stale: ' if stale else ''}snapshot profiled {days:.1f} day(s) ago", stale


def _table_states(store: QualityStore, suites: dict[str, Suite], now: datetime | None = None) -> list[TableState]:
    now = now or datetime.now(UTC)
    cfg = DriftConfig()
    records = store.check_results()
    by_table: dict[str, list[CheckRecord]] = defaultdict(list)
    for r in records:
        by_table[r.table].append(r)
    states = []
    for table in sorted(set(by_table) | set(suites) | set(store.tables())):
        recs = by_table.get(table, [])
        parts = sorted({_partition_label(r.partition) for r in recs})
        latest = parts[-1] if parts else None
        current = [r for r in recs if _partition_label(r.partition) == latest]
        exps = [r for r in current if r.kind == "expectation"]
        failed_error = sum(1 for r in exps if not r.passed and r.severity == "error")
        failed_warn = sum(1 for r in exps if not r.passed and r.severity != "error")
        anomalies = sum(1 for r in current if r.kind == "anomaly" and not r.passed)
        freshness, stale = _freshness(store, table, latest, now, cfg)
        if not current:
            status = "no data"
        elif failed_error:
            status = "failed"
        elif failed_warn or anomalies or stale:
            status = "warn"
        else:
            status = "passed"
        profiles = store.row_counts(table, limit=1)
        row_count = None
        if latest is not None and profiles.height:
            match = profiles.filter(profiles["partition"] == latest)
            row_count = int(match["row_count"][-1]) if match.height else None
        failing_parts = {_partition_label(r.partition) for r in recs if not r.passed and r.kind == "expectation"}
        states.append(TableState(
            table=table, latest_partition=latest, row_count=row_count, status=status, checks=recs,
            expectations_total=len(exps), expectations_passed=sum(1 for r in exps if r.passed),
            failed_error=failed_error, failed_warn=failed_warn, anomalies=anomalies,
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


def _failure_card(r: CheckRecord, link: str | None = None) -> str:
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
    return (f'<div class="{cls}"><div><b>{h(r.table)}</b> · {h(_partition_label(r.partition))} · '
            f'<code>{h(r.check_name)}</code> {pill("failed" if r.severity == "error" else "warn")}</div>'
            f'<div>{h(r.notes)}</div><div class="meta">{h(r.description)}{more}</div>'
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
            f'<td class="num">{s.expectations_passed}/{s.expectations_total}</td>'
            f'<td class="num">{s.failed_error}</td><td class="num">{s.failed_warn}</td>'
            f'<td class="num">{s.anomalies}</td><td class="num">{s.partitions_with_failures}</td><td>{link}</td></tr>')
    return (
        '<section id="tables"><h2>Tables</h2><p class="muted">Status of each table\'s latest partition. '
        '<b>FAILED</b>: a blocking (error) expectation failed, downstream assets were held back. '
        '<b>WARNINGS</b>: a warn expectation failed, an anomaly was detected, or the table is stale (judged now: '
        'newest daily partition older than 2 days, snapshot older than 7).</p>'
        '<table><tr><th>table</th><th>status</th><th>latest partition</th><th class="num">rows</th>'
        '<th>row count trend</th><th class="num">expectations passed</th><th class="num">error fails</th>'
        '<th class="num">warn fails</th><th class="num">anomalies</th><th class="num">partitions with failures</th>'
        "<th>details</th></tr>" + "".join(rows) + "</table>"
        + (f'<p class="muted">Suites without results yet: {h(", ".join(empty))}.</p>' if empty else "")
        + "</section>")


def _failures_section(states: list[TableState], pages: dict[str, str]) -> str:
    failed = [r for s in states for r in s.checks if r.kind == "expectation" and not r.passed]
    failed.sort(key=lambda r: (r.severity != "error", -(int((r.partition or "0000-00-00").replace("-", "")) or 0),
                               r.table, r.check_name))
    if not failed:
        return ('<section id="failures"><h2>Failed expectations</h2>'
                '<p>No expectation failed in the latest evaluation of any partition.</p></section>')
    cards = "".join(_failure_card(r, pages.get(r.table)) for r in failed[:MAX_FAILURES])
    more = f'<p class="muted">… and {len(failed) - MAX_FAILURES} more.</p>' if len(failed) > MAX_FAILURES else ""
    n_err = sum(1 for r in failed if r.severity == "error")
    return (f'<section id="failures"><h2>Failed expectations</h2><p class="muted">{n_err} blocking (error) and '
            f'{len(failed) - n_err} warn failures across all partitions (latest evaluation of each), newest '
            f"partitions first, with example rows (keys and the offending value).</p>{cards}{more}</section>")


def _recent_anomalies(s: TableState, partitions: int = 14) -> list[CheckRecord]:
    """Failed anomaly checks of a table's last partitions; freshness only from the latest (it is about now)."""
    parts = sorted({_partition_label(r.partition) for r in s.checks})[-partitions:]
    return [r for r in s.checks if r.kind == "anomaly" and not r.passed and _partition_label(r.partition) in parts
            and (r.check_name != "freshness" or _partition_label(r.partition) == s.latest_partition)]


def _drift_section(states: list[TableState]) -> str:
    found = [r for s in states for r in _recent_anomalies(s)]
    found.sort(key=lambda r: (_partition_label(r.partition), r.table), reverse=True)
    if not found:
        return ('<section id="drift"><h2>Anomalies and drift</h2><p>No anomaly or drift was detected in the latest '
                "evaluation of any partition.</p></section>")
    rows = "".join(f"<tr><td>{h(_partition_label(r.partition))}</td><td>{h(r.table)}</td><td><code>{h(r.check_name)}"
                   f"</code></td><td>{h(r.notes)}</td></tr>" for r in found[:60])
    return ('<section id="drift"><h2>Anomalies and drift</h2><p class="muted">Warnings computed from the profile '
            "history of each table's last 14 partitions: volume (robust z-score over the trailing 14 partitions), "
            "freshness (as of the latest check), null-rate jumps, schema changes and distribution drift (PSI, KS) "
            "against the previous 14 partitions.</p>"
            "<table><tr><th>partition</th><th>table</th><th>check</th><th>what happened</th></tr>"
            f"{rows}</table></section>")


def _quarantine_section(store: QualityStore, tables: list[str]) -> str:
    charts = []
    for table in tables:
        q = store.quarantine_history(table, limit=TREND_PARTITIONS)
        if q.is_empty():
            continue
        q = q.group_by("partition", "rule").agg(pl.col("rows").sum()).sort("partition")
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
    return ('<section id="quarantine"><h2>Quarantine by rule over time</h2><p class="muted">Rows the collection and '
            f"cleaning stages removed, per partition and rule (hover a bar for counts).</p>{body}</section>")


def _trends_section(store: QualityStore, states: list[TableState]) -> str:
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
        nulls = store.null_rates(s.table, limit=TREND_PARTITIONS)
        parts = sorted(set(nulls["partition"].to_list()))[-TREND_PARTITIONS:]
        nulls = nulls.filter(nulls["partition"].is_in(parts))
        with_nulls = sorted({c for c, v in zip(nulls["column"], nulls["null_rate"], strict=True) if v and v > 0},
                            key=lambda c: -max(v for cc, v in zip(nulls["column"], nulls["null_rate"], strict=True)
                                               if cc == c))
        values = {(c, p): v for p, c, v in nulls.iter_rows()}
        heat = svg_heatmap(with_nulls[:16], parts, values, f"{s.table}: null rate by column and partition")
        blocks.append(f"<div>{line}</div><div>{heat}</div>")
    body = f'<div class="grid">{"".join(blocks)}</div>' if blocks else "<p>No profiles recorded yet.</p>"
    return ('<section id="trends"><h2>Trends</h2><p class="muted">Row counts (red: volume anomaly) and the share of '
            "nulls in every column that has any (darker = more nulls; columns without nulls are left out).</p>"
            f"{body}</section>")


def _suites_section(suites: dict[str, Suite], pages: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td><b>{h(t)}</b></td><td>{h(s.path.name)}</td><td class='num'>{len(s.expectations)}</td>"
        f"<td class='num'>{s.counts()['error']}</td><td class='num'>{s.counts()['warn']}</td>"
        f"<td>{'<a href=' + chr(34) + h(pages[t]) + chr(34) + '>validation page</a>' if t in pages else ''}</td></tr>"
        for t, s in sorted(suites.items()))
    return ('<section id="suites"><h2>Suites and validation pages</h2><p class="muted">The Great Expectations '
            "suites in <code>expectations/</code> (GX 1.x JSON). Each page shows the suite's expectations with their "
            "latest results per partition (our rendering of GX's validation results; see the report's notes on why "
            "not GX Data Docs).</p><table><tr><th>table</th><th>suite file</th><th class='num'>expectations</th>"
            f"<th class='num'>error</th><th class='num'>warn</th><th></th></tr>{rows}</table></section>")


def _page(title: str, subtitle: str, body: str, nav: str = "", status: str | None = None, kpis: str = "") -> str:
    badge = f'<div style="margin-top:10px">{pill(status).replace("pill", "pill big", 1)}</div>' if status else ""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{h(title)}</title><style>{CSS}</style></head><body><header><h1>{h(title)}</h1>"
            f"<div class='sub'>{h(subtitle)}</div>{badge}{kpis}<nav style='margin-top:10px'>{nav}</nav></header>"
            f"<main>{body}</main></body></html>")


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
            r = by_part[p].get(e.check_name)
            color = "#e0e0e0" if r is None else ("#2e7d32" if r.passed else ("#c62828" if e.severity == "error"
                                                                             else "#b26a00"))
            tip = "not evaluated" if r is None else ("passed" if r.passed else "failed")
            cells.append(f'<td style="padding:2px"><svg width="12" height="12" xmlns="http://www.w3.org/2000/svg">'
                         f'<rect width="12" height="12" rx="2" fill="{color}"><title>{h(p)}: {tip}</title></rect>'
                         "</svg></td>")
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
    failures = [r for p in reversed(parts) for r in by_part[p].values() if r.kind == "expectation" and not r.passed]
    fail_html = "".join(_failure_card(r) for r in failures[:MAX_FAILURES]) or "<p>No failures.</p>"
    anomalies = [r for p in reversed(parts) for r in by_part[p].values() if r.kind == "anomaly"][:40]
    anom_rows = "".join(f"<tr><td>{h(_partition_label(r.partition))}</td><td><code>{h(r.check_name)}</code></td>"
                        f"<td>{pill('passed' if r.passed else 'warn')}</td><td>{h(r.notes)}</td></tr>" for r in anomalies)
    body = (matrix + f"<section><h2>Failures with examples</h2>{fail_html}</section>"
            "<section><h2>Anomaly checks</h2><table><tr><th>partition</th><th>check</th><th>result</th>"
            f"<th>explanation</th></tr>{anom_rows}</table></section>")
    return _page(f"Validation: {suite.table}", f"Suite {suite.path.name} · {len(suite.expectations)} expectations · "
                 f"generated {generated}", body, nav='<a href="../quality_report.html">← quality report</a>')


def build_report(store: QualityStore, out_dir: str | Path, suites_dir: str | Path | None = None,
                 now: datetime | None = None) -> Report:
    """Write ``quality_report.html`` and ``suites/<table>.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "suites").mkdir(parents=True, exist_ok=True)
    suites = load_suites(suites_dir) if suites_dir and Path(suites_dir).exists() else {}
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    states = _table_states(store, suites, now)
    status = overall_status(states)
    pages: dict[str, str] = {}
    written = []
    for table, suite in suites.items():
        page = out_dir / "suites" / f"{table}.html"
        page.write_text(_suite_page(suite, store.check_results(table=table), generated))
        pages[table] = f"suites/{table}.html"
        written.append(page)
    failed_error = sum(s.failed_error for s in states)
    failed_warn = sum(s.failed_warn for s in states)
    anomalies = sum(s.anomalies for s in states)
    incidents = store.incidents(status="open")
    kpis = ('<div class="kpis">' + "".join(
        f'<div class="kpi"><b>{v}</b><span>{h(k)}</span></div>' for k, v in (
            ("tables", sum(1 for s in states if s.status != "no data")),
            ("failed error checks (latest)", failed_error), ("failed warn checks (latest)", failed_warn),
            ("anomalies (latest)", anomalies), ("open incidents", len(incidents)))) + "</div>")
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("tables", "Tables"), ("failures", "Failed expectations"), ("drift", "Anomalies & drift"),
        ("quarantine", "Quarantine"), ("trends", "Trends"), ("suites", "Suites")))
    tables = [s.table for s in states]
    body = (_tables_section(states, store, pages) + _failures_section(states, pages) + _drift_section(states)
            + _quarantine_section(store, tables) + _trends_section(store, states) + _suites_section(suites, pages))
    path = out_dir / "quality_report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(_page("Data quality report", f"Generated {generated} from the quality store", body, nav=nav,
                         status=status, kpis=kpis))
    tmp.replace(path)
    return Report(path=path, status=status, table_status={s.table: s.status for s in states},
                  failed_error=failed_error, failed_warn=failed_warn, anomalies=anomalies, suite_pages=written)


def summary_text(store: QualityStore, report_path: str | Path | None = None, limit: int = 10,
                 now: datetime | None = None) -> str:
    """A few lines for a terminal: overall status and the failed checks of each table's latest partition."""
    states = _table_states(store, {}, now)
    status = overall_status(states)
    lines = [f"Quality: {STATUS_LABEL[status]} — {sum(1 for s in states if s.status != 'no data')} tables, "
             f"{sum(s.failed_error for s in states)} failed error checks, {sum(s.failed_warn for s in states)} warn "
             f"failures, {sum(s.anomalies for s in states)} anomalies (latest partitions)"
             + (f"; report: {report_path}" if report_path else "")]
    for s in states:
        if s.status == "no data":
            continue
        lines.append(f"  {s.table:<16} {s.latest_partition or '—':<10}  {STATUS_LABEL[s.status]:<8}  "
                     f"{s.expectations_passed}/{s.expectations_total} expectations passed"
                     + (f"  ({s.freshness})" if s.stale else ""))
        current = [r for r in s.checks if _partition_label(r.partition) == s.latest_partition and not r.passed]
        for r in sorted(current, key=lambda r: (r.severity != "error", r.kind, r.check_name))[:limit]:
            what = (f"{r.unexpected_count:,} unexpected ({(r.unexpected_percent or 0):.3g}%)"
                    if r.unexpected_count is not None else (r.notes if r.kind == "anomaly" else
                                                            f"observed {_fmt(r.observed_value)}"))
            lines.append(f"      ✗ {r.check_name} [{r.severity}]: {scrub(what)}")
    return "\n".join(lines)
