"""The analysts' snapshot: an incremental publish rewrites only what changed and always equals the warehouse."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from event_pipeline.snapshot import publish_snapshot

H5 = datetime(2026, 11, 20, 5)
H6 = datetime(2026, 11, 20, 6)


def contents(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple]]:
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = ? "
        "and table_schema != 'meta' order by all", [catalog]).fetchall()
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


def published_tables(con) -> list[tuple[str, str]]:
    return [tuple(row) for row in con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = current_database() "
        "order by all").fetchall()]


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
    work.execute("delete from landing.quarantine where record = 'q0'")
    work.execute("insert into landing.object_counts values (timestamp '2026-11-20 06:00', 10)")
    work.execute("drop table segments.retired")
    work.execute("create table segments.added as select 2 as y")
    work.execute("alter table segments.memberships add column since date")

    second = publish_snapshot(work, target, published_tables(work), H6)
    assert second["mode"] == "incremental"
    assert second["actions"] == {
        "segments.retired": "dropped",
        "landing.quarantine": "copied 4 rows",
        "landing.object_counts": "copied 2 rows",
        # e1, e2 changed, e3 gone, e1000 and the null-keyed row new
        "marts.events": "5 keys replaced",
        "marts.daily_user_activity": "1 keys replaced",
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

    # nothing changed: nothing is rewritten
    third = publish_snapshot(work, target, published_tables(work), H6)
    assert set(third["actions"].values()) == {"unchanged"}


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
