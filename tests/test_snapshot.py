"""The analysts' snapshot: an incremental publish rewrites only what changed and always equals the warehouse."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import duckdb
import pytest

from event_pipeline.snapshot import publish_snapshot

H5 = datetime(2026, 11, 20, 5)
H6 = datetime(2026, 11, 20, 6)


def contents(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple]]:
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = ? "
        "and table_schema not in ('meta', 'audit') order by all", [catalog]).fetchall()
    return {f"{s}.{t}": sorted(map(str, con.execute(f'select * from "{catalog}"."{s}"."{t}"').fetchall()))
            for s, t in tables}


@pytest.fixture
def work(tmp_path):
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    con.execute("create schema marts; create schema segments; create schema landing")
    con.execute("create table marts.events (event_id varchar, user_key varchar, event_hour timestamp, "
                "properties json, alias_ids varchar[])")
    con.execute("insert into marts.events select 'e' || i, 'u' || (i % 7), timestamp '2026-11-20 05:00' "
                "+ to_hours(i % 3), json_object('n', i), ['a' || i] from range(1000) t(i)")
    con.execute("create table marts.daily_user_activity as select 'u' || i as user_key, "
                "date '2026-11-20' as activity_date, i as event_count from range(7) t(i)")
    con.execute("create table segments.memberships as select 'u' || i as user_key, 'active' as segment "
                "from range(7) t(i)")
    con.execute("create table landing.quarantine as select 'q' || i as record, 'bad' as reason from range(5) t(i)")
    con.execute("create table segments.retired as select 1 as x")
    con.execute("create table landing.object_counts as select timestamp '2026-11-20 05:00' as batch_hour, "
                "20 as records_read")
    yield con
    con.close()


def assert_snapshot_equals_warehouse(work, target) -> None:
    work.execute(f"attach '{target}' as published (read_only)")
    try:
        assert contents(work, "published") == contents(work, "work")
    finally:
        work.execute("detach published")


def published_tables(con) -> list[tuple[str, str]]:
    return [tuple(row) for row in con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = current_database() "
        "and table_schema != 'audit' order by all").fetchall()]  # as pipeline.publish: the log stays behind


def test_incremental_publish_rewrites_only_what_changed_and_equals_the_warehouse(work, tmp_path):
    target = tmp_path / "analytics.duckdb"
    first = publish_snapshot(work, target, published_tables(work), H5)
    assert first["mode"] == "full"
    assert first["actions"]["marts.events"] == "copied 1000 rows"

    # a reader holds the first snapshot open across the next publish
    reader = duckdb.connect(str(target), read_only=True)
    before = contents(reader, "analytics")

    work.execute("update marts.events set user_key = 'u-merged' where event_id in ('e1', 'e2')")
    work.execute("delete from marts.events where event_id = 'e3'")
    work.execute("insert into marts.events values ('e1000', 'u1', timestamp '2026-11-20 06:00', '{}', []), "
                 "(null, null, timestamp '2026-11-20 06:00', null, null)")
    work.execute("update marts.daily_user_activity set event_count = 99 where user_key = 'u0'")
    # what the dbt models log for those rows (dbt_project/macros/mart_change_log.sql)
    work.execute("insert into audit.mart_changes select 'marts.events', hash(k) "
                 "from (values ('e1'), ('e2'), ('e3'), ('e1000'), (null)) t(k)")
    work.execute("insert into audit.mart_changes values ('marts.daily_user_activity', hash('u0', date '2026-11-20'))")
    work.execute("delete from landing.quarantine where record = 'q0'")
    work.execute("insert into landing.object_counts values (timestamp '2026-11-20 06:00', 10)")
    work.execute("drop table segments.retired")
    work.execute("create table segments.added as select 2 as y")
    work.execute("alter table segments.memberships add column since date")

    second = publish_snapshot(work, target, published_tables(work), H6)
    assert (second["mode"], second["base"]) == ("incremental", "copy")  # no spare after a full publish
    assert second["actions"] == {
        "segments.retired": "dropped",
        "landing.quarantine": "copied 4 rows",
        "landing.object_counts": "copied 2 rows",
        # e1, e2 changed, e3 gone, e1000 and the null-keyed row new: the keys the change log names
        "marts.events": "5 keys replaced (change log)",
        "marts.daily_user_activity": "1 keys replaced (change log)",
        "segments.added": "copied 1 rows",
        "segments.memberships": "copied 7 rows",
    }

    work.execute(f"attach '{target}' as published (read_only)")
    try:
        assert contents(work, "published") == contents(work, "work")
        assert work.execute("select published_batch_hour, latest_batch_hour from published.meta.snapshot"
                            ).fetchall() == [(H6, H6)]
    finally:
        work.execute("detach published")
    # the reader still sees the snapshot it opened, whole
    assert contents(reader, "analytics") == before
    reader.close()

    # the log the second publish applied is kept as the previous generation; the current one is empty
    assert work.execute("select count(*) from audit.mart_changes").fetchall() == [(0,)]
    assert work.execute("select count(*) from audit.mart_changes_previous").fetchall() == [(6,)]
    # the reader closed: the third publish writes the first snapshot (the spare) in place, brought up to date
    # with both generations of the log, so it rewrites what the second publish did
    third = publish_snapshot(work, target, published_tables(work), H6)
    assert (third["base"], third["actions"]) == ("spare", second["actions"])
    assert_snapshot_equals_warehouse(work, target)

    # nothing changed since the second publish: its file (now the spare) is up to date, nothing is rewritten
    fourth = publish_snapshot(work, target, published_tables(work), H6)
    assert fourth["base"] == "spare"
    assert fourth["actions"] == {
        "landing.object_counts": "unchanged", "landing.quarantine": "unchanged", "segments.added": "unchanged",
        "segments.memberships": "unchanged", "marts.events": "unchanged (change log)",
        "marts.daily_user_activity": "unchanged (change log)"}


@pytest.mark.parametrize("case", ["whole_table_logged", "snapshot_replaced", "rows_added_without_a_log_entry"])
def test_the_change_log_is_used_only_when_it_covers_the_snapshot(work, tmp_path, case):
    target = tmp_path / "analytics.duckdb"
    publish_snapshot(work, target, published_tables(work), H5)
    work.execute("update marts.events set user_key = 'u-merged' where event_id in ('e1', 'e2')")
    work.execute("insert into audit.mart_changes values ('marts.events', hash('e1'))")  # e2 is not logged
    if case == "whole_table_logged":  # a full refresh or a privacy deletion
        work.execute("insert into audit.mart_changes values ('marts.events', null)")
    elif case == "snapshot_replaced":  # e.g. restored from a backup: neither file the last two publishes wrote
        publish_snapshot(work, tmp_path / "other.duckdb", published_tables(work), H5)
        publish_snapshot(work, tmp_path / "other.duckdb", published_tables(work), H5)
        work.execute("insert into audit.mart_changes values ('marts.events', hash('e1'))")
    else:
        work.execute("insert into marts.events values ('e5000', 'u1', timestamp '2026-11-20 06:00', '{}', [])")

    published = publish_snapshot(work, target, published_tables(work), H6)
    # the unlogged e2 is published too: found by the row-hash diff, or (the log's keys applied, the row
    # counts then differing by the unlogged e5000) by copying the table whole
    assert published["actions"]["marts.events"] == ("copied 1001 rows" if case == "rows_added_without_a_log_entry"
                                                     else "2 keys replaced")
    assert_snapshot_equals_warehouse(work, target)


def test_a_failed_publish_leaves_the_previous_snapshot_and_no_temp_file(work, tmp_path, monkeypatch):
    from event_pipeline import snapshot

    target = tmp_path / "analytics.duckdb"
    publish_snapshot(work, target, published_tables(work), H5)
    work.execute("insert into marts.events values ('e2000', 'u1', timestamp '2026-11-20 06:00', '{}', [])")

    def disk_full(*args):
        raise OSError("No space left on device")

    # the failure hits half-way: after the snapshot copy was attached and some tables were updated
    monkeypatch.setattr(snapshot, "_update_by_key", disk_full)
    with pytest.raises(OSError, match="No space left"):
        publish_snapshot(work, target, published_tables(work), H6)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("work.")) == ["analytics.duckdb"]
    with duckdb.connect(str(target), read_only=True) as reader:
        assert reader.execute("select count(*) from marts.events").fetchall() == [(1000,)]
        assert reader.execute("select published_batch_hour from meta.snapshot").fetchall() == [(H5,)]


def test_segments_tables_are_published_by_the_partitions_that_changed(work, tmp_path):
    """The segments tables that gain a partition per evaluated hour (snapshot.PARTITION_COLUMNS) are rewritten
    partition by partition: a re-evaluated hour and a new hour, not every hour's members."""
    work.execute("create table segments.membership_snapshots as select timestamp '2026-11-20 05:00' "
                 "+ to_hours(i % 4) as as_of, 'active' as segment_key, 'v1' as version, 'u' || i as user_key, "
                 "json_object('n', i) as metrics from range(400) t(i)")
    target = tmp_path / "analytics.duckdb"
    publish_snapshot(work, target, published_tables(work), H5)

    # 06:00 re-evaluated (one member fewer, one metric changed), 09:00 evaluated for the first time
    work.execute("delete from segments.membership_snapshots where as_of = timestamp '2026-11-20 06:00' "
                 "and user_key = 'u1'")
    work.execute("update segments.membership_snapshots set metrics = '{\"n\": -5}' where user_key = 'u5'")
    work.execute("insert into segments.membership_snapshots select timestamp '2026-11-20 09:00', 'active', 'v1', "
                 "'u' || i, json_object('n', i) from range(3) t(i)")
    second = publish_snapshot(work, target, published_tables(work), H6)
    assert second["actions"] == {"segments.membership_snapshots": "2 partitions replaced",
                                 "marts.events": "unchanged (change log)",
                                 "marts.daily_user_activity": "unchanged (change log)",
                                 "landing.quarantine": "unchanged", "landing.object_counts": "unchanged",
                                 "segments.memberships": "unchanged", "segments.retired": "unchanged"}
    assert_snapshot_equals_warehouse(work, target)

    work.execute("delete from segments.membership_snapshots where as_of = timestamp '2026-11-20 09:00'")
    third = publish_snapshot(work, target, published_tables(work), H6)
    assert third["actions"]["segments.membership_snapshots"] == "1 partitions replaced"
    work.execute(f"attach '{target}' as published (read_only)")
    try:
        assert contents(work, "published") == contents(work, "work")
        assert work.execute("select count(distinct as_of) from published.segments.membership_snapshots"
                            ).fetchall() == [(4,)]
    finally:
        work.execute("detach published")


class ReaderProcess:
    """An analyst's process with the snapshot open read-only (a lock on another process's file is what the
    publish checks), answering queries sent on its stdin."""

    def __init__(self, path):
        code = ("import duckdb, sys\n"
                f"con = duckdb.connect({str(path)!r}, read_only=True)\n"
                "print('open', flush=True)\n"
                "for line in sys.stdin:\n"
                "    print(con.execute(line).fetchall(), flush=True)\n")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout.readline() == "open\n"

    def query(self, sql: str) -> str:
        self.process.stdin.write(sql + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0


class InProcessReader:
    """The same, in the publishing process (a notebook that also publishes)."""

    def __init__(self, path):
        self.con = duckdb.connect(str(path), read_only=True)

    def query(self, sql: str) -> str:
        return str(self.con.execute(sql).fetchall())

    def close(self) -> None:
        self.con.close()


@pytest.mark.parametrize("reader_in", ["another process", "this process"])
def test_a_publish_copies_the_current_snapshot_while_a_reader_holds_the_spare(work, tmp_path, reader_in):
    """The spare (the snapshot before the current one) is written in place only when no reader has it open:
    another process's reader holds a lock on it; one in the publishing process is found by its open file."""
    from event_pipeline.snapshot import spare_path

    target = tmp_path / "analytics.duckdb"
    publish_snapshot(work, target, published_tables(work), H5)
    reader = (ReaderProcess if reader_in == "another process" else InProcessReader)(target)  # the first snapshot
    work.execute("insert into marts.events values ('e1000', 'u1', timestamp '2026-11-20 06:00', '{}', [])")
    work.execute("insert into audit.mart_changes values ('marts.events', hash('e1000'))")
    assert publish_snapshot(work, target, published_tables(work), H6)["base"] == "copy"
    assert spare_path(target).exists()  # the first snapshot, which the reader still reads

    work.execute("insert into marts.events values ('e1001', 'u2', timestamp '2026-11-20 06:00', '{}', [])")
    work.execute("insert into audit.mart_changes values ('marts.events', hash('e1001'))")
    third = publish_snapshot(work, target, published_tables(work), H6)
    assert (third["base"], third["actions"]["marts.events"]) == ("copy", "1 keys replaced (change log)")
    assert reader.query("select count(*) from marts.events") == "[(1000,)]"  # its own file, whole
    reader.close()

    work.execute("delete from marts.events where event_id = 'e0'")
    work.execute("insert into audit.mart_changes values ('marts.events', hash('e0'))")
    # the spare is now the second snapshot (e1000, not e1001): both generations of the log bring it up to date
    fourth = publish_snapshot(work, target, published_tables(work), H6)
    assert (fourth["base"], fourth["actions"]["marts.events"]) == ("spare", "2 keys replaced (change log)")
    assert_snapshot_equals_warehouse(work, target)

    # a spare the log does not cover (here: the warehouse lost its record of the publishes) is not used
    work.execute("drop table audit.published_snapshot")
    fifth = publish_snapshot(work, target, published_tables(work), H6)
    assert (fifth["base"], fifth["actions"]["marts.events"]) == ("copy", "unchanged")
    # a full publish (the daily compaction) drops the spare: the next publish starts from a copy of it
    assert publish_snapshot(work, target, published_tables(work), H6, full=True)["base"] == "new file"
    assert not spare_path(target).exists()
