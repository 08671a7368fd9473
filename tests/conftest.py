"""Shared fixtures: a real S3 endpoint (moto server over HTTP), an isolated Airflow home, a warehouse per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_OUTPUT = REPO / "test-output"

# Airflow reads its configuration once, at import: point it at a throwaway home before anything imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="events-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(_AIRFLOW_HOME / "passwords.json"),
    "EVENTS_DATA_DOCS": "1",
})
os.environ.pop("EVENTS_WAREHOUSE_PATH", None)
os.environ.pop("EVENTS_ANALYTICS_PATH", None)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free 127.0.0.1 port: the real S3 HTTP API, as s3fs's own tests use."""
    from moto.server import ThreadedMotoServer

    from event_pipeline.local_s3 import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """A fresh bucket per test, wired in through the Airflow connection env var the pipeline reads."""
    from event_pipeline import storage
    from event_pipeline.local_s3 import LOCAL_KEY, LOCAL_SECRET, create_bucket

    bucket = f"events-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AIRFLOW_CONN_EVENTS_S3", json.dumps({
        "conn_type": "aws", "login": LOCAL_KEY, "password": LOCAL_SECRET,
        "extra": {"endpoint_url": s3_server, "bucket": bucket, "region_name": "us-east-1"},
    }))
    create_bucket(s3_server, bucket)
    return storage.filesystem(), bucket


@pytest.fixture
def events_home(tmp_path, monkeypatch):
    """EVENTS_HOME for one test: its own warehouse, snapshot and GX docs."""
    home = tmp_path / "events"
    monkeypatch.setenv("EVENTS_HOME", str(home))
    monkeypatch.delenv("EVENTS_WAREHOUSE_PATH", raising=False)
    monkeypatch.delenv("EVENTS_ANALYTICS_PATH", raising=False)
    return home


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata DB (SQLite, the embedded default) in the session's throwaway home."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    for cmd in (["airflow", "db", "migrate"],
                ["airflow", "pools", "set", "duckdb_warehouse", "1", "one writer for the DuckDB warehouse"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return _AIRFLOW_HOME


@pytest.fixture
def postgres_database():
    """A fresh, empty Airflow metadata database on the machine's PostgreSQL (its name), dropped at the end."""
    from airflow_services import PostgresUnavailable, postgres_metadata_database

    try:
        with postgres_metadata_database() as name:
            yield name
    except PostgresUnavailable as exc:  # raised only on entering: pytest does not throw test failures in here
        pytest.skip(str(exc))
