"""The failure notifier: always logs, posts to the events_alerts webhook when that connection exists."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
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
