"""
### events_hourly

Processes one hour of raw tracking-event dumps, `[data_interval_start, data_interval_end)`:

1. **discover_objects**: lists `s3://<bucket>/raw/<source>/dt=YYYY-MM-DD/hour=HH/*` for every source
2. **load_landing**: reads them with s3fs into `landing.staged_records` (line faults kept, none dropped)
3. **validate_records**: Great Expectations suites per source; bad records go to `landing.quarantine`
4. **dbt** (task group, rendered by astronomer-cosmos from the dbt project): dedupe, identities, sessions,
   activity marts. `dbt_producer_watcher` runs the hour's single `dbt build` (the hour in `EVENTS_BATCH_HOUR`)
   (unit tests excluded); then every model has a `<model>.run` task and a `<model>.test` task (its data
   tests) that succeed or fail with what dbt reported for it. A failed one retries by running dbt for that
   model alone (`dbt run|test --select <model>`); the producer's own retry never builds a second time.
5. **evaluate_segments**: rule / RFM / lifecycle segments as of the hour's end
6. **publish_snapshot**: atomically swaps the analysts' read-only `analytics.duckdb`

Scheduled and backfill runs process the hour starting at their logical date. A manual trigger processes
the last complete hour before its logical date. Every task is idempotent: rerun or backfill any hour.
Every task that writes the DuckDB warehouse (the dbt ones included) queues in the 1-slot
`duckdb_warehouse` pool: DuckDB takes one writing process per file. The model docs: `make dbt-docs`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from event_pipeline.dag_defaults import (
    DEFAULT_ARGS,
    TAG_EVENTS,
    TAG_HOURLY,
    TAG_SEGMENTS,
    WRITER_TASK_ARGS,
    hourly_deadline,
)
from event_pipeline.dbt_cosmos import dbt_task_group

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
    # evaluation should see exactly the hours before it. The dbt group needs it too: a failed model's task
    # retries by running dbt itself, and the next hour's build must not start until that is over (model
    # tasks are outside the writer pool, see dbt_cosmos.py).
    max_active_runs=1,
    # Stop scheduling after 6 failed hours in a row instead of piling up failures; fix, then unpause.
    max_consecutive_failed_dag_runs=6,
    # Tell someone when an hour is late, not only when a task fails: a run stuck waiting (a held pool
    # slot, a slow task) fails nothing for a long time. Alert via the events_alerts notifier.
    deadline=hourly_deadline(),
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
    def evaluate_segments(data_interval_start=None) -> dict:
        from event_pipeline import pipeline

        return pipeline.segment(pipeline.hour_start(data_interval_start))

    @task(outlets=[ANALYTICS_SNAPSHOT], **WRITER_TASK_ARGS)
    def publish_snapshot(sizes: dict, data_interval_start=None) -> dict:
        from event_pipeline import pipeline

        return pipeline.publish(pipeline.hour_start(data_interval_start))

    # Why cosmos' WATCHER mode (one `dbt build`, a sensor task per model and per model's tests) and not
    # LOCAL (one dbt process per model and per test task, all queued in the 1-slot pool): measured with
    # dag.test on the 2-core dev machine, WATCHER adds ~20-40 s an hour to the old single-task build,
    # LOCAL ~3 min (45 dbt invocations of 3-4 s each, one after the other), which also breaks the demo.
    # WATCHER keeps exactly one dbt process per hour and still gives a retryable task per model.
    segments = evaluate_segments()
    validate_records(load_landing(discover_objects())) >> dbt_task_group(group_id="dbt") >> segments
    publish_snapshot(segments)


dag = events_hourly()
