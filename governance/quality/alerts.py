"""Incidents for failed ``error`` checks, and the optional JSON webhook that announces them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from governance.quality.store import QualityStore
from governance.quality.validation import jsonable, scrub


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


def post_webhook(url: str, payload: Mapping[str, Any], timeout_s: float = 10.0) -> str:
    """POST ``payload`` as JSON; returns a short result ("200 OK" or the error) rather than raising."""
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "governance-quality-alerts/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - configured URL
            return f"{response.status} {response.reason}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return f"failed: {exc}"


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
        result = post_webhook(webhook_url, incident_message(incident, run_url))
        store.mark_notified(incident["id"], result)
        incident["notify_result"] = result
    return incident
