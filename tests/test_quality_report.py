"""The analysts' report: self-contained HTML, no PII, and it renders in real headless Chromium."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from synthetic_data import quality_frames as S
from governance.quality.alerts import raise_incident
from governance.quality.report import build_report, summary_text
from governance.quality.runner import run_quality
from governance.quality.suites import load_suite
from test_quality_support import SUITES, lake_with_snapshots, quality_store, write_days

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
NOW = datetime(2026, 10, 13, 6, tzinfo=UTC)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
chromium_only = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: .ci/chromium.sh)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A store with 12 days of events (one broken, one drifted), PII-laden users, reviews and quarantine."""
    tmp = tmp_path_factory.mktemp("report")
    lake, products, users = lake_with_snapshots(tmp)
    # users whose PII would fail the format checks (and so become examples) if it were ever shown
    users = users.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("Jane.Doe@Example.COM "))
                               .otherwise(pl.col("email")).alias("email"),
                               pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("call 555 0100"))
                               .otherwise(pl.col("phone")).alias("phone"))
    lake.write("clean", "users", users)
    days = S.days("2026-10-01", 12)
    write_days(lake, products, users, days, rows=3000, drifts={days[-2]: S.Drift(volume_factor=0.4)})
    broken = lake.read("clean", "events", days[-1]).with_columns(
        pl.when(pl.int_range(pl.len()) < 5).then(pl.lit("refund")).otherwise(pl.col("event_type")).alias("event_type"))
    lake.write("clean", "events", broken, days[-1])
    reviews = S.reviews_frame(days[-1], 400, products, users).with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("great, mail me: bob.smith@mail.example.org"))
        .otherwise(pl.col("text")).alias("text"))
    lake.write("clean", "reviews", reviews, days[-1])
    lake.write("quarantine", "reviews", S.quarantine_frame("reviews", days[-1], {"rating_out_of_range": 4}),
               days[-1], part="cleaning")
    with quality_store("sqlite", tmp) as store:
        for table in ("clean.products", "clean.users"):
            run_quality(lake, store, load_suite(SUITES / f"{table}.json"), None, run_id="snap", now=NOW)
        events = load_suite(SUITES / "clean.events.json")
        for day in days:
            run_quality(lake, store, events, day, run_id=f"run-{day}", now=NOW)
        run_quality(lake, store, load_suite(SUITES / "clean.reviews.json"), days[-1], run_id="rev", now=NOW)
        raise_incident(store, "clean.events", days[-1], [{"check_name": "event_type_in_set",
                                                         "notes": "seen by ops@example.com"}], "run-x")
        result = build_report(store, tmp / "reports", suites_dir=SUITES, now=NOW)
        yield result, store, days


def test_report_has_every_section_and_the_failures(report):
    result, _, days = report
    html = result.path.read_text()
    assert result.status == "failed" and result.table_status["clean.events"] == "failed"
    for section in ('id="tables"', 'id="failures"', 'id="drift"', 'id="quarantine"', 'id="trends"', 'id="suites"'):
        assert section in html
    assert "event_type_in_set" in html and "refund" in html  # failed expectation with an example value
    assert "text_no_email" in html  # the PII leak itself is reported…
    assert "fewer than the usual" in html  # volume anomaly explained
    assert "rating_out_of_range" in html and "bot_session" in html  # quarantine by rule
    assert html.count("<svg") >= 6  # charts
    assert 'href="suites/clean.events.html"' in html
    page = (result.path.parent / "suites" / "clean.events.html").read_text()
    assert "event_id_unique" in page and days[-1] in page
    assert set(result.table_status) >= {"clean.events", "clean.products", "clean.users", "clean.reviews"}


def test_no_pii_and_no_network_resources(report):
    result, *_ = report
    pages = [result.path, *result.suite_pages]
    for path in pages:
        html = path.read_text()
        assert not EMAIL.search(html), (path.name, EMAIL.search(html).group(0))
        assert "555 0100" not in html
        assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), path.name
        assert not re.search(r"url\(\s*['\"]?https?:", html)
        external = re.findall(r"""https?://[^"' )]+""", html)
        assert set(external) <= {"http://www.w3.org/2000/svg"}, external  # the SVG namespace, not a fetch


def test_staleness_is_judged_when_the_report_is_built(report, tmp_path):
    _, store, days = report
    late = build_report(store, tmp_path / "late", suites_dir=SUITES, now=datetime(2026, 10, 30, tzinfo=UTC))
    html = late.path.read_text()
    assert "stale: newest partition 18 day(s) old" in html
    assert "stale" in summary_text(store, now=datetime(2026, 10, 30, tzinfo=UTC))
    # snapshots: judged by when they were last profiled (the store's clock)
    much_later = datetime.now(UTC) + timedelta(days=30)
    assert build_report(store, tmp_path / "later", suites_dir=SUITES, now=much_later).table_status[
        "clean.products"] == "warn"
    assert "stale: snapshot profiled 30" in (tmp_path / "later" / "quality_report.html").read_text()
    fresh = summary_text(store, now=NOW)
    assert "stale" not in fresh


def test_summary_text(report):
    _, store, days = report
    text = summary_text(store, now=NOW)
    assert text.startswith("Quality: FAILED")
    assert f"clean.events     {days[-1]}" in text and "event_type_in_set [error]" in text
    assert not EMAIL.search(text)


def _png_pixels(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)


def _chromium(url: str, screenshot: Path, size: str = "1400,2400") -> str:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", f"--screenshot={screenshot}",
             f"--window-size={size}", url],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert screenshot.exists(), proc.stderr[-2000:]
    return proc.stderr


def _console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@chromium_only
@pytest.mark.slow
def test_chromium_detects_console_errors_on_a_control_page(tmp_path):
    control = tmp_path / "control.html"
    control.write_text("<!doctype html><p>x</p><script>console.error('control-error')</script>")
    stderr = _chromium(control.as_uri(), tmp_path / "control.png", "400,300")
    assert any("control-error" in m for m in _console_messages(stderr))


@chromium_only
@pytest.mark.slow
def test_report_renders_in_chromium_without_console_errors(report, tmp_path):
    result, *_ = report
    for page, shot in ((result.path, tmp_path / "report.png"),
                       (result.path.parent / "suites" / "clean.events.html", tmp_path / "suite.png")):
        stderr = _chromium(page.as_uri(), shot)
        assert _console_messages(stderr) == [], _console_messages(stderr)
        pixels = _png_pixels(shot)
        assert len(set(pixels[::97])) > 40  # a rendered page with text and charts, not a blank screen
        keep = Path(tempfile.gettempdir()) / f"governance-{shot.name}"
        shutil.copy(shot, keep)  # left for people to look at
