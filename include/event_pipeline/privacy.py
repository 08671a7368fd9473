"""Privacy requests: forget a person everywhere in the warehouse and keep them out of every later load.

A request names one id the person is known by. Every id stitched to the same person (marts.identities)
is added to `privacy.suppressed_ids`; their rows are deleted from the landing tables (quarantine included),
the Python-managed segment tables, and the GX Data Docs of the hours they appeared in; dbt-managed tables
are rebuilt from landing afterwards (the caller runs a full dbt build). Every later load, rerun or backfill
drops records that mention a suppressed id before validation and counts them as `records_suppressed`, so
`records read = loaded + quarantined + duplicates + suppressed` still balances.

Matching is deliberately broad: a record whose raw JSON holds a suppressed id as a string value is
dropped, whatever field it is in (over-deleting is the safe side of a deletion request).
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime
from pathlib import Path

import duckdb

from event_pipeline.snapshot import CHANGE_LOG, CHANGE_LOG_DDL, LOGGED_TABLES

log = logging.getLogger(__name__)

DDL = (
    "create schema if not exists privacy",
    """create table if not exists privacy.suppressed_ids (
        id_value varchar primary key, request_id varchar, requested_at timestamp
    )""",
    """create table if not exists privacy.requests (
        request_id varchar primary key, requested_id varchar, ids varchar[], requested_at timestamp,
        rows_deleted json
    )""",
)

# a row mentions a suppressed id when its raw JSON holds the id as a string value
_MENTIONS = "exists (select 1 from privacy.suppressed_ids p where contains({text}, '\"' || p.id_value || '\"'))"


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in DDL:
        con.execute(ddl)


def drop_suppressed(con: duckdb.DuckDBPyConnection, hour: datetime) -> dict[tuple[str, str], int]:
    """Delete the hour's staged records that mention a suppressed id; return their count per object."""
    ensure_tables(con)
    if not con.execute("select count(*) from privacy.suppressed_ids").fetchall()[0][0]:
        return {}
    mentions = _MENTIONS.format(text="coalesce(s.raw_text, s.raw)")
    counts = con.execute(
        f"select source, object_key, count(*) from landing.staged_records s where batch_hour = ? and {mentions} "
        "group by all", [hour]).fetchall()
    if counts:
        con.execute(f"delete from landing.staged_records s where batch_hour = ? and {mentions}", [hour])
        log.info("hour %s: dropped %s records of suppressed people", f"{hour:%Y-%m-%dT%H}",
                 sum(n for _, _, n in counts))
    return {(source, key): n for source, key, n in counts}


def person_ids(con: duckdb.DuckDBPyConnection, requested_id: str) -> tuple[list[str], list[str]]:
    """Every id stitched to the person the requested id belongs to, and their user_key(s)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'identities'"
    ).fetchall()[0][0]
    if not exists:
        return [requested_id], []
    keys = [k for (k,) in con.execute(
        "select distinct user_key from marts.identities where id_value = ?", [requested_id]).fetchall()]
    ids = {requested_id} | {i for (i,) in con.execute(
        "select id_value from marts.identities where list_contains(?, user_key)", [keys]).fetchall()}
    return sorted(ids), sorted(keys)


def _delete_landing(con: duckdb.DuckDBPyConnection, table: str, text: str, counted: str) -> int:
    """Delete a landing table's rows that mention a suppressed id, moving their count to records_suppressed."""
    mentions = _MENTIONS.format(text=text)
    per_object = con.execute(
        f"select batch_hour, object_key, count(*) from {table} s where {mentions} group by all").fetchall()
    for batch_hour, object_key, n in per_object:
        con.execute(
            f"update landing.object_counts set {counted} = {counted} - $n, "
            "records_suppressed = coalesce(records_suppressed, 0) + $n "
            "where batch_hour = $hour and object_key = $key", {"n": n, "hour": batch_hour, "key": object_key})
    con.execute(f"delete from {table} s where {mentions}")
    return sum(n for _, _, n in per_object)


def forget(con: duckdb.DuckDBPyConnection, requested_id: str, request_id: str, requested_at: datetime,
           data_docs_dir: Path | None = None) -> dict:
    """Suppress the person's ids and delete their rows from landing and segments. Idempotent per request."""
    ensure_tables(con)
    ids, keys = person_ids(con, requested_id)
    con.execute("begin transaction")
    con.executemany(
        "insert or ignore into privacy.suppressed_ids values (?, ?, ?)",
        [[i, request_id, requested_at] for i in ids])
    hours = [h for (h,) in con.execute(
        f"select distinct batch_hour from landing.events s where {_MENTIONS.format(text='s.raw::varchar')} "
        f"union select distinct batch_hour from landing.quarantine s where {_MENTIONS.format(text='s.raw_text')}"
    ).fetchall()]
    deleted = {
        "landing.events": _delete_landing(con, "landing.events", "s.raw::varchar", "records_valid"),
        "landing.quarantine": _delete_landing(con, "landing.quarantine", "s.raw_text", "records_quarantined"),
    }
    staged = _MENTIONS.format(text="coalesce(s.raw_text, s.raw)")
    deleted["landing.staged_records"] = len(con.execute(
        f"delete from landing.staged_records s where {staged} returning 1").fetchall())
    # Segment tables (Python-managed) and dbt tables (rebuilt by the caller afterwards; purged here too so
    # that no model reading its own previous state, like the identity map's tombstones, carries an id on).
    columns = con.execute(
        "select c.table_schema, c.table_name, list(c.column_name) from information_schema.columns c "
        "join information_schema.tables t using (table_schema, table_name) "
        "where t.table_type = 'BASE TABLE' and c.table_schema in ('segments', 'intermediate', 'marts') "
        "and c.column_name in ('user_key', 'previous_user_key', 'id_value', 'id_a_value', 'id_b_value', "
        "'user_id', 'anonymous_id', 'instance_id') group by all order by all").fetchall()
    con.execute("create schema if not exists audit")
    con.execute(CHANGE_LOG_DDL)
    for schema, table, names in columns:
        predicate = " or ".join(
            f'list_contains($keys, "{n}")' if n.endswith("user_key") else f'list_contains($ids, "{n}")'
            for n in names)
        params = {name: value for name, value in (("keys", keys), ("ids", ids)) if f"${name}" in predicate}
        n = len(con.execute(f'delete from "{schema}"."{table}" where {predicate} returning 1', params).fetchall())
        if n:
            deleted[f"{schema}.{table}"] = n
        if n and f"{schema}.{table}" in LOGGED_TABLES:  # the snapshot publish must not trust its change log
            con.execute(f"insert into {CHANGE_LOG} values (?, null)", [f"{schema}.{table}"])
    con.execute(
        "insert or replace into privacy.requests values (?, ?, ?, ?, ?::json)",
        [request_id, requested_id, ids, requested_at, json.dumps(deleted)])
    con.execute("commit")
    if data_docs_dir is not None:
        for hour in hours:  # GX samples of failing values may hold the person's data; reruns rebuild them
            shutil.rmtree(data_docs_dir / f"hour={hour:%Y-%m-%dT%H}", ignore_errors=True)
    log.info("forgot %s (%s ids, user_keys %s): %s", requested_id, len(ids), keys, deleted)
    return {"ids": ids, "user_keys": keys, "deleted": deleted, "hours": [f"{h:%Y-%m-%dT%H}" for h in hours]}


REQUESTS_PREFIX = "privacy/requests"


def pending_requests(con: duckdb.DuckDBPyConnection, fs, bucket: str) -> list[dict]:
    """Requests dropped in s3://<bucket>/privacy/requests/*.json ({"request_id", "user_id"}) not yet done."""
    ensure_tables(con)
    done = {r for (r,) in con.execute("select request_id from privacy.requests").fetchall()}
    out = []
    for path in sorted(fs.glob(f"{bucket}/{REQUESTS_PREFIX}/*.json")):
        request = json.loads(fs.cat_file(path))
        if not isinstance(request, dict) or not request.get("user_id"):
            raise ValueError(f"s3://{path} must be a JSON object with a user_id (and optionally request_id)")
        request.setdefault("request_id", path.rsplit("/", 1)[-1].removesuffix(".json"))
        if request["request_id"] not in done:
            out.append({"request_id": str(request["request_id"]), "user_id": str(request["user_id"])})
    return out
