"""The DuckDB warehouse: connections and the landing / audit tables the loader owns."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import duckdb

from event_pipeline import privacy
from event_pipeline.adapters import CHECK_COLUMNS
from event_pipeline.contract import CANONICAL_COLUMNS, canonical_ddl, quarantine_ddl
from event_pipeline.snapshot import CHANGE_LOG_DDL
from event_pipeline.writer_lock import warehouse_writer_lock

STAGED_EXTRA_COLUMNS = (("row_id", "BIGINT"), ("line_fault", "VARCHAR"), ("raw_text", "VARCHAR"))

# One row per dump object per hour: records_read = records_valid + records_quarantined + records_suppressed.
OBJECT_COUNTS_DDL = """create table if not exists landing.object_counts (
    batch_hour timestamp, source varchar, object_key varchar,
    records_read bigint, records_valid bigint, records_quarantined bigint, records_suppressed bigint default 0
)"""

AUDIT_DDL = (
    OBJECT_COUNTS_DDL,
    """create table if not exists audit.validation_results (
        batch_hour timestamp, source varchar, suite varchar, expectation varchar, column_name varchar,
        reason_code varchar, notes varchar, element_count bigint, unexpected_count bigint, success boolean
    )""",
    """create table if not exists audit.schema_drift (
        batch_hour timestamp, source varchar, field varchar, records bigint
    )""",
    """create table if not exists audit.pipeline_runs (
        run_id varchar, batch_hour timestamp, task varchar, finished_at timestamp, details json
    )""",
    # keys of the mart rows dbt rewrote since the last snapshot publish (NULL: the whole table)
    CHANGE_LOG_DDL,
)


DEFAULT_MEMORY_LIMIT = "2GB"


def memory_config() -> dict[str, str]:
    """DuckDB's memory cap for the pipeline's connections (EVENTS_DUCKDB_MEMORY_LIMIT, default 2GB): past it,
    DuckDB spills to `<database file>.tmp` instead of growing (its own default cap is 80% of RAM). dbt's
    connection gets the same cap from profiles.yml."""
    # 2GB keeps a 10M-event hour under 4 GB of resident memory in every stage (docs/benchmarks.md, target 3);
    # DuckDB's own default is 80% of RAM
    return {"memory_limit": os.environ.get("EVENTS_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)}


def staged_ddl(table: str) -> str:
    cols = [(n, t) for n, t, _ in CANONICAL_COLUMNS] + list(CHECK_COLUMNS) + list(STAGED_EXTRA_COLUMNS)
    body = ",\n    ".join(f"{n} {'VARCHAR' if n == 'raw' else t}" for n, t in cols)
    return f"create table if not exists {table} (\n    {body}\n)"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for schema in ("landing", "audit"):
        con.execute(f"create schema if not exists {schema}")
    con.execute(canonical_ddl("landing.events"))
    con.execute(quarantine_ddl("landing.quarantine"))
    con.execute(staged_ddl("landing.staged_records"))
    for ddl in AUDIT_DDL:
        con.execute(ddl)
    # warehouses created before privacy requests existed
    con.execute("alter table landing.object_counts add column if not exists records_suppressed bigint default 0")
    privacy.ensure_tables(con)


@contextmanager
def connect(path: Path, read_only: bool = False):
    """A connection to the warehouse file, under its writer lock (writer_lock.py: another writer makes this
    wait instead of failing with DuckDB's "Could not set lock on file"); closes and releases on exit."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    with warehouse_writer_lock(path, "warehouse.connect"):
        con = duckdb.connect(str(path), read_only=read_only, config=memory_config())
        try:
            if not read_only:
                ensure_schema(con)
            yield con
        finally:
            con.close()
