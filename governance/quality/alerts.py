"""Incidents for failed ``error`` checks, and the optional JSON webhook that announces them."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from governance.quality.store import QualityStore
from governance.quality.validation import jsonable, scrub
from governance.settings import redact_url

log = logging.getLogger(__name__)


def incident_message(incident: Mapping[str, Any], run_url: str | None = None) -> dict[str, Any]:
    """The webhook payload: plain JSON, one line of text plus the structured incident (no row values)."""
    failing = incident.get("failing") or []
    names = ", ".join(f["check_name"] for f in failing[:5]) + (f" and {len(failing) - 5} more" if len(failing) > 5 else "")
    where = f"{incident['table']} {incident.get('partition') or '(snapshot)'}"
    return jsonable({
        "text": f"Data quality incident on {where}: {len(failing)} blocking check(s) failed — {names}.",
        "incident_id": incident["id"],
        "table": incident["table"],
        "partition": incident.get("partition"),
        "status": incident.get("status"),
        "first_seen": incident.get("first_seen"),
        "last_seen": incident.get("last_seen"),
        "occurrences": incident.get("occurrences"),
        "run_id": incident.get("last_run_id"),
        "run_url": run_url,
        "failing": [{k: scrub(f.get(k)) for k in ("check_name", "description", "notes", "unexpected_count",
                                                  "unexpected_percent", "observed_value")} for f in failing],
    })


#: attempts per incident and the waits between them; each attempt is bounded by ``timeout_s``, so a
#: sensor tick spends at most ~``ATTEMPTS * timeout_s`` plus the waits on one incident
ATTEMPTS = 3
BACKOFF_S = (0.5, 2.0)


def redact_secrets(text: str, url: str | None) -> str:
    """``text`` with the webhook URL and each secret-looking part of it (password, path segments,
    query values, fragment) masked: error messages quote URLs, and the token is in the URL."""
    if not url:
        return text
    from urllib.parse import parse_qsl, urlsplit

    secrets = {url, url.strip()}
    try:
        parts = urlsplit(url.strip())
        secrets |= {parts.password or "", parts.fragment, parts.query, parts.path}
        secrets |= {seg for seg in parts.path.split("/") if len(seg) >= 6}
        secrets |= {v for _, v in parse_qsl(parts.query) if len(v) >= 4}
        if parts.username and parts.password:
            secrets.add(f"{parts.username}:{parts.password}")
    except ValueError:
        pass
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError))


def post_webhook(url: str, payload: Mapping[str, Any], timeout_s: float = 5.0, attempts: int = ATTEMPTS,
                 sleep=time.sleep) -> str:
    """POST ``payload`` as JSON; returns a short result ("200 OK", or "failed: …") and never raises.

    Transient failures (connection errors, timeouts, HTTP 429/5xx) are retried up to ``attempts``
    times; a malformed URL or a 4xx is not. The result never quotes the URL's secrets."""
    shown = redact_url(url, keep_path=False)
    result = "failed: not attempted"
    for attempt in range(1, max(1, attempts) + 1):
        try:
            body = json.dumps(payload, default=str).encode()
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", "User-Agent": "governance-quality-alerts/1"})
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - configured URL
                return f"{response.status} {response.reason}"
        except Exception as exc:  # noqa: BLE001 - an alert must never break the sensor that sends it
            detail = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else (
                f"{type(exc).__name__}: {exc}")
            result = f"failed after {attempt} attempt(s) to {shown}: {redact_secrets(detail, url)}"
            if not _transient(exc) or attempt >= attempts:
                break
            sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
    log.warning("quality webhook %s", result)
    return result


def raise_incident(
    store: QualityStore,
    table: str,
    partition: str | None,
    failing: Sequence[Mapping[str, Any]],
    run_id: str | None,
    webhook_url: str | None = None,
    seen_at: datetime | None = None,
    run_url: str | None = None,
) -> dict[str, Any]:
    """Record (or update) the incident and, when a webhook is configured, post it."""
    incident = store.upsert_incident(table, partition, [jsonable(dict(f)) for f in failing], run_id,
                                     seen_at or datetime.now(UTC))
    if webhook_url:
        try:
            result = post_webhook(webhook_url, incident_message(incident, run_url))
        except Exception as exc:  # noqa: BLE001 - post_webhook does not raise; this is the last guard
            result = f"failed: {type(exc).__name__}: {redact_secrets(str(exc), webhook_url)}"
        store.mark_notified(incident["id"], result)  # a "failed…" result is the recorded alert failure
        incident["notify_result"] = result
    return incident
