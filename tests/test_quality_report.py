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
from governance.quality.causes import orphan_rows, root_causes
from governance.quality.report import INDEX_FILE, REPORT_FILE, build_report, null_design, summary_text
from governance.quality.results import count_failures, failure_counts, record_check_result
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
    write_orphans(lake, days)
    printed: list[tuple[str, str | None, str, bool, str]] = []  # every evaluation, as a run prints them

    def gx(suite, partition, run_id):
        run = run_quality(lake, store, suite, partition, run_id=run_id, now=NOW)
        printed.extend((suite.table, partition, r.check_name, r.success, r.severity) for r in run.suite_result.results)
        printed.extend((suite.table, partition, f.check, f.passed, f.severity) for f in run.findings.values())

    def stage_check(table, partition, name, passed, severity, **kwargs):
        record_check_result(store, table, partition, name, passed, severity, **kwargs)
        printed.append((table, partition, name, passed, severity))

    with quality_store("sqlite", tmp) as store:
        for table in ("clean.products", "clean.users"):
            gx(load_suite(SUITES / f"{table}.json"), None, "snap")
        events = load_suite(SUITES / "clean.events.json")
        for day in days:
            gx(events, day, f"run-{day}")
            stage_check("clean.events", day, "rows_conserved", True, "error", stage="cleaning",
                        figures={"rows_in": 10, "rows_clean": 9, "rows_quarantined": 1, "difference": 0})
        gx(load_suite(SUITES / "clean.reviews.json"), days[-1], "rev")
        # a blocking stage check failing on three days; one of them re-run later and passing (latest wins)
        for day in days[-3:]:
            stage_check("integrated.interactions", day, "reconciles_with_clean", False, "ERROR", stage="integration",
                        description="clean events = interactions + anonymous + quarantined",
                        figures={"clean_events": 100, "events_in_interactions": 90, "difference": 10})
        stage_check("integrated.interactions", days[-3], "reconciles_with_clean", True, "error", stage="integration",
                    figures={"difference": 0})
        stage_check("integrated.products", None, "every_product_seen", False, "warn", stage="integration",
                    description="catalog products nobody ever viewed", unexpected_count=2, element_count=300,
                    examples=pl.DataFrame({"product_id": ["p000001", "p000002"],
                                           "email": ["leak@example.com", "x@example.org"]}))
        raise_incident(store, "clean.events", days[-1], [{"check_name": "event_type_in_set",
                                                         "notes": "seen by ops@example.com"}], "run-x")
        result = build_report(store, tmp / "reports", suites_dir=SUITES, now=NOW, lake=lake)
        yield result, store, days, printed, lake


ORPHANED = {"p-broken": 7, "p-ghost-1": 2, "p-ghost-2": 1}


def write_orphans(lake, days: list[str]) -> None:
    """A catalog row quarantined by collection, and events of two days that reference it (plus two products
    that never landed) rejected by integration as unknown_product."""
    from governance.quarantine import QUARANTINE_SCHEMA, conform

    broken = pl.DataFrame({"source": ["products"], "stage": ["collection"], "rule": ["unparsable_value"],
                           "reason": ["price: 'n/a' is not a valid float"], "key": ["p-broken"],
                           "record": ['{"product_id": "p-broken", "price": "n/a"}'], "partition": ["all"]})
    lake.write("quarantine", "products", conform(broken, QUARANTINE_SCHEMA), part="collection")
    items = [item for item, n in ORPHANED.items() for _ in range(n)]
    for i, day in enumerate(days[-2:]):
        mine = items[i::2]
        rows = pl.DataFrame({
            "source": "events", "stage": "integration", "rule": "unknown_product",
            "reason": "item_id is in no version of the catalog", "key": [f"e{i}-{j}" for j in range(len(mine))],
            "record": [f'{{"event_id": "e{j}", "item_id": "{item}", "user_id": null}}' for j, item in enumerate(mine)],
            "partition": day})
        lake.write("quarantine", "events", conform(rows, QUARANTINE_SCHEMA), day, part="integration")


def test_report_has_every_section_and_the_failures(report):
    result, _, days, *_ = report
    html = result.path.read_text()
    assert result.status == "failed" and result.table_status["clean.events"] == "failed"
    for section in ('id="tables"', 'id="failures"', 'id="causes"', 'id="drift"', 'id="quarantine"', 'id="trends"',
                    'id="suites"'):
        assert section in html
    assert "event_type_in_set" in html and "refund" in html  # failed expectation with an example value
    assert "text_no_email" in html  # the PII leak itself is reported…
    assert "fewer than the usual" in html  # volume anomaly explained
    assert "rating_out_of_range" in html and "bot_session" in html  # quarantine by rule
    assert html.count("<svg") >= 6  # charts
    incidents = html[html.index('id="incidents"'):html.index('id="failures"')]
    assert "<code>event_type_in_set</code>" in incidents and days[-1] in incidents
    assert 'href="suites/clean.events.html"' in html
    page = (result.path.parent / "suites" / "clean.events.html").read_text()
    assert "event_id_unique" in page and days[-1] in page
    assert set(result.table_status) >= {"clean.events", "clean.products", "clean.users", "clean.reviews"}


def test_no_pii_and_no_network_resources(report):
    result, *_ = report
    pages = [result.path, result.index, *result.suite_pages]
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
    _, store, days, *_ = report
    late = build_report(store, tmp_path / "late", suites_dir=SUITES, now=datetime(2026, 10, 30, tzinfo=UTC))
    html = late.path.read_text()
    assert "stale: newest partition 18 days old" in html
    assert "stale" in summary_text(store, now=datetime(2026, 10, 30, tzinfo=UTC))
    # snapshots: judged by when they were last profiled (the store's clock)
    much_later = datetime.now(UTC) + timedelta(days=30)
    assert build_report(store, tmp_path / "later", suites_dir=SUITES, now=much_later).table_status[
        "clean.products"] == "warn"
    assert "stale: snapshot profiled 30" in (tmp_path / "later" / "quality_report.html").read_text()
    fresh = summary_text(store, now=NOW)
    assert "stale" not in fresh


def test_summary_text(report):
    result, store, days, *_ = report
    text = summary_text(store, now=NOW)
    assert text.startswith("Quality: FAILED")
    assert re.search(rf"clean\.events +{days[-1]}", text) and f"event_type_in_set [error] {days[-1]}" in text
    assert f"{result.failed_total} failed checks ({result.failed_error} blocking, {result.failed_warn} warnings" in text
    assert f"reconciles_with_clean [error] {days[-1]}" in text  # stage checks are listed like GX results
    assert not EMAIL.search(text)


def _latest_failures(printed):
    """What a run printed, counted by the rule: the last evaluation of each table, partition and check."""
    latest = {}
    for table, partition, check, passed, severity in printed:
        latest[(table, partition, check)] = (passed, severity.lower())
    error = sum(1 for passed, sev in latest.values() if not passed and sev == "error")
    warn = sum(1 for passed, sev in latest.values() if not passed and sev != "error")
    return error, warn, len(latest)


def test_failure_counts_equal_what_the_runs_printed(report):
    result, store, _, printed, _ = report
    error, warn, evaluated = _latest_failures(printed)
    assert error >= 3 and warn >= 2  # GX and stage checks both fail in this store
    assert (result.failed_error, result.failed_warn, result.failed_total) == (error, warn, error + warn)
    counts = failure_counts(store)
    assert (counts.error, counts.warn, counts.evaluated) == (error, warn, evaluated)
    assert counts.by_kind["check"] == 3  # reconciles_with_clean on two days (the third passed on re-run) + one warn
    html = result.path.read_text()
    assert f'<b>{error + warn}</b><span>failed checks</span>' in html
    assert f'<b>{error}</b><span>blocking (error)</span>' in html
    # re-running a failed check on a partition replaces its result there
    assert count_failures(store.check_results(table="integrated.interactions")).error == 2


def test_failures_are_one_card_per_check_with_their_partitions(report):
    result, _, days, *_ = report
    html = result.path.read_text()
    failures = html[html.index('id="failures"'):html.index('id="causes"')]
    assert failures.count("<code>reconciles_with_clean</code>") == 1  # one card for the two failing days
    assert f"Failed on {days[-2]}, {days[-1]}" in failures and "stage check (integration)" in failures
    assert "<code>every_product_seen</code>" in failures and "p000001" in failures
    assert "leak@example.com" not in html and "leak" not in failures  # example PII columns are dropped
    page = (result.path.parent / "suites" / "integrated.interactions.html").read_text()
    stage = page[page.index("<h2>Stage checks"):page.index("<h2>Failures with examples")]
    assert "<code>reconciles_with_clean</code>" in stage and "difference: 10" in stage


def test_root_causes_group_orphans_by_the_quarantined_reference(report):
    result, *_, lake = report
    causes = root_causes(lake)
    broken = causes.filter(pl.col("key") == "p-broken").row(0, named=True)
    assert (broken["cause"], broken["root_stage"], broken["root_rule"], broken["orphaned_rows"], broken["days"]) == (
        "quarantined", "collection", "unparsable_value", ORPHANED["p-broken"], 2)
    assert broken["affected"] == f"events · integration · unknown_product: {ORPHANED['p-broken']}"
    ghosts = causes.filter((pl.col("cause") == "never landed") & (pl.col("referenced_table") == "products"))
    assert ghosts.select("orphaned_rows", "distinct_keys").row(0) == (3, 2)
    named = causes.filter(pl.col("cause").is_in(["quarantined", "never landed"]))
    assert named["orphaned_rows"].sum() == sum(ORPHANED.values())
    assert causes["orphaned_rows"].sum() == orphan_rows(lake).height
    assert causes["orphaned_rows"].to_list() == sorted(causes["orphaned_rows"].to_list(), reverse=True)
    html = result.path.read_text()
    section = html[html.index('id="causes"'):html.index('id="drift"')]
    assert "<code>p-broken</code>" in section and "unparsable_value" in section and "<b>7</b>" in section
    assert result.root_causes == causes.height


def test_null_view_honours_the_contract_and_leaves_lineage_out(report):
    result, *_ = report
    events = load_suite(SUITES / "clean.events.json")
    design = null_design("clean.events", events, ["event_id", "user_id", "price", "quantity", "_source_file",
                                                  "_row_number", "_extra_columns"])
    assert design["event_id"][0] == "required" and design["user_id"][0] == "optional"
    assert design["price"][:2] == ("conditional", "price_present_when_carted")
    assert not {"_source_file", "_row_number", "_extra_columns"} & set(design)
    html = result.path.read_text()
    trends = html[html.index('id="trends"'):html.index('id="suites"')]
    assert "_source_file" not in trends and "_ingested_at" not in trends
    heat = trends[trends.index("clean.events: nulls by column"):]
    heat = heat[:heat.index("</svg>")]
    # row label → the colour of its first cell (red scale: nulls are faults; blue: null by design)
    rows = dict(re.findall(r'<title>([^<]+)</title>[^<]+</text><rect [^>]*fill="rgb\((\d+),', heat))
    assert {"price · event_type=purchase", "price · event_type=add_to_cart", "price · event_type=view",
            "user_id · event_type=view"} <= set(rows)
    assert rows["price · event_type=purchase"] == "255"  # required there, never null: a white red-scale cell
    assert rows["price · event_type=view"] == "66"  # null on every view, by design: full blue
    assert not any(label.startswith(("_", "event_id")) for label in rows)  # lineage and columns without nulls
    # a table without per-group null profiles: the suite's conditional expectation and the contract
    users = trends[trends.index("clean.users: nulls by column"):]
    assert "signup_at | signup_invalid == False" in users[:users.index("</svg>")]


def test_stable_report_path_index_and_experiments_link(report, tmp_path):
    result, store, *_ = report
    assert result.path.name == REPORT_FILE and result.index.name == INDEX_FILE
    assert result.url.startswith("file://") and result.url.endswith(REPORT_FILE)
    assert "experiments.html" not in result.path.read_text()
    index = result.index.read_text()
    assert f'href="{REPORT_FILE}"' in index and 'href="suites/clean.events.html"' in index
    out = tmp_path / "with_experiments"
    out.mkdir()
    (out / "experiments.html").write_text("<!doctype html><p>experiments</p>")
    again = build_report(store, out, suites_dir=SUITES, now=NOW)
    assert again.path == out / REPORT_FILE
    assert 'href="experiments.html"' in again.path.read_text() and 'href="experiments.html"' in again.index.read_text()
    assert not list(out.glob("*.tmp"))  # written atomically


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
