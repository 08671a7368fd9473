"""
### warehouse_maintenance

Daily housekeeping of the warehouse, one concern per task:

1. **apply_retention**: deletes raw landing data (`landing.staged_records`, default 7 days) and quarantined
   records (`landing.quarantine`, default 90 days) of old dump hours; per-object counts stay for audits.
   `EVENTS_STAGED_RETENTION_DAYS`, `EVENTS_QUARANTINE_RETENTION_DAYS` configure it.
2. **checkpoint_warehouse**: `FORCE CHECKPOINT` on the DuckDB file (WAL folded in, free blocks reclaimed).
3. **republish_snapshot**: writes the analysts' snapshot whole (hourly publishes rewrite only the rows that
   changed, which leaves free blocks in the file; this compacts it and carries the retention to it).
4. **prune_docs**: GX Data Docs sites older than `EVENTS_DOCS_RETENTION_DAYS` (30), dbt's per-run
   artifacts, snapshot temp files left by a crashed publish.
5. **test_warehouse**: every dbt data test over every row (`dbt test`, full scope). The hourly build tests
   only what its hour wrote, and some whole-history tests only here (`dbt_project/macros/get_where_subquery.sql`);
   a failure here names the test: query its failing rows with `dbt test --select <test> --store-failures`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from event_pipeline.dag_defaults import DEFAULT_ARGS, TAG_EVENTS, TAG_MAINTENANCE, WRITER_TASK_ARGS


@dag(
    dag_id="warehouse_maintenance",
    # Daily at 03:30 UTC, away from the top of the hour when the hourly run starts.
    schedule="30 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[TAG_EVENTS, TAG_MAINTENANCE],
    doc_md=__doc__,
)
def warehouse_maintenance():
    @task(**WRITER_TASK_ARGS)
    def apply_retention(data_interval_end=None) -> dict:
        from event_pipeline.pipeline import maintenance_retention

        return maintenance_retention(data_interval_end)

    @task(**WRITER_TASK_ARGS)
    def checkpoint_warehouse(retained: dict) -> dict:
        from event_pipeline.pipeline import maintenance_checkpoint

        return maintenance_checkpoint()

    @task(**WRITER_TASK_ARGS)
    def republish_snapshot(checkpointed: dict) -> dict:
        from event_pipeline.pipeline import publish

        return publish(None, full=True)

    @task
    def prune_docs(republished: dict, data_interval_end=None) -> dict:
        from event_pipeline.pipeline import maintenance_prune_docs

        return maintenance_prune_docs(data_interval_end)

    # after prune_docs, which deletes dbt's compiled SQL that a running dbt writes to
    @task(**WRITER_TASK_ARGS)
    def test_warehouse(pruned: dict) -> dict:
        from event_pipeline.pipeline import dbt_test_all

        return dbt_test_all()

    test_warehouse(prune_docs(republish_snapshot(checkpoint_warehouse(apply_retention()))))


dag = warehouse_maintenance()
