"""The `segments` schema: snapshots per as_of are the source of truth, history/changes/current derive from them."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from event_pipeline.segments.definitions import SegmentDefinition
from event_pipeline.segments.sqlbuild import CompiledSegment
from event_pipeline.snapshot import CHANGE_LOG, CHANGE_LOG_DDL, partition_log_key

SCHEMA = "segments"

TABLES: dict[str, str] = {
    "definitions": "key VARCHAR, version VARCHAR, kind VARCHAR, description VARCHAR, owner VARCHAR, definition JSON",
    # one row per (as_of, segment) a definition produced, members or not: the evaluation clock
    "evaluations": "as_of TIMESTAMP, definition_key VARCHAR, segment_key VARCHAR, version VARCHAR",
    "membership_snapshots": "as_of TIMESTAMP, segment_key VARCHAR, version VARCHAR, user_key VARCHAR, metrics JSON",
    "memberships": "user_key VARCHAR, segment_key VARCHAR, version VARCHAR, entered_at TIMESTAMP, metrics JSON",
    "membership_history": "user_key VARCHAR, segment_key VARCHAR, version VARCHAR, valid_from TIMESTAMP, "
    "valid_to TIMESTAMP",
    "membership_changes": "as_of TIMESTAMP, user_key VARCHAR, segment_key VARCHAR, version VARCHAR, change VARCHAR",
    "segment_sizes": "as_of TIMESTAMP, segment_key VARCHAR, version VARCHAR, members BIGINT",
    # first time each user did an event, for `never` without a window; coverage lists bootstrapped names
    "user_event_first_seen": "user_key VARCHAR, event_name VARCHAR, first_at TIMESTAMP",
    "user_event_first_seen_coverage": "event_name VARCHAR",
}

# The definition key of a segment key: rfm.champions -> rfm (keys never contain dots).
DEFINITION_OF = "split_part(segment_key, '.', 1)"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    for table, columns in TABLES.items():
        con.execute(f"create table if not exists {SCHEMA}.{table} ({columns})")
    con.execute("create schema if not exists audit")
    con.execute(CHANGE_LOG_DDL)


def log_rewritten_partitions(con: duckdb.DuckDBPyConnection, tables: list[str], as_ofs: list[datetime] | None
                             ) -> None:
    """Tell the analysts' snapshot publish which as_of partitions of `tables` were rewritten (None: all of
    them), so that it rewrites those instead of comparing every partition (event_pipeline.snapshot)."""
    names = [f"{SCHEMA}.{table}" for table in tables]
    if as_ofs is None:
        con.execute(f"insert into {CHANGE_LOG} select unnest($names::varchar[]), null", {"names": names})
        return
    con.execute(
        f"insert into {CHANGE_LOG} select distinct logged.name, {partition_log_key('rewritten.as_of')} "
        "from unnest($names::varchar[]) as logged(name), unnest($as_ofs::timestamp[]) as rewritten(as_of)",
        {"names": names, "as_ofs": as_ofs})


def schema_exists(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = 'membership_snapshots'",
        [SCHEMA],
    ).fetchall()
    return rows[0][0] > 0


def write_definitions(con: duckdb.DuckDBPyConnection, definitions: list[SegmentDefinition]) -> None:
    for d in definitions:
        con.execute(f"delete from {SCHEMA}.definitions where key = ? and version = ?", [d.key, d.version])
        con.execute(
            f"insert into {SCHEMA}.definitions values (?, ?, ?, ?, ?, ?)",
            [d.key, d.version, d.kind, d.description, d.owner, json.dumps(d.as_json(), sort_keys=True)],
        )


def write_snapshot(con: duckdb.DuckDBPyConnection, compiled: CompiledSegment, as_of: datetime) -> dict[str, int]:
    """Replace what this definition wrote for as_of: snapshot rows, evaluation rows and sizes."""
    definition = compiled.definition
    key_params = {"snap_as_of": as_of, "snap_key": definition.key}
    for table, key_filter in (
        ("membership_snapshots", f"{DEFINITION_OF} = $snap_key"),
        ("segment_sizes", f"{DEFINITION_OF} = $snap_key"),
        ("evaluations", "definition_key = $snap_key"),
    ):
        con.execute(f"delete from {SCHEMA}.{table} where as_of = $snap_as_of and {key_filter}", key_params)
    params = {**compiled.params, "snap_as_of": as_of, "snap_version": definition.version}
    con.execute(
        f"""insert into {SCHEMA}.membership_snapshots
        select $snap_as_of, segment_key, $snap_version, user_key, metrics
        from ({compiled.sql}) as evaluated
        where segment_key is not null
        order by segment_key, user_key""",
        params,
    )
    con.execute(
        f"insert into {SCHEMA}.evaluations "
        "select $snap_as_of, $snap_key, unnest($snap_segments::varchar[]), $snap_version",
        {**key_params, "snap_segments": definition.segment_keys, "snap_version": definition.version},
    )
    con.execute(
        f"""insert into {SCHEMA}.segment_sizes
        select e.as_of, e.segment_key, e.version, count(s.user_key) as members
        from {SCHEMA}.evaluations e
        left join {SCHEMA}.membership_snapshots s
            on s.as_of = e.as_of and s.segment_key = e.segment_key and s.version = e.version
        where e.as_of = $snap_as_of and e.definition_key = $snap_key
        group by e.as_of, e.segment_key, e.version
        order by e.segment_key""",
        key_params,
    )
    log_rewritten_partitions(con, ["membership_snapshots", "evaluations", "segment_sizes"], [as_of])
    rows = con.execute(
        f"select segment_key, members from {SCHEMA}.segment_sizes "
        "where as_of = $snap_as_of and split_part(segment_key, '.', 1) = $snap_key",
        key_params,
    ).fetchall()
    return dict(rows)


SNAPSHOT_OF = f"""(select user_key, segment_key, version from {SCHEMA}.membership_snapshots
    where as_of = {{at}} and {DEFINITION_OF} = $key)"""

CHANGES_BETWEEN = f"""
select $cur as as_of, c.user_key, c.segment_key, c.version, 'entered' as change
from {SNAPSHOT_OF.format(at="$cur")} c
anti join {SNAPSHOT_OF.format(at="$prev")} p
    on p.user_key = c.user_key and p.segment_key = c.segment_key and p.version = c.version
union all
select $cur, p.user_key, p.segment_key, p.version, 'exited'
from {SNAPSHOT_OF.format(at="$prev")} p
anti join {SNAPSHOT_OF.format(at="$cur")} c
    on p.user_key = c.user_key and p.segment_key = c.segment_key and p.version = c.version
order by segment_key, user_key
"""

SPANS_FROM_CHANGES = f"""
select user_key, segment_key, version, valid_from, valid_to from (
    select c.user_key, c.segment_key, c.version, c.as_of as valid_from, c.change,
           lead(c.as_of) over (partition by c.user_key, c.segment_key, c.version order by c.as_of) as valid_to
    from {SCHEMA}.membership_changes c
    {{restrict}}
) where change = 'entered'
order by segment_key, user_key, valid_from
"""

CURRENT_MEMBERS = f"""
insert into {SCHEMA}.memberships
select s.user_key, s.segment_key, s.version, h.valid_from as entered_at, s.metrics
from {SCHEMA}.membership_snapshots s
join {SCHEMA}.membership_history h
    on h.user_key = s.user_key and h.segment_key = s.segment_key and h.version = s.version
    and h.valid_to is null
where s.as_of = (select max(as_of) from {SCHEMA}.evaluations where definition_key = $key)
    and {DEFINITION_OF.replace("segment_key", "s.segment_key")} = $key
order by s.segment_key, s.user_key
"""

AFFECTED = "segment_affected_members"


def update_derived(con: duckdb.DuckDBPyConnection, definition_key: str, as_of: datetime) -> None:
    """Bring changes, history and current memberships in line after as_of's snapshot was (re)written.

    A change at an evaluated time t compares t's snapshot with the previous evaluated one, so writing
    as_of only alters the changes at as_of and at the next evaluated time; history spans pair each
    `entered` with the following `exited`, so only the members whose changes moved are re-derived.
    Every derived row is a function of the set of snapshots, whatever order the hours ran in.
    """
    key = {"key": definition_key}
    neighbours = con.execute(
        f"""select max(as_of) filter (where as_of < $at), min(as_of) filter (where as_of > $at)
        from {SCHEMA}.evaluations where definition_key = $key""",
        {**key, "at": as_of},
    ).fetchall()[0]
    previous, following = neighbours
    times = {**key, "times": [as_of] if following is None else [as_of, following]}
    in_times = f"list_contains($times::timestamp[], as_of) and {DEFINITION_OF} = $key"
    con.execute(
        f"create or replace temp table {AFFECTED} as "
        f"select distinct user_key, segment_key, version from {SCHEMA}.membership_changes where {in_times}",
        times,
    )
    con.execute(f"delete from {SCHEMA}.membership_changes where {in_times}", times)
    for prev, cur in ((previous, as_of), (as_of, following)):
        if cur is not None:
            con.execute(f"insert into {SCHEMA}.membership_changes {CHANGES_BETWEEN}", {**key, "prev": prev, "cur": cur})
    log_rewritten_partitions(con, ["membership_changes"], times["times"])
    con.execute(
        f"insert into {AFFECTED} select distinct user_key, segment_key, version "
        f"from {SCHEMA}.membership_changes where {in_times}",
        times,
    )
    con.execute(
        f"""delete from {SCHEMA}.membership_history h using {AFFECTED} a
        where h.user_key = a.user_key and h.segment_key = a.segment_key and h.version = a.version"""
    )
    restrict = (
        f"semi join (select distinct * from {AFFECTED}) a "
        "on a.user_key = c.user_key and a.segment_key = c.segment_key and a.version = c.version"
    )
    con.execute(f"insert into {SCHEMA}.membership_history {SPANS_FROM_CHANGES.format(restrict=restrict)}")
    con.execute(f"drop table {AFFECTED}")
    con.execute(f"delete from {SCHEMA}.memberships where {DEFINITION_OF} = $key", key)
    con.execute(CURRENT_MEMBERS, key)


def rebuild_derived(con: duckdb.DuckDBPyConnection, definition_key: str) -> None:
    """Re-derive changes, history and current memberships of one definition from all its snapshots.

    The incremental `update_derived` gives the same rows; this is the repair path (and the reference
    the tests compare against).
    """
    key = {"key": definition_key}
    times = [
        row[0]
        for row in con.execute(
            f"select distinct as_of from {SCHEMA}.evaluations where definition_key = $key order by as_of", key
        ).fetchall()
    ]
    for table in ("membership_changes", "membership_history", "memberships"):
        con.execute(f"delete from {SCHEMA}.{table} where {DEFINITION_OF} = $key", key)
    for prev, cur in zip([None, *times], times, strict=False):
        con.execute(f"insert into {SCHEMA}.membership_changes {CHANGES_BETWEEN}", {**key, "prev": prev, "cur": cur})
    log_rewritten_partitions(con, ["membership_changes"], None)
    restrict = f"where {DEFINITION_OF.replace('segment_key', 'c.segment_key')} = $key"
    con.execute(f"insert into {SCHEMA}.membership_history {SPANS_FROM_CHANGES.format(restrict=restrict)}", key)
    con.execute(CURRENT_MEMBERS, key)


def drop_stale_memberships(con: duckdb.DuckDBPyConnection, definition_keys: list[str]) -> None:
    """Current memberships only for the definitions that exist now (history keeps the rest)."""
    con.execute(
        f"delete from {SCHEMA}.memberships where not list_contains($keys::varchar[], {DEFINITION_OF})",
        {"keys": sorted(definition_keys)},
    )
