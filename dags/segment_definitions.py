"""
### segment_definitions_watch → segment_definitions_changed

Editing a segment definition (`segments/*.yml`) is a new version. Two small DAGs make the change take
effect without waiting for the next hour and without anyone triggering anything by hand:

- **segment_definitions_watch** (every 15 minutes, read-only): validates the definitions and compares their
  versions with the ones the last evaluation used, in the analysts' snapshot. When one changed it updates
  the `SEGMENT_DEFINITIONS` Asset; otherwise it skips (no Asset event).
- **segment_definitions_changed** (scheduled on that Asset): recomputes only the changed segments' current
  membership as of the latest evaluated hour, then publishes a new snapshot. History keeps which version
  tagged whom.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from event_pipeline.dag_defaults import DEFAULT_ARGS, TAG_EVENTS, TAG_SEGMENTS, WRITER_TASK_ARGS
from event_pipeline.dags_common import ANALYTICS_SNAPSHOT, SEGMENT_DEFINITIONS


@dag(
    dag_id="segment_definitions_watch",
    schedule=timedelta(minutes=15),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # A check is cheap and read-only; overlapping checks would only emit the same event twice.
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[TAG_EVENTS, TAG_SEGMENTS],
    doc_md=__doc__,
)
def segment_definitions_watch():
    @task(outlets=[SEGMENT_DEFINITIONS])
    def detect_changed_definitions() -> list[str]:
        from event_pipeline.pipeline import detect_segment_changes

        return detect_segment_changes()

    detect_changed_definitions()


@dag(
    dag_id="segment_definitions_changed",
    schedule=[SEGMENT_DEFINITIONS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Recomputes write the warehouse: one at a time (and the pool serialises it with the hourly runs).
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[TAG_EVENTS, TAG_SEGMENTS],
    doc_md=__doc__,
)
def segment_definitions_changed():
    @task(**WRITER_TASK_ARGS)
    def recompute_changed_segments() -> dict:
        from event_pipeline.pipeline import recompute_changed_segments

        return recompute_changed_segments()

    @task(outlets=[ANALYTICS_SNAPSHOT], **WRITER_TASK_ARGS)
    def publish_snapshot(result: dict) -> dict:
        from event_pipeline.pipeline import publish

        return publish(None)

    publish_snapshot(recompute_changed_segments())


watch_dag = segment_definitions_watch()
changed_dag = segment_definitions_changed()
