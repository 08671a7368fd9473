"""
### privacy_requests

Deletes a person's data everywhere in the warehouse and keeps it out of every later run or backfill.

Trigger it with **Trigger DAG w/ config** `{"user_id": "<any id of the person>"}`, or drop request files
`s3://<bucket>/privacy/requests/<request_id>.json` (`{"user_id": "..."}`): the daily run picks them up.

1. **collect_requests**: the id from the run's params plus unprocessed request files (skips when none)
2. **forget_people**: every id stitched to the person goes on `privacy.suppressed_ids`; their rows leave
   landing (quarantine included), segments and the GX Data Docs of the hours they appeared in
3. **rebuild_models**: `dbt build --full-refresh` rebuilds every dbt table from the cleaned landing tables
4. **publish_snapshot**: swaps in an analysts' snapshot without the person
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from event_pipeline.dag_defaults import DEFAULT_ARGS, TAG_EVENTS, TAG_PRIVACY, WRITER_TASK_ARGS
from event_pipeline.dags_common import ANALYTICS_SNAPSHOT


@dag(
    dag_id="privacy_requests",
    # Daily sweep of request files; people can also be forgotten at once with a manual trigger.
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # One request batch at a time: both runs would rewrite the whole warehouse.
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"user_id": Param(None, type=["null", "string"], description="an id of the person to forget")},
    tags=[TAG_EVENTS, TAG_PRIVACY],
    doc_md=__doc__,
)
def privacy_requests():
    @task.short_circuit(**WRITER_TASK_ARGS)
    def collect_requests(params=None, run_id=None) -> list[dict]:
        from event_pipeline.pipeline import collect_privacy_requests

        return collect_privacy_requests((params or {}).get("user_id"), run_id)

    @task(**WRITER_TASK_ARGS)
    def forget_people(requests: list[dict]) -> list[dict]:
        from event_pipeline.pipeline import forget_person

        return [forget_person(r["user_id"], r["request_id"]) for r in requests]

    @task(**WRITER_TASK_ARGS)
    def rebuild_models(forgotten: list[dict]) -> dict:
        from event_pipeline.pipeline import dbt_build

        return dbt_build(None, full_refresh=True)

    @task(outlets=[ANALYTICS_SNAPSHOT], **WRITER_TASK_ARGS)
    def publish_snapshot(built: dict) -> dict:
        from event_pipeline.pipeline import publish

        # full: a new file, and no spare (the older snapshot an hourly publish keeps to write in place),
        # so no snapshot still holding the forgotten person stays on disk once its readers close it
        return publish(None, full=True)

    publish_snapshot(rebuild_models(forget_people(collect_requests())))


dag = privacy_requests()
