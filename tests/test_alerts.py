"""The failure notifier: always logs, posts to the events_alerts webhook when that connection exists."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from event_pipeline.dag_defaults import notify_failure

CONTEXT = {
    "task_instance": SimpleNamespace(dag_id="events_hourly", task_id="load_landing", try_number=3),
    "data_interval_start": datetime(2026, 11, 20, 5, tzinfo=UTC),
    "exception": RuntimeError("dumps for hour 2026-11-20T05 arrived under raw/mystery/"),
}
EXPECTED = ("events pipeline FAILED: dag=events_hourly task=load_landing hour=2026-11-20T05:00 try=3 "
            "error=RuntimeError('dumps for hour 2026-11-20T05 arrived under raw/mystery/')")


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_failure_posts_the_hour_and_the_error_to_the_webhook(webhook, monkeypatch, caplog):
    url, received = webhook
    monkeypatch.setenv("AIRFLOW_CONN_EVENTS_ALERTS", json.dumps({"conn_type": "http", "host": url}))
    notify_failure(CONTEXT)
    assert received == [{"text": EXPECTED}]
    assert EXPECTED in caplog.text


def test_without_a_webhook_the_alert_is_logged(monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_EVENTS_ALERTS", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_EVENTS_ALERTS", '{"conn_type": "http", "extra": {}}')
    notify_failure(CONTEXT)
    assert f"ALERT: {EXPECTED}" in caplog.text


def test_a_broken_webhook_does_not_hide_the_failure(monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_EVENTS_ALERTS", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9"}))
    notify_failure(CONTEXT)
    assert f"ALERT: {EXPECTED}" in caplog.text
    assert "could not post the alert" in caplog.text


def test_the_hourly_deadline_alert_names_the_late_hour(webhook, monkeypatch):
    """The events_hourly Deadline Alert's callback, run by Airflow's own CallbackTrigger (as the triggerer
    does when a deadline is missed), with the context the scheduler sends: the alert names the hour."""
    import asyncio

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DeadlineReference
    from airflow.triggers.callback import CallbackTrigger

    from event_pipeline.dag_defaults import HOURLY_DEADLINE_MINUTES

    dag = DagBag(str(Path(__file__).resolve().parents[1] / "dags" / "events_hourly.py")).dags["events_hourly"]
    (alert,) = dag.deadline
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval.total_seconds() == HOURLY_DEADLINE_MINUTES * 60
    url, received = webhook
    monkeypatch.setenv("AIRFLOW_CONN_EVENTS_ALERTS", json.dumps({"conn_type": "http", "host": url}))
    run = {"dag_id": "events_hourly", "run_id": "scheduled__2026-11-20T05:00:00+00:00", "state": "running",
           "data_interval_start": "2026-11-20T05:00:00Z"}
    trigger = CallbackTrigger(callback_path=alert.callback.path,
                              callback_kwargs={**alert.callback.kwargs, "context": {"dag_run": run}})

    async def events():
        return [event.payload async for event in trigger.run()]

    payloads = asyncio.run(events())
    assert [p["state"] for p in payloads] == ["running", "success"], payloads
    expected = ("events_hourly: hour 2026-11-20T05 (run scheduled__2026-11-20T05:00:00+00:00) is not done "
                f"{HOURLY_DEADLINE_MINUTES} min after it was queued (state: running)")
    assert payloads[-1]["body"].startswith(expected)
    assert received == [{"text": payloads[-1]["body"]}]
