"""Privacy requests end to end: the person disappears from every table and no rerun brings them back."""

from __future__ import annotations

import json

import duckdb
import pytest
from test_hourly_dag import H5, H6, HOUR_05, HOUR_06, upload

from event_pipeline import pipeline
from event_pipeline.snapshot import spare_path

pytestmark = pytest.mark.integration

# anon-9 is stitched to u1 (alias u1 -> anon-1, Orbee instance chat-1 shared by anon-1 and anon-9)
U1_IDS = ["anon-1", "anon-9", "chat-1", "u1"]


def mentions(path, ids: list[str]) -> dict[str, int]:
    """Rows of every table (privacy.* aside) holding one of the ids in any text, JSON or list column."""
    con = duckdb.connect(str(path), read_only=True)
    columns = con.execute(
        "select c.table_schema, c.table_name, c.column_name, c.data_type from information_schema.columns c "
        "join information_schema.tables t using (table_schema, table_name) "
        "where t.table_type = 'BASE TABLE' and c.table_schema != 'privacy' "
        "and (c.data_type in ('VARCHAR', 'JSON') or c.data_type = 'VARCHAR[]')").fetchall()
    found = {}
    for schema, table, column, dtype in columns:
        if dtype == "VARCHAR[]":
            predicate = f'list_has_any("{column}", $ids)'
        else:
            predicate = (f'list_contains($ids, "{column}"::varchar) or exists (select 1 from unnest($ids) i(id) '
                         f"where contains(\"{column}\"::varchar, '\"' || i.id || '\"'))")
        n = con.execute(f'select count(*) from "{schema}"."{table}" where {predicate}', {"ids": ids}).fetchall()[0][0]
        if n:
            found[f"{schema}.{table}.{column}"] = n
    con.close()
    return found


def stats(path):
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "select batch_hour, sum(records_read), sum(records_quarantined), sum(duplicates_removed), "
        "sum(records_suppressed), sum(events_loaded) from marts.hourly_load_stats group by 1 order by 1").fetchall()
    users = con.execute("select count(*) from marts.users").fetchall()[0][0]
    con.close()
    return rows, users


def test_forget_a_person_through_the_dag_and_keep_them_out(s3, events_home, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from event_pipeline.settings import REPO_ROOT

    fs, bucket = s3
    upload(fs, bucket, H5, HOUR_05)
    upload(fs, bucket, H6, HOUR_06)
    for hour in (H5, H6):
        pipeline.run_hour(hour)
    work = events_home / "warehouse" / "work.duckdb"
    analytics = events_home / "warehouse" / "analytics.duckdb"
    assert stats(work) == ([(H5, 21, 5, 2, 0, 14), (H6, 5, 0, 2, 0, 3)], 7)
    assert mentions(spare_path(analytics), U1_IDS)  # the snapshot before the last, kept for the next publish
    assert mentions(work, U1_IDS)  # the person is there before the request

    # one request as a file in object storage, one as the run's parameter (any of the person's ids)
    fs.pipe_file(f"{bucket}/privacy/requests/req-42.json", json.dumps({"user_id": "u3"}).encode())
    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "privacy_requests.py")).get_dag("privacy_requests")
    run = dag.test(run_conf={"user_id": "anon-9"})
    assert str(run.state).endswith("success")

    # u1: 2 hackle events + their retry copy, identify, alias, 2 orbee events in hour 05; the re-delivered
    # purchase in hour 06. u3: add_to_cart in hour 05, purchase in hour 06.
    expected = ([(H5, 21, 5, 1, 8, 7), (H6, 5, 0, 1, 2, 2)], 5)
    for path in (work, analytics):
        assert mentions(path, [*U1_IDS, "u3"]) == {}
        assert stats(path) == expected
    assert not spare_path(analytics).exists()  # no older snapshot with the person is left behind
    con = duckdb.connect(str(work), read_only=True)
    assert con.execute("select id_value from privacy.suppressed_ids order by 1").fetchall() == [
        (i,) for i in sorted([*U1_IDS, "u3"])]
    assert con.execute("select request_id, requested_id from privacy.requests order by 2").fetchall()[0] == (
        run.run_id, "anon-9")
    con.close()

    # a rerun or backfill of the hours reads the same dumps again: the person stays out
    for hour in (H5, H6):
        pipeline.run_hour(hour)
    assert mentions(work, [*U1_IDS, "u3"]) == {}
    assert stats(work) == expected

    # the request file is processed once
    assert pipeline.collect_privacy_requests(None, "later") == []
