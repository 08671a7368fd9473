"""Detect edited segment definitions and recompute just those segments' current membership."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


def changed_definitions(con: duckdb.DuckDBPyConnection, definitions_dir: Path) -> list[str]:
    """Keys of definitions whose current version is not the one their latest evaluation used (or never ran)."""
    from event_pipeline.segments import load_definitions

    current = {d.key: d.version for d in load_definitions(definitions_dir)}
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'segments' "
        "and table_name = 'evaluations'").fetchall()[0][0]
    evaluated: dict[str, str] = {}
    if exists:
        evaluated = dict(con.execute(
            "select definition_key, arg_max(version, as_of) from segments.evaluations group by 1").fetchall())
    return sorted(key for key, version in current.items() if evaluated.get(key) != version)


def latest_as_of(con: duckdb.DuckDBPyConnection):
    rows = con.execute("select max(as_of) from segments.evaluations").fetchall()
    return rows[0][0] if rows else None


def recompute_changed(con: duckdb.DuckDBPyConnection, definitions_dir: Path) -> dict:
    """Evaluate the changed definitions as of the latest evaluated hour: their current membership follows the
    new version from now on; history keeps which version tagged whom before."""
    from event_pipeline.segments import evaluate_segments

    changed = changed_definitions(con, definitions_dir)
    as_of = latest_as_of(con) if changed else None
    if not changed or as_of is None:
        log.info("segment definitions: nothing to recompute (changed=%s, latest as_of=%s)", changed, as_of)
        return {"changed": changed, "as_of": None, "sizes": {}}
    sizes = evaluate_segments(con, as_of, definitions_dir, only=set(changed))
    log.info("recomputed %s as of %s: %s", changed, as_of, sizes)
    return {"changed": changed, "as_of": as_of.isoformat(), "sizes": sizes}
