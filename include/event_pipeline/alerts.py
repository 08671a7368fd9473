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


def deadline_message(dag_run: dict, minutes: int) -> str:
    """What a missed deadline tells the on-call engineer: which hour, which run, what to look at."""
    hour = (dag_run.get("data_interval_start") or "?")[:13]
    return (f"{dag_run.get('dag_id', '?')}: hour {hour} (run {dag_run.get('run_id', '?')}) is not done "
            f"{minutes} min after it was queued (state: {dag_run.get('state', '?')}); its data is late for "
            "analysts. Open the run in the Airflow UI: a task waiting for the duckdb_warehouse pool means "
            "another writer holds it, a long task shows its progress in its log.")


async def deadline_missed(context: dict | None = None, minutes: int = 0, **_: object) -> str:
    """Deadline Alert callback (runs in the triggerer): send the alert without blocking its event loop."""
    import asyncio

    message = deadline_message((context or {}).get("dag_run") or {}, minutes)
    await asyncio.to_thread(send_alert, message)
    return message
