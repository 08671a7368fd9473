"""Shared DAG settings: tags, retry policy, timeouts and the failure notifier, in one place."""

from __future__ import annotations

from datetime import timedelta

from event_pipeline.settings import WAREHOUSE_POOL

# Tags as constants so the UI filters stay consistent across DAGs.
TAG_EVENTS = "events"
TAG_HOURLY = "hourly"
TAG_SEGMENTS = "segments"
TAG_MAINTENANCE = "maintenance"
TAG_PRIVACY = "privacy"

OWNER = "data-engineering"


def failure_message(context) -> str:
    """Which DAG, task and hour failed, on which try, and why."""
    ti = context.get("task_instance") or context.get("ti")
    start = context.get("data_interval_start")
    hour = f"{start:%Y-%m-%dT%H}:00" if start else "?"
    return (f"events pipeline FAILED: dag={getattr(ti, 'dag_id', '?')} task={getattr(ti, 'task_id', '?')} "
            f"hour={hour} try={getattr(ti, 'try_number', '?')} error={context.get('exception')!r}")


def notify_failure(context) -> None:
    """Failure callback: says which hour failed and why, through the pluggable notifier (log, webhook)."""
    from event_pipeline.alerts import send_alert

    send_alert(failure_message(context))


DEFAULT_ARGS = {
    "owner": OWNER,
    # Object storage and the metadata DB have transient faults; retry with growing pauses.
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    # An hour of data must finish well inside the hour, or the next run queues behind it.
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": notify_failure,
}

# Every task that writes the DuckDB warehouse file runs in this 1-slot pool: DuckDB allows one
# writing process per file, so two writers at once would fail with "Could not set lock on file".
WRITER_TASK_ARGS = {"pool": WAREHOUSE_POOL}


# An hour's run should be done well before the next hour's dumps arrive; 45 minutes after it was queued
# the data is late for analysts and someone should look, even if nothing has failed (yet).
HOURLY_DEADLINE_MINUTES = 45


def hourly_deadline():
    """A Deadline Alert (Airflow 3.1+): the run not finished HOURLY_DEADLINE_MINUTES after being queued."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from event_pipeline.airflow_compat import let_dag_test_finish_with_deadlines

    let_dag_test_finish_with_deadlines()
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=HOURLY_DEADLINE_MINUTES),
        callback=AsyncCallback("event_pipeline.alerts.deadline_missed",
                               kwargs={"minutes": HOURLY_DEADLINE_MINUTES}),
        name="hour_late",
    )
