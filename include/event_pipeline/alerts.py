"""Pipeline alerts: always logged; also posted to a Slack webhook when the `events_alerts` connection exists.

    AIRFLOW_CONN_EVENTS_ALERTS='{"conn_type": "http", "host": "https://hooks.slack.com/services/T000/B000/XXX"}'

Any webhook that accepts Slack's `{"text": ...}` JSON works (Mattermost, Teams workflows, a test server).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request

from event_pipeline.settings import _connection_from_airflow, _parse_connection

log = logging.getLogger(__name__)
ALERTS_CONN_ID = "events_alerts"


def webhook_url() -> str | None:
    raw = os.environ.get(f"AIRFLOW_CONN_{ALERTS_CONN_ID.upper()}")
    if raw and raw.strip().startswith("{"):
        conn = json.loads(raw)
        url = conn.get("host") or (conn.get("extra") or {}).get("webhook_url")
    elif raw:
        conn = _parse_connection(raw)
        url = conn["extra"].get("webhook_url")
    else:
        conn = _connection_from_airflow(ALERTS_CONN_ID)
        url = (conn or {}).get("extra", {}).get("webhook_url") if conn else None
    return url or None


def send_alert(message: str) -> bool:
    """Log the alert and post it to the webhook if one is configured. Returns True when posted.

    A broken webhook must not hide the original failure: its error is logged, not raised."""
    log.error("ALERT: %s", message)
    url = webhook_url()
    if not url:
        return False
    request = urllib.request.Request(url, data=json.dumps({"text": message}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return 200 <= response.status < 300
    except Exception as exc:  # see docstring: never raise from the notifier
        log.error("could not post the alert to the events_alerts webhook: %s", exc)
        return False
