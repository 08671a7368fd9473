"""The hourly pipeline's stages as plain functions: the DAG's tasks, the demo and the benchmark call them."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from event_pipeline import storage
from event_pipeline.adapters import adapters_for
from event_pipeline.ingest import load_hour
from event_pipeline.settings import Settings, get_settings, s3_config
from event_pipeline.warehouse import connect
from event_pipeline.writer_lock import warehouse_writer_lock

log = logging.getLogger(__name__)

# Schemas (and single tables) copied into the analysts' snapshot on publish.
PUBLISHED_SCHEMAS = ("marts", "segments")
PUBLISHED_TABLES = ("landing.quarantine", "landing.object_counts", "audit.validation_results",
                    "audit.schema_drift")


def hour_start(value: datetime | str) -> datetime:
    """Normalise a data-interval start to a naive UTC datetime on the hour, refusing anything else."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if (value.minute, value.second, value.microsecond) != (0, 0, 0):
        raise ValueError(f"{value.isoformat()} is not on the hour: a run processes exactly one hour [H, H+1h)")
    return value


def discover(hour: datetime) -> list[dict]:
    """The hour's dump objects, every source, as plain dicts (they travel through XCom)."""
    config = s3_config()
    objects = storage.discover_hour(storage.filesystem(config), config.bucket, hour)
    log.info("hour %s: %s objects in s3://%s", f"{hour:%Y-%m-%dT%H}", len(objects), config.bucket)
    return [{"source": o.source, "key": o.key, "size": o.size} for o in objects]


def load(hour: datetime, objects: list[dict], settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    config = s3_config()
    dumps = [storage.DumpObject(**o) for o in objects]
    with connect(settings.warehouse_path) as con:
        stats = load_hour(con, storage.filesystem(config), config.bucket, hour, dumps,
                          adapters_for(settings.mappings_dir), workers=settings.load_workers)
    log.info("hour %s loaded: %s", f"{hour:%Y-%m-%dT%H}", stats.as_dict())
    return stats.as_dict()


def validate(hour: datetime, settings: Settings | None = None, historical: bool = False) -> dict:
    """GX validation + quarantine. `historical` lifts the late-event limit (a one-off import of old data)."""
    # Great Expectations takes ~8-10 s to import: only the validate task pays it, not every task that
    # imports this module (each Airflow task is its own process).
    from event_pipeline.validate import validate_hour

    settings = settings or get_settings()
    with connect(settings.warehouse_path) as con:
        outcome = validate_hour(
            con, hour, adapters_for(settings.mappings_dir),
            future_skew=settings.future_skew,
            late_limit=None if historical else settings.late_event_limit,
            chunk_rows=settings.validation_chunk_rows,
            max_invalid_share=settings.max_invalid_share,
            expected_sources=settings.expected_sources,
            data_docs_dir=settings.gx_dir / "data_docs" if settings.data_docs else None,
        )
    log.info("hour %s validated: %s", f"{hour:%Y-%m-%dT%H}", outcome.as_dict())
    return outcome.as_dict()


class DbtBuildError(RuntimeError):
    """dbt build failed; the message lists the failing models and tests."""


def _release_dbt_duckdb() -> None:
    """Close dbt-duckdb's process-wide DuckDB handle (shared with the DAG's cosmos tasks: dbt_cosmos)."""
    from event_pipeline.dbt_cosmos import release_dbt_duckdb

    release_dbt_duckdb()


def dbt_build(hour: datetime | None, settings: Settings | None = None, full_refresh: bool = False) -> dict:
    """`dbt build` of the whole project for one batch hour, in-process (one DuckDB writer).

    With `hour=None` and `full_refresh=True` every model is rebuilt from all of landing (privacy deletes,
    historical imports)."""
    return _invoke_dbt("build", hour, settings, full_refresh=full_refresh)


def dbt_test_all(settings: Settings | None = None) -> dict:
    """`dbt test` of every data test over every row (full scope): the daily check behind the hourly tests,
    which look only at what their hour wrote (macros/get_where_subquery.sql)."""
    return _invoke_dbt("test", None, settings)


def dbt_parse(settings: Settings | None = None) -> dict:
    """`dbt parse` of the project for this home: what the first build of a fresh warehouse would do (~2 s).

    Every later build of the home reuses the parse (partial parsing: dbt_target/partial_parse.msgpack) until
    the project or the profile changes; the hourly DAG's cosmos tasks keep it the same way (cosmos' cache).
    The benchmark parses first, in its own process, so that it times an hour as every scheduled hour after
    the first runs (event_pipeline.bench.run)."""
    return _invoke_dbt("parse", None, settings)


def _invoke_dbt(command: str, hour: datetime | None, settings: Settings | None, full_refresh: bool = False
                ) -> dict:
    from dbt.cli.main import dbtRunner

    from event_pipeline.dbt_cosmos import BATCH_HOUR_ENV, dbt_batch_hour

    settings = settings or get_settings()
    args = [
        command,
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_project_dir),
        "--target-path", str(settings.home / "dbt_target"),
        "--log-path", str(settings.home / "dbt_logs"),
    ]
    if command != "parse":
        # unit tests check model logic, not data: they run in `make test`, not every hour
        args += ["--exclude", "resource_type:unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    started = time.monotonic()
    # profiles.yml reads the warehouse path from the environment, the models read the batch hour from it (an
    # unset one is a full-scope run, whatever the caller's environment holds); set both for this call only.
    # The hour is not a --vars: dbt parses every file again when the vars change (~5 s an hour), while an
    # environment variable read only at run time keeps the parse of the previous hour (macros/run_scope.sql).
    environment = {"EVENTS_WAREHOUSE_PATH": str(settings.warehouse_path),
                   BATCH_HOUR_ENV: dbt_batch_hour(hour) if hour else None}
    previous = {name: os.environ.get(name) for name in environment}
    _set_environment(environment)
    try:
        with warehouse_writer_lock(settings.warehouse_path, f"dbt {command}"):
            try:
                result = dbtRunner().invoke(args)
            finally:
                _release_dbt_duckdb()
    finally:
        _set_environment(previous)
    failures = []
    for node in getattr(result.result, "results", None) or []:
        status = str(getattr(node, "status", ""))
        if status.lower() in ("error", "fail"):
            failures.append(f"{node.node.unique_id}: {status}: {(node.message or '').strip()[:300]}")
    scope = f"hour {hour:%Y-%m-%dT%H}" if hour else "the project" if command == "parse" else "all history"
    if not result.success:
        detail = "; ".join(failures) or repr(result.exception)
        raise DbtBuildError(f"dbt {command} for {scope} failed: {detail}. Logs: "
                            f"{settings.home / 'dbt_logs'}; fix the model or data and rerun the task")
    # a build's or test's result lists the nodes it ran; a parse's is the manifest
    nodes = len(getattr(result.result, "results", None) or getattr(result.result, "nodes", None) or [])
    log.info("dbt %s for %s: %s nodes in %.1fs", command, scope, nodes, time.monotonic() - started)
    return {"nodes": nodes, "seconds": round(time.monotonic() - started, 2)}


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def segment(hour: datetime, settings: Settings | None = None) -> dict:
    """Evaluate every segment definition as of the end of the hour."""
    from event_pipeline.segments import evaluate_segments

    settings = settings or get_settings()
    as_of = hour + timedelta(hours=1)
    with connect(settings.warehouse_path) as con:
        sizes = evaluate_segments(con, as_of, settings.segments_dir)
    log.info("segments as of %s: %s", as_of, sizes)
    return sizes


def publish(hour: datetime | None, settings: Settings | None = None, full: bool = False) -> dict:
    """Bring the analysts' snapshot file up to date with the warehouse and swap it in atomically.

    Readers open analytics.duckdb read-only and see the previous complete snapshot or the new one, never a
    half-written hour (event_pipeline.snapshot). Only what changed since the last publish is rewritten;
    `full=True` copies every table (the daily maintenance does, to compact the file)."""
    from event_pipeline.snapshot import publish_snapshot

    settings = settings or get_settings()
    with connect(settings.warehouse_path) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() and (table_schema in ? or "
            "table_schema || '.' || table_name in ?) order by all",
            [list(PUBLISHED_SCHEMAS), list(PUBLISHED_TABLES)],
        ).fetchall()
        return publish_snapshot(con, settings.analytics_path, [tuple(t) for t in tables], hour, full=full)


def forget_person(requested_id: str, request_id: str, settings: Settings | None = None) -> dict:
    """Privacy request: suppress a person's ids and delete their rows (dbt tables: rebuild afterwards)."""
    from event_pipeline import privacy

    settings = settings or get_settings()
    with connect(settings.warehouse_path) as con:
        return privacy.forget(con, requested_id, request_id, datetime.now(UTC).replace(tzinfo=None),
                              data_docs_dir=settings.gx_dir / "data_docs")


def collect_privacy_requests(user_id: str | None, run_id: str | None, settings: Settings | None = None) -> list:
    """The run's own request (a user id in its params) plus unprocessed request files in object storage."""
    from event_pipeline import privacy

    settings = settings or get_settings()
    requests = [{"request_id": f"{run_id}", "user_id": user_id}] if user_id else []
    config = s3_config()
    with connect(settings.warehouse_path) as con:
        requests += privacy.pending_requests(con, storage.filesystem(config), config.bucket)
    log.info("privacy requests to process: %s", [r["request_id"] for r in requests])
    return requests


def detect_segment_changes(settings: Settings | None = None) -> list[str]:
    """Changed definitions vs the published snapshot (read-only). Raises AirflowSkipException when none, so
    no Asset event is emitted."""
    import duckdb

    from event_pipeline.segment_changes import changed_definitions

    settings = settings or get_settings()
    if not settings.analytics_path.exists():
        changed: list[str] = []
    else:
        con = duckdb.connect(str(settings.analytics_path), read_only=True)
        try:
            changed = changed_definitions(con, settings.segments_dir)
        finally:
            con.close()
    if not changed:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("segment definitions unchanged")
    log.info("segment definitions changed: %s", changed)
    return changed


def recompute_changed_segments(settings: Settings | None = None) -> dict:
    from event_pipeline.segment_changes import recompute_changed

    settings = settings or get_settings()
    with connect(settings.warehouse_path) as con:
        return recompute_changed(con, settings.segments_dir)


def _naive_utc(value: datetime | None) -> datetime:
    value = value or datetime.now(UTC)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def maintenance_retention(now: datetime | None = None, settings: Settings | None = None) -> dict:
    from event_pipeline import maintenance

    settings = settings or get_settings()
    with connect(settings.warehouse_path) as con:
        return maintenance.apply_retention(con, _naive_utc(now))


def maintenance_checkpoint(settings: Settings | None = None) -> dict:
    from event_pipeline import maintenance

    return maintenance.checkpoint((settings or get_settings()).warehouse_path)


def maintenance_prune_docs(now: datetime | None = None, settings: Settings | None = None) -> dict:
    from event_pipeline import maintenance

    settings = settings or get_settings()
    return maintenance.prune_docs(settings.gx_dir, settings.home / "dbt_target", settings.analytics_path,
                                  _naive_utc(now))


def run_hour(hour: datetime, settings: Settings | None = None) -> dict:
    """Every stage for one hour, in-process (the benchmark's data path; the DAG runs the same functions)."""
    settings = settings or get_settings()
    timings: dict[str, float] = {}

    def timed(name, fn, *args):
        started = time.monotonic()
        out = fn(*args)
        timings[name] = round(time.monotonic() - started, 3)
        return out

    objects = timed("discover", discover, hour)
    loaded = timed("load", load, hour, objects, settings)
    validated = timed("validate", validate, hour, settings)
    timed("dbt_build", dbt_build, hour, settings)
    sizes = timed("segment", segment, hour, settings)
    timed("publish", publish, hour, settings)
    return {"loaded": loaded, "validated": validated, "segments": sizes, "timings": timings}


def default_paths() -> dict[str, Path]:
    s = get_settings()
    return {"warehouse": s.warehouse_path, "analytics": s.analytics_path, "gx": s.gx_dir}
