"""The hourly DAG run by Airflow's own test runner against the real S3 endpoint, two hours, exact outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pendulum
import pytest
from airflow_services import warehouse_checksums

from event_pipeline.storage import dump_key

pytestmark = pytest.mark.integration

H5 = datetime(2026, 11, 20, 5)
H6 = datetime(2026, 11, 20, 6)


def ms(hh: int, mm: int) -> int:
    return int(datetime(2026, 11, 20, hh, mm, tzinfo=UTC).timestamp() * 1000)


def at(hh: int, mm: int) -> str:
    return f"2026-11-20T{hh:02d}:{mm:02d}:00Z"


def hackle(user, key, minute, value=None, hh=5):
    event = {"key": key} if value is None else {"key": key, "value": value}
    return {"received_at": at(hh, minute), "body": {"event": event, "user": {"id": user}, "timestamp": ms(hh, minute)}}


def ss(user, name, insert_id, minute, key=None, hh=5):
    event = {"distinct_id": user, "event": name, "$insert_id": insert_id, "$time": ms(hh, minute),
             "properties": {"plan": "pro"}}
    if key:
        event["$idempotency_key"] = key
    return event


def trak(call, body, minute, hh=5):
    return {"received_at": at(hh, minute), "call": call, "body": body}


def orbee(body, minute, hh=5):
    return {"received_at": at(hh, minute), "path": "/collect/12/34/event",
            "body": {"vendor": "Vendor A", "product": "Product 1", **body}}


HACKLE_05 = [hackle("u1", "purchase", 10, 100), hackle("u2", "view_item", 11), hackle("u1", "login", 12),
             hackle("u3", "add_to_cart", 20), hackle("u2", "purchase", 21, "x")]
HOUR_05 = {
    "hackle/part-0000.jsonl": HACKLE_05,
    "hackle/part-0000-retry.jsonl": HACKLE_05[:2],  # re-delivery: 2 duplicates
    "suprsend/part-0000.jsonl": [
        {"received_at": at(5, 5), "body": ss("u4", "signup", "ss-1", 5, key="welcome-u4")},
        {"received_at": at(5, 30), "body": ss("u4", "purchase", "ss-2", 30, key="order-77")},
        {"received_at": at(5, 31), "body": [ss("u5", "login", "ss-3", 31), ss("u5", "$internal", "ss-4", 31),
                                            ss("u6", "view_item", "ss-5", 31)]},
        b'{"received_at": "2026-11-20T05:40:00Z", "body": {',
    ],
    "trakio/part-0000.jsonl": [
        trak("identify", {"distinct_id": "u1", "properties": {"plan": "pro", "email": "u1@example.com"}}, 1),
        trak("alias", {"distinct_id": "u1", "alias": ["anon-1"]}, 2),
        trak("track", {"distinct_id": "u2", "event": "search", "time": at(5, 40)}, 40),
        trak("annotate", {"event": "Deployed update", "properties": {"commit": "5ab430d"}}, 41),
        trak("group", {"distinct_id": "u2"}, 42),
    ],
    "orbee/part-0000.jsonl": [
        orbee({"action": "view", "object": "vehicle", "anonymous_id": "anon-1", "instance_id": "chat-1",
               "timestamp": at(5, 45)}, 45),
        orbee({"action": "start", "object": "chat", "anonymous_id": "anon-9", "instance_id": "chat-1",
               "timestamp": at(5, 50)}, 50),
        orbee({"action": "submit", "object": "form", "instance_id": "chat-2", "vendor": None}, 51),
    ],
}
HOUR_06 = {
    # the first line is hour 05's purchase delivered again an hour later: a duplicate across hours
    "hackle/part-0000.jsonl": [HACKLE_05[0], hackle("u3", "purchase", 15, 250, hh=6)],
    "suprsend/part-0000.jsonl": [
        # same idempotency key as ss-2 (05:30), 50 minutes later: dropped
        {"received_at": at(6, 20), "body": ss("u4", "purchase", "ss-7", 20, key="order-77", hh=6)},
        {"received_at": at(6, 30), "body": ss("u7", "login", "ss-8", 30, hh=6)},
    ],
    # a late event: happened at 04:30, arrived in hour 06's dump
    "trakio/part-0000.jsonl": [trak("track", {"distinct_id": "u2", "event": "login", "time": at(4, 30)}, 5, hh=6)],
}


def upload(fs, bucket, hour, files):
    for name, lines in files.items():
        source, filename = name.split("/")
        data = b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines)
        fs.pipe_file(f"{bucket}/{dump_key(source, hour, filename)}", data)


@pytest.fixture(scope="module")
def hourly_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from event_pipeline.settings import REPO_ROOT

    return DagBag(dag_folder=str(REPO_ROOT / "dags" / "events_hourly.py")).get_dag("events_hourly")


def run_hour(dag, hour):
    """A manual run processes the last complete hour before its logical date: logical date H+1h -> [H, H+1h)."""
    run = dag.test(logical_date=(hour + timedelta(hours=1)).replace(tzinfo=UTC))
    assert str(run.state).endswith("success"), f"run for {hour} ended {run.state}"
    assert run.data_interval_start == hour.replace(tzinfo=UTC)
    assert run.data_interval_end == (hour + timedelta(hours=1)).replace(tzinfo=UTC)
    return run


def test_scheduled_run_for_0500_covers_hour_05(hourly_dag):
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    from event_pipeline.pipeline import hour_start

    timetable = coerce_to_core_timetable(hourly_dag.timetable)  # the scheduler's view of the timetable
    info = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(pendulum.datetime(2026, 11, 20, 4, tz="UTC"),
                                                  pendulum.datetime(2026, 11, 20, 5, tz="UTC")),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    assert (info.logical_date, info.data_interval.start, info.data_interval.end) == (
        H5.replace(tzinfo=UTC), H5.replace(tzinfo=UTC), H6.replace(tzinfo=UTC))
    assert hour_start(info.data_interval.start) == H5


def producer_xcom_keys(run) -> set[str]:
    """The XCom keys the dbt group's producer left in this run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel.key).filter(
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id,
            XComModel.task_id == "dbt.dbt_producer_watcher").all()
    return {key for (key,) in rows}


def keys_the_dbt_tasks_read(dag) -> set[str]:
    """Per cosmos' consumers: a model task reads its model's status, compiled SQL and dbt event, a test task
    its model's aggregated test status and dbt event."""
    keys = set()
    for task in dag.tasks:
        node = getattr(task, "model_unique_id", None)
        if node:
            prefix = node.replace(".", "__")
            kinds = ("tests_status",) if task.is_test_sensor else ("status", "compiled_sql")
            keys |= {f"{prefix}_{kind}" for kind in (*kinds, "dbt_event")}
    return keys


def test_two_hours_through_airflow_then_a_rerun_changes_nothing(s3, events_home, airflow_db, hourly_dag):
    fs, bucket = s3
    upload(fs, bucket, H5, HOUR_05)
    upload(fs, bucket, H6, HOUR_06)

    run = run_hour(hourly_dag, H5)
    # the producer wrote every key a model or test task reads, and besides them only cosmos' own bookkeeping
    # and its two sources' test statuses: no data test's dbt event (dbt_cosmos.XComWrittenOnce)
    written, read = producer_xcom_keys(run), keys_the_dbt_tasks_read(hourly_dag)
    assert read - written == set()
    assert written - read == {
        "dbt_startup_events", "producer_cmd_flags", "task_status",
        "source__event_pipeline__landing__events_tests_status",
        "source__event_pipeline__landing__object_counts_tests_status",
    }
    con = duckdb.connect(str(events_home / "warehouse" / "work.duckdb"), read_only=True)
    # the run for hour 05 read hour=05 objects only, although hour 06 was already in the bucket
    keys = [k for (k,) in con.execute("select distinct object_key from landing.object_counts order by 1").fetchall()]
    assert keys == [dump_key(*name.split("/")[:1], H5, name.split("/")[1]) for name in sorted(HOUR_05)]
    con.close()

    run_hour(hourly_dag, H6)
    work = events_home / "warehouse" / "work.duckdb"
    con = duckdb.connect(str(work), read_only=True)
    counts = con.execute(
        "select batch_hour, sum(records_read), sum(records_valid), sum(records_quarantined) "
        "from landing.object_counts group by 1 order by 1").fetchall()
    assert counts == [(H5, 21, 16, 5), (H6, 5, 5, 0)]
    reasons = con.execute(
        "select source, line_number, record_index, reason_codes from landing.quarantine order by all").fetchall()
    assert reasons == [
        ("hackle", 5, 0, ["value_not_numeric"]),
        ("orbee", 3, 0, ["missing_required_field"]),
        ("suprsend", 3, 1, ["reserved_event_name"]),
        ("suprsend", 4, 0, ["malformed_json"]),
        ("trakio", 5, 0, ["unknown_message_type"]),
    ]
    stats = con.execute(
        "select batch_hour, sum(records_read), sum(records_quarantined), sum(duplicates_removed), "
        "sum(events_loaded) from marts.hourly_load_stats group by 1 order by 1").fetchall()
    assert stats == [(H5, 21, 5, 2, 14), (H6, 5, 0, 2, 3)]
    con.close()

    # analysts read the published snapshot, read-only
    snapshot = duckdb.connect(str(events_home / "warehouse" / "analytics.duckdb"), read_only=True)
    published = snapshot.execute("select published_batch_hour, latest_batch_hour from meta.snapshot").fetchall()
    assert published == [(H6, H6)]
    assert snapshot.execute("select count(*) from landing.quarantine").fetchall() == [(5,)]
    snapshot.close()

    before = warehouse_checksums(work)
    run_hour(hourly_dag, H5)
    run_hour(hourly_dag, H6)
    assert warehouse_checksums(work) == before


READER = r"""
import sys, time, duckdb
path, stop_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
import os
reads = errors = inconsistent = 0
seen = set()
while not os.path.exists(stop_file):
    try:
        con = duckdb.connect(path, read_only=True)
        last = con.execute("select latest_batch_hour from meta.snapshot").fetchall()[0][0]
        stats_last, read, loaded, quarantined, dups = con.execute(
            "select max(batch_hour), sum(records_read), sum(events_loaded), sum(records_quarantined), "
            "sum(duplicates_removed) from marts.hourly_load_stats").fetchall()[0]
        landing = con.execute("select count(*) from landing.quarantine").fetchall()[0][0]
        con.close()
        reads += 1
        seen.add(str(last))
        # one consistent state: the snapshot's hour is the newest hour in its stats, and the counts balance
        if stats_last != last or read != loaded + quarantined + dups or landing != quarantined:
            inconsistent += 1
    except Exception as exc:
        errors += 1
        print(repr(exc), file=sys.stderr)
    time.sleep(0.02)
import json
open(out, "w").write(json.dumps([reads, errors, inconsistent, sorted(seen)]))
"""


def test_analysts_read_consistent_snapshots_during_runs(s3, events_home, airflow_db, hourly_dag, tmp_path):
    import subprocess
    import sys

    fs, bucket = s3
    upload(fs, bucket, H5, HOUR_05)
    upload(fs, bucket, H6, HOUR_06)
    run_hour(hourly_dag, H5)  # the first snapshot exists before the reader starts
    stop, out = tmp_path / "stop", tmp_path / "reader.out"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(events_home / "warehouse" / "analytics.duckdb"),
                               str(stop), str(out)], stderr=subprocess.PIPE, text=True)
    try:
        run_hour(hourly_dag, H6)
        run_hour(hourly_dag, H5)  # a rerun while reading, too
    finally:
        stop.write_text("stop")
        _, stderr = reader.communicate(timeout=60)
    reads, errors, inconsistent, seen = json.loads(out.read_text())
    assert (errors, inconsistent) == (0, 0), stderr[-2000:]
    assert reads > 20
    # the reader saw the hour-05 snapshot and then the hour-06 one, never anything in between
    assert seen == ["2026-11-20 05:00:00", "2026-11-20 06:00:00"]
