"""Issue #6, part 3: the production-shaped executor. Airflow on PostgreSQL with the CeleryExecutor and Redis
(api-server, scheduler, dag-processor, triggerer and two celery workers sharing one EVENTS_HOME) runs the
hourly DAG for two hours and gives the tables of the embedded default (the same hours run directly).
Skips where PostgreSQL (127.0.0.1:5432, user postgres) or Redis (127.0.0.1:6379) is not reachable."""

from __future__ import annotations

import os
import re
import socket
import uuid
from datetime import datetime

import pytest
from airflow_services import (
    DAG_ID,
    PG_HOST,
    PG_PORT,
    PG_USER,
    ReferenceRun,
    airflow_stack,
    assert_hourly_intervals,
    assert_same_tables,
    hours_from,
    postgres_metadata_env,
    upload_sample_hours,
    warehouse_checksums,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOURS = hours_from(datetime(2026, 11, 19, 0), 2)  # the first two hours of test_backfill_rest's six
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 5  # a db number of its own on the shared Redis


def _redis_ping() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def celery_queue():
    """(broker URL, a queue of this test run's own): another run of this test on the same Redis never takes
    its tasks. The queue's keys are deleted at the end."""
    if not _redis_ping():
        pytest.skip(f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}")
    import redis

    queue = f"events-test-{uuid.uuid4().hex[:8]}"
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}", queue
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)
    client.close()


def _celery_executor_importable() -> None:
    """The celery provider must import with the pinned celery, or every worker dies at start-up."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", "import celery, airflow.providers.celery as p; "
                             "print(celery.__version__, p.__version__); "
                             "import airflow.providers.celery.executors.celery_executor_utils"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail("the CeleryExecutor cannot start with the installed packages (celery, provider: "
                    f"{result.stdout.strip() or '?'}); fix the pins in constraints.txt:\n{result.stderr[-1500:]}")


def test_two_hours_on_celery_and_postgres_equal_embedded_default(postgres_database, celery_queue, s3, s3_server,
                                                                 tmp_path):
    _celery_executor_importable()
    broker, queue = celery_queue
    reference = ReferenceRun.shared(s3_server)
    reference.ensure(HOURS)
    fs, bucket = s3
    upload_sample_hours(fs, bucket, HOURS)
    airflow_events = tmp_path / "airflow-events"  # the one warehouse both workers write (pool: 1 writer)
    db = f"{PG_USER}@{PG_HOST}:{PG_PORT}/{postgres_database}"
    celery_env = {
        **postgres_metadata_env(postgres_database),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{db}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
    }

    with airflow_stack(tmp_path / "airflow", s3_connection=os.environ["AIRFLOW_CONN_EVENTS_S3"],
                       events_home=airflow_events, extra_env=celery_env, celery_workers=2,
                       name="test_celery_postgres") as af:
        health = af.health()
        assert health["metadatabase"]["status"] == "healthy"
        af.wait_for_dag(DAG_ID)
        af.unpause(DAG_ID)
        af.create_backfill(DAG_ID, HOURS[0], HOURS[-1], max_active_runs=1)
        runs = af.wait_for_runs(DAG_ID, len(HOURS), timeout=af.run_timeout(len(HOURS)))
        worker_logs = {name: af.log(name).read_text(errors="replace") for name in ("worker-1", "worker-2")}

    # the runs are in the PostgreSQL metadata database
    import psycopg2

    con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=postgres_database)
    with con.cursor() as cur:
        cur.execute("select run_type, state, count(*) from dag_run where dag_id = %s group by 1, 2", [DAG_ID])
        assert cur.fetchall() == [("backfill", "success", len(HOURS))]
    con.close()

    assert {r["run_type"] for r in runs} == {"backfill"}, runs
    assert_hourly_intervals(runs, HOURS)
    # both workers took tasks from the queue
    executed = {name: len(re.findall(r"Executing workload in Celery", text)) for name, text in worker_logs.items()}
    assert all(executed.values()), executed
    assert_same_tables(warehouse_checksums(airflow_events / "warehouse" / "work.duckdb"),
                       reference.checksums(HOURS))
