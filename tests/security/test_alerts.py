"""The incident webhook cannot break the sensor, retries with a bound, and never shows its secrets."""

import http.server
import json
import logging
import threading

import pytest

from governance.quality.alerts import ATTEMPTS, post_webhook, raise_incident
from governance.quality.store import QualityStore
from governance.settings import Settings

TOKEN = "XOXB-s3cr3t-T0K3N-4242"
MALFORMED = [
    f"hooks.example.com/services/{TOKEN}",                    # no scheme
    f"https://hooks.example.com:99999/services/{TOKEN}",      # port out of range
    f"https://hooks.example.com:port/services/{TOKEN}",       # port not a number
    f"https://bot:{TOKEN}@127.0.0.1:9/hook",                  # password in the URL, nothing listening
    f"https://127.0.0.1:9/hook?token={TOKEN}",                # token in the query
    f"ftp://127.0.0.1:9/{TOKEN}",                             # unsupported scheme
    f"http://[::1/{TOKEN}",                                   # unparsable
    f" https://127.0.0.1:9/{TOKEN}#{TOKEN} ",                 # spaces, fragment
    f"javascript:{TOKEN}",
]


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_webhook_urls_are_recorded_failures_without_their_secret(url, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("governance.quality.alerts.BACKOFF_S", (0.0,))
    store = QualityStore(f"sqlite:///{tmp_path / 'q.db'}")
    waits = []
    caplog.set_level(logging.DEBUG)
    incident = raise_incident(store, "clean.events", "2026-11-10", [{"check_name": "not_null"}], "run-1",
                              webhook_url=url)
    assert incident["notify_result"].startswith("failed")
    recorded = store.incidents()
    assert recorded[0]["notify_result"] == incident["notify_result"]
    out = json.dumps(recorded, default=str) + caplog.text + incident["notify_result"]
    assert TOKEN not in out and "s3cr3t" not in out
    # the describe() view of the settings hides it too
    assert TOKEN not in json.dumps(Settings.load(data_root=str(tmp_path), webhook_url=url.strip()).describe())
    result = post_webhook(url, {"x": 1}, timeout_s=0.5, sleep=waits.append)
    assert TOKEN not in result and len(waits) <= ATTEMPTS - 1


class _Flaky(http.server.BaseHTTPRequestHandler):
    calls: list[int] = []

    def do_POST(self):  # noqa: N802
        _Flaky.calls.append(1)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(503 if len(_Flaky.calls) < 3 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_transient_failures_are_retried_a_bounded_number_of_times():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook/{TOKEN}"
        waits = []
        _Flaky.calls.clear()
        assert post_webhook(url, {"x": 1}, sleep=waits.append).startswith("200")
        assert len(_Flaky.calls) == 3 and len(waits) == 2
        _Flaky.calls.clear()
        result = post_webhook(url, {"x": 1}, attempts=2, sleep=waits.append)  # 503, 503: gives up
        assert result.startswith("failed after 2 attempt(s)") and "503" in result and TOKEN not in result
    finally:
        server.shutdown()


@pytest.mark.parametrize("url", [f"postgresql+psycopg2://governance:{TOKEN}@bad host/q",
                                 f"postgresql+psycopg2://governance:{TOKEN}@127.0.0.1:1/q?sslpassword={TOKEN}"])
def test_a_database_password_appears_in_no_setting_or_error(url, tmp_path):
    settings = Settings.load(data_root=str(tmp_path), quality_url=url)
    assert TOKEN not in json.dumps(settings.describe())
    with pytest.raises(Exception) as caught:
        QualityStore(url).incidents()
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
