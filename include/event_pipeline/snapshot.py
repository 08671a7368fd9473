"""Publish the analyst-facing tables as an immutable snapshot file that replaces the previous one atomically.

A publish writes a new file next to `analytics.duckdb` and swaps it in with `os.replace`: a reader sees the
previous complete snapshot or the new one, never a half-written hour, and a reader that already holds the
old file keeps reading it (its inode lives until they close it).

The new file starts as an earlier snapshot and is then brought up to date table by table. That earlier
snapshot is the spare when it can be: the file the publish before last wrote, kept (hard-linked) under
SPARE_SUFFIX when the last publish swapped it out, and written in place, so the publish reads and writes only
what changed instead of copying the whole file (2-4 s an hour for an 810 MB snapshot after 30 days of
10k-event hours, and growing with history). It can be when no reader still has it open (a reader holds a
shared lock on the file it opened: the publish's own write lock then fails, and it copies the current
snapshot instead, which no one writes) and the warehouse's change log still covers it (below). A daily
full publish drops the spare, so both files get compacted. Otherwise the new file starts as a byte copy of
the current snapshot.
  * a table with a row key (ROW_KEYS) gets only its changed rows: the rows of every key whose row hash
    differs between the warehouse and the snapshot (new, changed or deleted) are deleted and inserted
    again from the warehouse;
  * a table partitioned by evaluation time (PARTITION_COLUMNS: the segments tables that gain rows every hour)
    is compared by a fingerprint per partition, and only the partitions that differ are rewritten;
  * any other table is compared by a fingerprint of all its rows and copied whole when it differs;
  * a table that is new, gone, or whose columns changed is created, dropped or copied whole.
An hourly run changes a small part of the big tables, so the publish costs about what the hour changed
(plus hashing the tables) instead of rewriting every table. `full=True` (no previous snapshot, or the daily
maintenance, which also compacts the file) copies every table.

The biggest marts (CHANGE_LOGGED) skip even the hashing: their dbt models log the key of every row they
delete or insert in `audit.mart_changes` (dbt_project/macros/mart_change_log.sql), and the publish rewrites
exactly those keys. Each publish keeps the log it applied as the previous generation
(`audit.mart_changes_previous`): the current log brings the last publish's file up to date, both
generations bring the one before it (the spare). The log is trusted only when the starting file is one of
those two (its publish_id matches `audit.published_snapshot` in the warehouse), the table was in sync then,
and no entry says "whole table" (a first build, a full refresh, a full-scope run, a privacy deletion);
otherwise the table is diffed by row hashes as above. A change made to these marts outside dbt and without a log entry
reaches the snapshot with the daily full republish.

The segments tables partitioned by evaluation time use the same log (PARTITIONS_LOGGED): the segment evaluation
logs every as_of it rewrites (event_pipeline.segments.store, partition_log_key), and the publish rewrites exactly
those partitions instead of fingerprinting all of them on both sides. Hourly runs add a snapshot of every
segment's members each hour (190k rows for the benchmark's 50k users, 137M after 30 days), so those
fingerprints alone grew to most of the publish.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

# The unique key of each big published table (the marts' are tested unique in dbt). A key whose hash collides
# with another's only makes both rows be rewritten; it never hides a change. A table without all of its
# key's columns is compared by fingerprint instead.
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "marts.events": ("event_id",),
    "marts.annotations": ("event_id",),
    "marts.sessions": ("session_id",),
    "marts.daily_user_activity": ("user_key", "activity_date"),
    "marts.users": ("user_key",),
    "marts.identities": ("id_type", "id_value"),
    "marts.identity_merges": ("id_a_type", "id_a_value", "id_b_type", "id_b_value"),
    # not unique (a person's rows in a segment): the rows of a key are replaced together, which is as exact,
    # and the tables are diffed instead of copied whole every hour (0.5 s for 190k rows each after 30 days)
    "segments.memberships": ("user_key", "segment_key"),
    "segments.membership_history": ("user_key", "segment_key"),
}

# Tables that grow by a partition per evaluated hour (segments, event_pipeline.segments.store) and are
# rewritten a partition at a time: compared per partition, rewritten per partition. Copied whole, the
# snapshots table alone would copy every hour's members every hour (a row per member per evaluation).
PARTITION_COLUMNS: dict[str, str] = {
    "segments.membership_snapshots": "as_of",
    "segments.membership_changes": "as_of",
    "segments.segment_sizes": "as_of",
    "segments.evaluations": "as_of",
}

# Marts whose dbt model logs the keys it rewrites (config change_log_key = ROW_KEYS[table]; a test
# checks that the two agree).
CHANGE_LOGGED = ("marts.events", "marts.sessions", "marts.daily_user_activity")
# Partitioned segments tables whose writer (event_pipeline.segments.store) logs each partition it rewrites
# (partition_log_key); any other writer of these tables logs the table whole (key_hash NULL), as privacy.forget does.
PARTITIONS_LOGGED = tuple(PARTITION_COLUMNS)
LOGGED_TABLES = CHANGE_LOGGED + PARTITIONS_LOGGED
CHANGE_LOG = "audit.mart_changes"
# (dbt creates it too, if a model logs first: dbt_project/macros/mart_change_log.sql)
CHANGE_LOG_DDL = f"create table if not exists {CHANGE_LOG} (table_name varchar, key_hash ubigint)"
PREVIOUS_CHANGE_LOG = "audit.mart_changes_previous"  # the log the last publish applied
PUBLISH_STATE = "audit.published_snapshot"
APPLICABLE_LOG = "publish_change_log"  # a temp view: the generations of the log this publish applies

SNAPSHOT = "snapshot"
SPARE_SUFFIX = ".spare"  # analytics.duckdb -> .analytics.spare.duckdb: the snapshot before the current one


def _quoted(schema: str, table: str, catalog: str | None = None) -> str:
    parts = ([catalog] if catalog else []) + [schema, table]
    return ".".join(f'"{part}"' for part in parts)


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, tables: list[tuple[str, str]] | None = None
             ) -> dict[tuple[str, str], list[tuple[str, str]]]:
    rows = con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = ? order by table_schema, table_name, ordinal_position", [catalog]).fetchall()
    columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, data_type in rows:
        if tables is None or (schema, table) in tables:
            columns.setdefault((schema, table), []).append((column, data_type))
    return columns


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return con.execute(f"select count(*) from {relation}").fetchall()[0][0]


def _fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> tuple:
    return tuple(con.execute(
        f"select count(*), coalesce(sum(hash(*columns(*))::hugeint), 0) from {relation}").fetchall()[0])


def _copy_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    con.execute(f"create or replace table {_quoted(schema, table, SNAPSHOT)} as "
                f"select * from {_quoted(schema, table)}")
    return _count(con, _quoted(schema, table, SNAPSHOT))


def _key_hash(key: tuple[str, ...]) -> str:
    return "hash(" + ", ".join(f'"{column}"' for column in key) + ")"


def partition_log_key(value_sql: str) -> str:
    """A partition's entry in the change log's key_hash column: the as_of itself, in epoch microseconds.
    Not a hash, so that the publish finds the partition's rows by value and skips every other partition's
    row groups: hashing the column read all 137M rows of membership_snapshots after 30 days of hourly runs
    (0.12 s -> 0.003 s on each side)."""
    return f"epoch_us({value_sql})::ubigint"


_PARTITION_FROM_LOG = "make_timestamp(key_hash::bigint)"


def _replace_keys(con: duckdb.DuckDBPyConnection, schema: str, table: str, match: str,
                  changed_keys_sql: str, params: list | None = None) -> int | None:
    """Replace the snapshot's rows whose `match` (a key hash, or a partition column) is among the values
    `changed_keys_sql` selects (as k) with the warehouse's; the number of keys (or partitions) replaced, None
    when the row counts then differ (the caller copies the table whole)."""
    work, snap = _quoted(schema, table), _quoted(schema, table, SNAPSHOT)
    con.execute(f"create or replace temp table publish_changed_keys as {changed_keys_sql}", params or [])
    changed = _count(con, "publish_changed_keys")
    if changed:
        con.execute(f"delete from {snap} where {match} in (select k from publish_changed_keys)")
        # the warehouse's rows found by rowid first, reading the match's columns alone, then read whole by
        # rowid (a filter on rowid skips the other row groups): filtering on a key hash in one scan read every
        # column of every row (0.5-0.7 s -> 0.14 s for an hour's 8,876 events after 30 days of 10k-event hours)
        con.execute(f"insert into {snap} select * from {work} where rowid in "
                    f"(select rowid from {work} where {match} in (select k from publish_changed_keys))")
    con.execute("drop table publish_changed_keys")
    if _count(con, snap) != _count(con, work):
        return None
    return changed


def _update_by_key(con: duckdb.DuckDBPyConnection, schema: str, table: str, key: tuple[str, ...]) -> int | None:
    """Replace the rows of every key whose row hash differs between the warehouse and the snapshot."""
    key_hash = _key_hash(key)
    return _replace_keys(
        con, schema, table, key_hash,
        "select distinct coalesce(current_rows.k, published_rows.k) as k "
        f"from (select {key_hash} as k, hash(*columns(*)) as h from {_quoted(schema, table)}) as current_rows "
        f"full join (select {key_hash} as k, hash(*columns(*)) as h from {_quoted(schema, table, SNAPSHOT)}) "
        "as published_rows on current_rows.k = published_rows.k "
        "where current_rows.h is distinct from published_rows.h")


def _update_by_partition(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> int | None:
    """Replace the rows of every partition (a value of `column`) whose fingerprint differs: the same scan as
    a whole-table fingerprint, but only the changed partitions are written."""
    def partitions(relation: str) -> str:
        return (f'select "{column}" as p, count(*) as n, coalesce(sum(hash(*columns(*))::hugeint), 0) as h '
                f"from {relation} group by all")

    return _replace_keys(
        con, schema, table, f'"{column}"',
        "select distinct coalesce(current_parts.p, published_parts.p) as k "
        f"from ({partitions(_quoted(schema, table))}) as current_parts "
        f"full join ({partitions(_quoted(schema, table, SNAPSHOT))}) as published_parts "
        "on current_parts.p is not distinct from published_parts.p "
        "where current_parts.n is distinct from published_parts.n "
        "or current_parts.h is distinct from published_parts.h")


def _table_exists(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> bool:
    return bool(con.execute(
        "select 1 from information_schema.tables where table_catalog = ? and table_schema = ? and table_name = ?",
        [catalog, schema, table]).fetchall())


def spare_path(target: Path) -> Path:
    """Where the snapshot the current one replaced is kept for the next publish to write in place."""
    return target.with_name(f".{target.stem}{SPARE_SUFFIX}{target.suffix}")


def _publish_state(con: duckdb.DuckDBPyConnection, work_catalog: str) -> dict | None:
    """What the warehouse recorded of the last publish (and the one before it), None before the first."""
    if not _table_exists(con, work_catalog, "audit", "published_snapshot"):
        return None
    cursor = con.execute(f"select * from {PUBLISH_STATE}")
    rows = cursor.fetchall()
    if len(rows) != 1:
        return None
    return dict(zip([column[0] for column in cursor.description], rows[0], strict=True))


def _change_log(con: duckdb.DuckDBPyConnection, work_catalog: str, state: dict | None,
                snapshot_publish_id: str | None) -> dict[str, str] | None:
    """How each change-logged table can be published from the log: 'keys' (the log lists every changed
    key), 'whole' (the log says the whole table changed). None when the log cannot be trusted for any table
    (no log yet, or the starting file is neither of the files the last two publishes wrote). Creates the
    temp view APPLICABLE_LOG over the generations of the log that bring the starting file up to date.
    `state` is the warehouse's record of the last publishes (_publish_state)."""
    if snapshot_publish_id is None or state is None:
        return None
    if snapshot_publish_id == state["publish_id"]:
        logs, in_sync = [CHANGE_LOG], set(state["tables"])
    elif snapshot_publish_id == state.get("previous_publish_id") and _table_exists(
            con, work_catalog, "audit", "mart_changes_previous"):
        logs, in_sync = [PREVIOUS_CHANGE_LOG, CHANGE_LOG], set(state["tables"]) & set(state["previous_tables"])
    else:
        return None
    con.execute(CHANGE_LOG_DDL)
    con.execute(f"create or replace temp view {APPLICABLE_LOG} as "
                + " union all ".join(f"select table_name, key_hash from {log}" for log in logs))
    logged = dict(con.execute(
        f"select table_name, if(bool_or(key_hash is null), 'whole', 'keys') from {APPLICABLE_LOG} group by all"
    ).fetchall())
    return {name: logged.get(name, "unchanged") if name in in_sync else "whole" for name in LOGGED_TABLES}


def _update_from_log(con: duckdb.DuckDBPyConnection, schema: str, table: str, key: tuple[str, ...],
                     partition_column: str | None = None) -> int | None:
    """Replace the rows of every key, or every partition of `partition_column`, the applicable change log
    names."""
    if partition_column is not None:
        return _replace_keys(con, schema, table, f'"{partition_column}"', f"select distinct {_PARTITION_FROM_LOG} as k "
                             f"from {APPLICABLE_LOG} where table_name = ?", [f"{schema}.{table}"])
    return _replace_keys(con, schema, table, _key_hash(key),
                         f"select distinct key_hash as k from {APPLICABLE_LOG} where table_name = ?",
                         [f"{schema}.{table}"])


def _snapshot_publish_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The publish_id the attached snapshot was written with (None: a snapshot from before the change log)."""
    columns = {column for column, _ in _columns(con, SNAPSHOT, [("meta", "snapshot")]).get(("meta", "snapshot"), [])}
    if "publish_id" not in columns:
        return None
    rows = con.execute(f"select publish_id from {SNAPSHOT}.meta.snapshot").fetchall()
    return rows[0][0] if len(rows) == 1 else None


def _record_publish(con: duckdb.DuckDBPyConnection, publish_id: str, in_sync: list[str],
                    previous: dict | None) -> None:
    """After the swap: the log so far is in the snapshot and becomes the previous generation (what the spare,
    the file this publish replaced, lacks); later runs log against this publish."""
    con.execute("begin transaction")
    con.execute("create schema if not exists audit")
    con.execute(CHANGE_LOG_DDL)
    con.execute(f"create or replace table {PREVIOUS_CHANGE_LOG} as select * from {CHANGE_LOG}")
    con.execute(f"delete from {CHANGE_LOG}")
    con.execute(f"create or replace table {PUBLISH_STATE} as select ?::varchar as publish_id, "
                "?::varchar[] as tables, ?::varchar as previous_publish_id, ?::varchar[] as previous_tables",
                [publish_id, in_sync, (previous or {}).get("publish_id"), (previous or {}).get("tables") or []])
    con.execute("commit")


def _link_for_spare(target: Path, tmp: Path) -> Path | None:
    """A second name for the snapshot about to be replaced, to become the spare after the swap (None where
    the filesystem has no hard links: the next publish then copies)."""
    kept = tmp.with_name(f"{tmp.stem}-spare{tmp.suffix}")
    try:
        os.link(target, kept)
    except OSError as exc:
        log.info("publish: cannot keep the replaced snapshot as the spare (%s); the next publish copies", exc)
        return None
    return kept


def _open_starting_file(con: duckdb.DuckDBPyConnection, work_catalog: str, state: dict | None, target: Path,
                        tmp: Path, incremental: bool) -> tuple[str, dict[str, str] | None]:
    """Attach the file this publish writes (at `tmp`) as SNAPSHOT: the spare written in place, else a copy of
    the current snapshot, else (a full publish) a new file. Returns which, and the change log's verdict for it."""
    if not incremental:
        spare_path(target).unlink(missing_ok=True)  # a full publish compacts: the next one starts from its copy
        con.execute(f"attach '{tmp}' as {SNAPSHOT}")
        return "new file", None
    if _start_from_spare(con, spare_path(target), tmp):
        change_log = _change_log(con, work_catalog, state, _snapshot_publish_id(con))
        if change_log is not None:
            return "spare", change_log
        # the log does not cover the spare: diffing the big marts by row hashes costs more than a copy
        con.execute(f"detach {SNAPSHOT}")
        tmp.unlink()
    shutil.copyfile(target, tmp)
    con.execute(f"attach '{tmp}' as {SNAPSHOT}")
    return "copy", _change_log(con, work_catalog, state, _snapshot_publish_id(con))


def _open_in_this_process(path: Path) -> bool:
    """Whether this process has `path` open. File locks never conflict within one process, so the write lock
    would not notice a reader here (a test, a notebook that publishes); True where /proc cannot tell."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return True
    file = path.stat()
    for fd in fds.iterdir():
        with suppress(OSError):  # closed since the listing
            opened = fd.stat()
            if (opened.st_dev, opened.st_ino) == (file.st_dev, file.st_ino):
                return True
    return False


def _start_from_spare(con: duckdb.DuckDBPyConnection, spare: Path, tmp: Path) -> bool:
    """Move the spare to `tmp` and attach it for writing; False (and no spare left) when a reader still holds
    it open: the caller starts from a copy of the current snapshot instead."""
    try:
        os.replace(spare, tmp)
    except FileNotFoundError:
        return False
    if _open_in_this_process(tmp):
        log.info("publish: this process still has the spare snapshot open; copying the current one")
        tmp.unlink()
        return False
    try:
        con.execute(f"attach '{tmp}' as {SNAPSHOT}")
    except duckdb.IOException as exc:  # "Could not set lock on file": a reader has this older snapshot open
        log.info("publish: a reader still has the spare snapshot open (%s); copying the current one", exc)
        tmp.unlink()  # the reader keeps reading its file until it closes it
        return False
    return True


def publish_snapshot(con: duckdb.DuckDBPyConnection, target: Path, tables: list[tuple[str, str]],
                     published_batch_hour: datetime | None, full: bool = False) -> dict:
    """Write `tables` of the warehouse `con` is connected to (as its writer) into a new snapshot file and
    swap it in at `target`. Returns what it did per table."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}-{os.getpid()}-{time.time_ns()}.duckdb")
    incremental = not full and target.exists()
    started = time.monotonic()
    work_catalog = con.execute("select current_database()").fetchall()[0][0]
    actions: dict[str, str] = {}
    publish_id = uuid.uuid4().hex
    previous = _publish_state(con, work_catalog)
    try:
        base, change_log = _open_starting_file(con, work_catalog, previous, target, tmp, incremental)
        try:
            current = _columns(con, work_catalog, tables)
            published = _columns(con, SNAPSHOT)
            for schema, table in sorted(set(published) - set(current)):
                if (schema, table) != ("meta", "snapshot"):
                    con.execute(f"drop table {_quoted(schema, table, SNAPSHOT)}")
                    actions[f"{schema}.{table}"] = "dropped"
            for schema in sorted({schema for schema, _ in current} | {"meta"}):
                con.execute(f'create schema if not exists {SNAPSHOT}."{schema}"')
            for schema, table in sorted(current):
                name = f"{schema}.{table}"
                if published.get((schema, table)) != current[(schema, table)]:
                    actions[name] = f"copied {_copy_table(con, schema, table)} rows"
                    continue
                partition_column = PARTITION_COLUMNS.get(name)
                key = (partition_column,) if partition_column is not None else ROW_KEYS.get(name)
                if key is not None and not set(key) <= {column for column, _ in current[(schema, table)]}:
                    key = None
                if key is None:
                    if _fingerprint(con, _quoted(schema, table)) == _fingerprint(con, _quoted(schema, table, SNAPSHOT)):
                        actions[name] = "unchanged"
                    else:
                        actions[name] = f"copied {_copy_table(con, schema, table)} rows"
                    continue
                how = (change_log or {}).get(name, "whole")
                if how == "unchanged" and _count(con, _quoted(schema, table)) == _count(
                        con, _quoted(schema, table, SNAPSHOT)):
                    actions[name] = "unchanged (change log)"
                    continue
                if how == "keys":
                    changed = _update_from_log(con, schema, table, key, partition_column)
                    suffix = " (change log)"
                elif partition_column is not None:
                    changed = _update_by_partition(con, schema, table, partition_column)
                    suffix = ""
                else:
                    changed = _update_by_key(con, schema, table, key)
                    suffix = ""
                unit = "partitions" if partition_column is not None else "keys"
                if changed is None:
                    log.warning("publish: %s did not add up after replacing its changed %s; copying it whole",
                                name, unit)
                    actions[name] = f"copied {_copy_table(con, schema, table)} rows"
                else:
                    actions[name] = (f"{changed} {unit} replaced" if changed else "unchanged") + suffix
            con.execute(
                f"create or replace table {SNAPSHOT}.meta.snapshot as select ?::timestamp as published_batch_hour, "
                "(select max(batch_hour) from landing.object_counts) as latest_batch_hour, "
                "now()::timestamp as published_at, ?::varchar as publish_id", [published_batch_hour, publish_id])
        finally:
            con.execute(f"drop view if exists {APPLICABLE_LOG}")
            con.execute(f"detach {SNAPSHOT}")
        kept = _link_for_spare(target, tmp) if incremental else None
        os.replace(tmp, target)
        if kept is not None:
            os.replace(kept, spare_path(target))
    except BaseException:
        con.execute(f"detach database if exists {SNAPSHOT}")  # failed while choosing the starting file
        tmp.unlink(missing_ok=True)
        raise
    # If this fails, the warehouse's publish_id no longer matches the snapshot's: the next publish diffs
    # by row hashes instead of trusting the log.
    _record_publish(con, publish_id, [name for name in LOGGED_TABLES if tuple(name.split(".")) in current],
                    previous)
    seconds = round(time.monotonic() - started, 2)
    mode = "incremental" if incremental else "full"
    log.info("published %s tables to %s in %.2fs (%s, from %s): %s", len(current), target, seconds, mode, base,
             actions)
    return {"tables": len(current), "path": str(target), "seconds": seconds, "mode": mode, "base": base,
            "actions": actions}
