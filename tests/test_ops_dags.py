"""The operations DAGs run by Airflow: maintenance retention, and recomputing edited segment definitions."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import duckdb
import pytest
from test_hourly_dag import H5, H6, HOUR_05, HOUR_06, upload

from event_pipeline import pipeline
from event_pipeline.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def load_dag(file: str, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags" / file)).get_dag(dag_id)


@pytest.fixture
def two_hours_loaded(s3, events_home):
    fs, bucket = s3
    upload(fs, bucket, H5, HOUR_05)
    upload(fs, bucket, H6, HOUR_06)
    for hour in (H5, H6):
        pipeline.run_hour(hour)
    return events_home


def data_tests() -> list[str]:
    """The project's data tests (unit tests excluded), from the committed manifest."""
    from event_pipeline.dbt_cosmos import MANIFEST_PATH

    nodes = json.loads(MANIFEST_PATH.read_text())["nodes"]
    return sorted(name for name, node in nodes.items() if node["resource_type"] == "test")


def count(path, sql: str):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_maintenance_keeps_recent_hours_and_drops_old_raw_data(two_hours_loaded, airflow_db, monkeypatch):
    home = two_hours_loaded
    work = home / "warehouse" / "work.duckdb"
    # 0.05 days = 72 minutes: at 07:00 the 05:00 hour is past retention, the 06:00 hour is not
    for name in ("EVENTS_STAGED_RETENTION_DAYS", "EVENTS_QUARANTINE_RETENTION_DAYS", "EVENTS_DOCS_RETENTION_DAYS"):
        monkeypatch.setenv(name, "0.05")
    assert count(work, "select batch_hour, count(*) from landing.staged_records group by 1 order by 1") == [
        (H5, 21), (H6, 5)]
    assert count(home / "warehouse" / "analytics.duckdb", "select count(*) from landing.quarantine") == [(5,)]
    stale_tmp = home / "warehouse" / ".analytics-crashed.duckdb"
    stale_tmp.write_bytes(b"")
    import os
    os.utime(stale_tmp, (0, 0))

    run = load_dag("maintenance.py", "warehouse_maintenance").test(
        logical_date=datetime(2026, 11, 20, 7, tzinfo=UTC))
    assert str(run.state).endswith("success")
    # the daily full-scope dbt test ran every data test of the project, and each passed
    tested = json.loads((home / "dbt_target" / "run_results.json").read_text())
    assert (tested["args"]["which"], tested["args"]["vars"]) == ("test", {})
    assert sorted(r["unique_id"] for r in tested["results"]) == data_tests()
    assert {r["status"] for r in tested["results"]} == {"pass"}

    assert count(work, "select batch_hour, count(*) from landing.staged_records group by 1") == [(H6, 5)]
    assert count(work, "select count(*) from landing.quarantine") == [(0,)]  # all 5 were in hour 05
    # the audit counts and the marts stay: the hour's balance is still there
    assert count(work, "select sum(records_read), sum(records_quarantined) from landing.object_counts "
                       "where batch_hour = '2026-11-20 05:00'") == [(21, 5)]
    docs = sorted(p.name for p in (home / "gx" / "data_docs").iterdir())
    assert docs == ["hour=2026-11-20T06"]
    assert not stale_tmp.exists()
    # the analysts' snapshot was rewritten whole: retention reached it, the marts are all there
    snapshot = home / "warehouse" / "analytics.duckdb"
    assert count(snapshot, "select count(*) from landing.quarantine") == [(0,)]
    assert count(snapshot, "select count(*) from marts.events") == count(work, "select count(*) from marts.events")


def test_an_edited_definition_is_recomputed_through_the_asset(two_hours_loaded, airflow_db, monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowSkipException

    from event_pipeline.dags_common import SEGMENT_DEFINITIONS

    home = two_hours_loaded
    definitions = tmp_path / "segments"
    shutil.copytree(REPO_ROOT / "segments", definitions)
    monkeypatch.setenv("EVENTS_SEGMENTS_DIR", str(definitions))
    watch = load_dag("segment_definitions.py", "segment_definitions_watch")
    changed_dag = load_dag("segment_definitions.py", "segment_definitions_changed")
    assert watch.get_task("detect_changed_definitions").outlets == [SEGMENT_DEFINITIONS]
    assert changed_dag.timetable.asset_condition.objects == (SEGMENT_DEFINITIONS,)  # runs on data, not a clock

    with pytest.raises(AirflowSkipException):  # nothing changed: no Asset event
        pipeline.detect_segment_changes()

    # purchasers: "a purchase in the last 30 days" becomes "in the last hour"
    path = definitions / "purchasers.yml"
    path.write_text(path.read_text().replace("last: 30d", "last: 1h"))
    assert pipeline.detect_segment_changes() == ["purchasers_30d"]

    work = home / "warehouse" / "work.duckdb"
    before = count(work, "select segment_key, version, user_key from segments.memberships "
                         "where segment_key != 'purchasers_30d' order by all")
    old_members = count(work, "select user_key from segments.memberships where segment_key = 'purchasers_30d'")
    expected = count(work, "select distinct user_key from marts.events where event_name = 'purchase' "
                           "and event_time >= '2026-11-20 06:00' and event_time < '2026-11-20 07:00' order by 1")
    run = changed_dag.test()
    assert str(run.state).endswith("success")

    members = count(work, "select user_key from segments.memberships where segment_key = 'purchasers_30d' "
                          "order by 1")
    # u1 and u4 bought in hour 05, u3 in hour 06: only u3 is left
    assert len(old_members) == 3
    assert members == expected and len(members) == 1
    versions = count(work, "select distinct version from segments.memberships where segment_key = 'purchasers_30d'")
    assert versions[0][0].startswith("v1-") and versions != count(
        work, "select distinct version from segments.membership_history where segment_key = 'purchasers_30d' "
              "and valid_to is not null")
    # the other segments were not touched
    assert count(work, "select segment_key, version, user_key from segments.memberships "
                       "where segment_key != 'purchasers_30d' order by all") == before
    # the snapshot was republished: the watcher now sees no change
    with pytest.raises(AirflowSkipException):
        pipeline.detect_segment_changes()
