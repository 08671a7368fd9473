"""
### events_hourly

Processes one hour of raw tracking-event dumps, `[data_interval_start, data_interval_end)`:

1. **discover_objects**: lists `s3://<bucket>/raw/<source>/dt=YYYY-MM-DD/hour=HH/*` for every source
2. **load_landing**: reads them with s3fs into `landing.staged_records` (line faults kept, none dropped)
3. **validate_records**: Great Expectations suites per source; bad records go to `landing.quarantine`
4. **dbt_build**: dedupe, identities, sessions, activity marts (`dbt build`)
5. **evaluate_segments**: rule / RFM / lifecycle segments as of the hour's end
6. **publish_snapshot**: atomically swaps the analysts' read-only `analytics.duckdb`

Scheduled and backfill runs process the hour starting at their logical date. A manual trigger processes
the last complete hour before its logical date. Every task is idempotent: rerun or backfill any hour.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from event_pipeline.dag_defaults import DEFAULT_ARGS, TAG_EVENTS, TAG_HOURLY, TAG_SEGMENTS, WRITER_TASK_ARGS

ANALYTICS_SNAPSHOT = Asset("duckdb://analytics/events_snapshot")


@dag(
    dag_id="events_hourly",
    # Real hourly data intervals: the run for 05:00 covers [05:00, 06:00) (plain "@hourly" in Airflow 3
    # gives runs whose interval start equals its end).
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    # Don't create a run for every hour since start_date when the DAG is first switched on; older hours
    # are backfilled on purpose from the UI.
    catchup=False,
    # One run at a time: every run writes the same DuckDB file, and each hour's dbt build and segment
    # evaluation should see exactly the hours before it.
    max_active_runs=1,
    # Stop scheduling after 6 failed hours in a row instead of piling up failures; fix, then unpause.
    max_consecutive_failed_dag_runs=6,
    default_args=DEFAULT_ARGS,
    tags=[TAG_EVENTS, TAG_HOURLY, TAG_SEGMENTS],
    doc_md=__doc__,
)
def events_hourly():
    @task
    def discover_objects(data_interval_start=None) -> list[dict]:
        from event_pipeline import pipeline

        return pipeline.discover(pipeline.hour_start(data_interval_start))

    @task(**WRITER_TASK_ARGS)
    def load_landing(objects: list[dict], data_interval_start=None) -> dict:
        from event_pipeline import pipeline

        return pipeline.load(pipeline.hour_start(data_interval_start), objects)

    @task(**WRITER_TASK_ARGS)
    def validate_records(loaded: dict, data_interval_start=None) -> dict:
        from event_pipeline import pipeline

        return pipeline.validate(pipeline.hour_start(data_interval_start))

    @task(**WRITER_TASK_ARGS)
    def dbt_build(validated: dict, data_interval_start=None) -> dict:
        from event_pipeline import pipeline

        return pipeline.dbt_build(pipeline.hour_start(data_interval_start))

    @task(**WRITER_TASK_ARGS)
    def evaluate_segments(built: dict, data_interval_start=None) -> dict:
        from event_pipeline import pipeline

        return pipeline.segment(pipeline.hour_start(data_interval_start))

    @task(outlets=[ANALYTICS_SNAPSHOT], **WRITER_TASK_ARGS)
    def publish_snapshot(sizes: dict, data_interval_start=None) -> dict:
        from event_pipeline import pipeline

        return pipeline.publish(pipeline.hour_start(data_interval_start))

    objects = discover_objects()
    publish_snapshot(evaluate_segments(dbt_build(validate_records(load_landing(objects)))))


dag = events_hourly()
