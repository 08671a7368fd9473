"""The dbt project as Airflow tasks via astronomer-cosmos (one `dbt build` an hour), its manifest and docs site."""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from event_pipeline.settings import REPO_ROOT, WAREHOUSE_POOL, get_settings
from event_pipeline.writer_lock import warehouse_writer_lock

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = Path(os.environ.get("EVENTS_DBT_PROJECT_DIR", REPO_ROOT / "dbt_project"))
PROFILE_NAME = "event_pipeline"
TARGET_NAME = "dev"
# The manifest cosmos renders the task group from (LoadMode.DBT_MANIFEST: no dbt runs when a DAG file is
# parsed). Committed, because CI and the Docker image start from a clean checkout (dbt_project/target is
# git-ignored); `make dbt-manifest` regenerates it, tests/test_dag_integrity.py fails when it is stale.
MANIFEST_PATH = DBT_PROJECT_DIR / "manifest" / "manifest.json"
# Unit tests check model logic against fixtures, not the hour's data: `make test` runs them, not every hour.
HOURLY_EXCLUDE = "resource_type:unit_test"
# cosmos' WATCHER producer (the one `dbt build`) inside the task group
PRODUCER_TASK_ID = "dbt_producer_watcher"
# dbt's node lifecycle events before the result (see lean_producer_class)
_NODE_PROGRESS_EVENTS = frozenset({"NodeStart", "NodeCompiling", "NodeExecuting"})


# The run's dump hour reaches the models in this environment variable (macros/run_scope.sql), not in --vars:
# dbt parses every file again when the vars change (~5 s an hour); the variable is read only at run time.
BATCH_HOUR_ENV = "EVENTS_BATCH_HOUR"


def dbt_batch_hour(hour: datetime) -> str:
    """The batch hour as the models read it: "YYYY-MM-DD HH:00:00" in UTC (a naive datetime is UTC)."""
    start = hour.astimezone(UTC) if hour.tzinfo else hour
    if (start.minute, start.second, start.microsecond) != (0, 0, 0):
        raise ValueError(f"{start.isoformat()} is not on the hour: a run processes exactly one hour [H, H+1h)")
    return f"{start:%Y-%m-%d %H:%M:%S}"


def release_dbt_duckdb(*_args: Any, **_kwargs: Any) -> None:
    """dbt-duckdb keeps its DuckDB instance open for the life of the process; close it so the warehouse file
    is free for the next writer or reader in the same process (dag.test runs every task in one process, so
    do the demo and the benchmark). Any signature: it is also a cosmos post-run callback."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        try:
            env.close()
        finally:
            DuckDBConnectionManager._ENV = None


def runtime_dbt_settings(context: Any, operator: Any) -> None:
    """cosmos interceptor, run right before each dbt invocation (the hour's build and any per-model retry):
    the run's batch hour, the warehouse this worker writes (profiles.yml reads EVENTS_WAREHOUSE_PATH;
    cosmos sets `env` for the dbt call only) and a dbt log directory that outlives cosmos' temporary copy
    of the project. Replaces rather than appends: the operator object is reused across runs."""
    settings = get_settings()
    operator.env = {**(operator.env or {}), "EVENTS_WAREHOUSE_PATH": str(settings.warehouse_path),
                    BATCH_HOUR_ENV: dbt_batch_hour(context["data_interval_start"])}
    flags = list(operator.dbt_cmd_flags or [])
    if "--log-path" in flags:
        at = flags.index("--log-path")
        del flags[at:at + 2]
    operator.dbt_cmd_flags = [*flags, "--log-path", str(settings.home / "dbt_logs")]
    # a handle another task left open in this process would still point at its warehouse
    release_dbt_duckdb()


class XComWrittenOnce:
    """The producer's task instance as cosmos' result parsing sees it, minus the XCom writes no task reads.

    cosmos 1.15 pushes a finished model's status and compiled SQL, and a model's aggregated test status, on
    both of dbt's terminal events for the node (its result line and NodeFinished): the same value twice. It
    also pushes a `<test>_dbt_event` for every data test, and no task reads those: a model's test task reads
    its model's. Each write is a round trip to Airflow's API server; in the 10k-event backfill benchmark the
    producer made 344 of them, 24-31 ms each, 8-11 s of a 19-24 s task. Skipped here: a write of the value
    the key already holds from this run, and a data test's dbt event; everything else is written as cosmos
    asked (tests/test_hourly_dag.py checks the keys a run leaves against the tasks that read them)."""

    UNREAD_PREFIX = "test__"
    UNREAD_SUFFIX = "_dbt_event"

    def __init__(self, task_instance: Any):
        self._task_instance = task_instance
        self._written: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task_instance, name)

    def xcom_push(self, key: str, value: Any, **kwargs: Any) -> None:
        if key.startswith(self.UNREAD_PREFIX) and key.endswith(self.UNREAD_SUFFIX):
            return
        if key in self._written and self._written[key] == value:
            return
        self._task_instance.xcom_push(key=key, value=value, **kwargs)
        self._written[key] = copy.deepcopy(value)  # cosmos could change a pushed value in place


@functools.cache
def lean_producer_class() -> type:
    """cosmos' WATCHER producer, minus the XCom writes nobody reads, under the warehouse writer lock.

    cosmos 1.15 writes a `<node>_dbt_event` XCom for every lifecycle event of every node (start, compiling,
    executing, finished): ~600 writes an hour here, more than half of the producer's time under dag.test.
    Consumers read that key once, at the end, to log the node's outcome; the progress events change nothing
    else. This subclass still logs them and skips their XComs (upstream: astronomer-cosmos issue #2777), and
    hands cosmos' parsing a task instance that skips the other unread writes (XComWrittenOnce)."""
    from cosmos.operators._watcher.base import _log_dbt_msg
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    class LeanDbtProducerWatcherOperator(DbtProducerWatcherOperator):
        def execute(self, context: Any, **kwargs: Any) -> Any:
            with warehouse_writer_lock(get_settings().warehouse_path, f"dbt build {context.get('run_id')}"):
                return super().execute(context, **kwargs)

        def _make_parse_callable(self):
            parse = super()._make_parse_callable()
            written_once: dict[int, XComWrittenOnce] = {}  # by task instance: one memory of writes per run

            def parse_results_only(line: str, extra_kwargs: Any) -> None:
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                if isinstance(event, dict) and (event.get("info") or {}).get("name") in _NODE_PROGRESS_EVENTS:
                    _log_dbt_msg(event)
                    return
                context = (extra_kwargs or {}).get("context")
                task_instance = context.get("ti") if context is not None else None
                if task_instance is None:
                    parse(line, extra_kwargs)
                    return
                if id(task_instance) not in written_once:
                    written_once[id(task_instance)] = XComWrittenOnce(task_instance)
                wrapped = written_once[id(task_instance)]
                parse(line, {**extra_kwargs, "context": {**context, "ti": wrapped, "task_instance": wrapped}})

            return parse_results_only

    LeanDbtProducerWatcherOperator.__module__ = __name__
    LeanDbtProducerWatcherOperator.__qualname__ = LeanDbtProducerWatcherOperator.__name__
    return LeanDbtProducerWatcherOperator


@functools.cache
def locked_consumer_class(consumer_class: type) -> type:
    """A cosmos model/test task whose own dbt run (on a retry or a manual clear) holds the warehouse writer lock.

    The model tasks are outside the 1-slot pool (they mostly read the producer's results, and 40 of them
    one after the other cost minutes an hour); the rare one that runs dbt itself waits for the lock."""

    class LockedConsumer(consumer_class):
        def _fallback_to_non_watcher_run(self, try_number: int, context: Any) -> bool:
            with warehouse_writer_lock(get_settings().warehouse_path, f"dbt retry {self.task_id}"):
                return super()._fallback_to_non_watcher_run(try_number, context)

    LockedConsumer.__name__ = LockedConsumer.__qualname__ = f"Locked{consumer_class.__name__}"
    LockedConsumer.__module__ = __name__
    return LockedConsumer


def dbt_task_group(group_id: str = "dbt", **task_group_kwargs: Any):
    """The dbt project as a cosmos DbtTaskGroup in WATCHER mode, rendered from the committed manifest.

    `dbt_producer_watcher` runs the hour's single `dbt build` (one DuckDB writer); every model then has a
    `<model>.run` task and a `<model>.test` task (its data tests) that succeed or fail with what dbt
    reported. Retrying one of them runs dbt for that model alone (`dbt run|test --select <model>`). The
    producer is in the 1-slot warehouse pool with the other writers; the model tasks are not (they run in
    parallel, reading results), and any dbt run of theirs waits for the warehouse writer lock instead.
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    group = DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=MANIFEST_PATH,
            project_name=PROFILE_NAME,
            install_dbt_deps=False,
        ),
        profile_config=ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=TARGET_NAME,
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            # in-process: no second interpreter and dbt import per invocation
            invocation_mode=InvocationMode.DBT_RUNNER,
            # the producer's retry only hands the first try's results to the model tasks (cosmos skips it
            # instead of building again): no reason to wait a minute for that
            setup_operator_args={"retry_delay": timedelta(seconds=10)},
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            exclude=[HOURLY_EXCLUDE],
            emit_datasets=False,
        ),
        operator_args={
            "pool": WAREHOUSE_POOL,
            "install_deps": False,
            # per-model retries run `dbt run|test --select <model>`: keep unit tests out of those too
            "exclude": HOURLY_EXCLUDE,
            "interceptors": [runtime_dbt_settings],
            "callback": release_dbt_duckdb,
        },
        **task_group_kwargs,
    )
    producer = group.children[f"{group.group_id}.{PRODUCER_TASK_ID}"]
    producer.__class__ = lean_producer_class()
    for task in group.iter_tasks():
        if task is not producer and hasattr(task, "_fallback_to_non_watcher_run"):
            task.__class__ = locked_consumer_class(type(task))
            # reads the producer's results; its own dbt run (retry) takes the writer lock instead
            task.pool = "default_pool"
    _start_sensors_after_the_build(group, producer)
    return group


def _start_sensors_after_the_build(group, producer) -> None:
    """Make the first model tasks wait for the producer (cosmos does this only for a DbtDag).

    Otherwise they start next to it: dag.test runs ready tasks one at a time in no fixed order, and a sensor
    that happens to start first waits for a build that cannot start; with the 1-slot pool they could not
    run during the build anyway. NONE_FAILED: a failed build's producer is retried, and cosmos skips that
    retry instead of building twice; the model tasks then still report each model, a failed model's task
    fails, and its retry runs dbt for that model alone."""
    from airflow.sdk import TriggerRule

    for root in list(group.get_roots()):
        if root is not producer:
            producer >> root
            root.trigger_rule = TriggerRule.NONE_FAILED


# --- manifest and docs (make dbt-manifest, make dbt-docs) ----------------------------------------------


@contextmanager
def _dbt_env(warehouse: Path) -> Iterator[None]:
    """EVENTS_WAREHOUSE_PATH for a dbt call in this process, restored afterwards."""
    previous = os.environ.get("EVENTS_WAREHOUSE_PATH")
    os.environ["EVENTS_WAREHOUSE_PATH"] = str(warehouse)
    try:
        yield
    finally:
        release_dbt_duckdb()
        if previous is None:
            os.environ.pop("EVENTS_WAREHOUSE_PATH", None)
        else:
            os.environ["EVENTS_WAREHOUSE_PATH"] = previous


def _run_dbt(args: list[str], warehouse: Path) -> None:
    from dbt.cli.main import dbtRunner

    with _dbt_env(warehouse):
        result = dbtRunner().invoke(args)
    if not result.success:
        raise RuntimeError(f"dbt {args[0]} failed: {result.exception or result.result!r}")


def _normalise_manifest(manifest: dict) -> dict:
    """Blank what changes on every parse (timestamps, invocation id): an unchanged project gives the same file."""
    meta = manifest["metadata"]
    for key in ("generated_at", "invocation_started_at", "run_started_at"):
        if key in meta:
            meta[key] = "1970-01-01T00:00:00Z"
    meta["invocation_id"] = None
    for section in manifest.values():
        if isinstance(section, dict):
            for node in section.values():
                if isinstance(node, dict) and "created_at" in node:
                    node["created_at"] = 0.0
    return manifest


def parse_manifest(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """`dbt parse` of the project (no database is opened), normalised, as the committed file's text."""
    with tempfile.TemporaryDirectory(prefix="dbt-parse-") as tmp:
        tmp_path = Path(tmp)
        # relations carry the database name, which is the warehouse file's stem: parse against `work.duckdb`
        _run_dbt(["parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
                  "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
                  "--no-partial-parse", "--quiet"], tmp_path / "work.duckdb")
        manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    return json.dumps(_normalise_manifest(manifest), indent=1, sort_keys=True) + "\n"


def write_manifest(path: Path = MANIFEST_PATH) -> bool:
    """Regenerate the committed manifest; True when its content changed."""
    text = parse_manifest()
    if path.exists() and path.read_text() == text:
        path.touch()  # newer than the models again, for make
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def build_docs(out_dir: Path | None = None, warehouse: Path | None = None) -> Path:
    """`dbt docs generate` into a static site: index.html (+ manifest.json, catalog.json) for any web
    server, static_index.html (everything embedded) to open straight from disk.

    The catalog (columns, types, row counts) comes from a copy of the warehouse, so the pipeline is never
    blocked; when there is no warehouse yet, or the copy caught a write half-way, the site is built with
    an empty catalog (every model, test, column description and the lineage graph are still there)."""
    settings = get_settings()
    out_dir = out_dir or settings.home / "dbt_docs"
    warehouse = warehouse or settings.warehouse_path
    with tempfile.TemporaryDirectory(prefix="dbt-docs-") as tmp:
        tmp_path = Path(tmp)
        copy = tmp_path / "db" / "work.duckdb"  # same stem: relations name the database `work`
        copy.parent.mkdir()
        args = ["docs", "generate", "--static", "--project-dir", str(DBT_PROJECT_DIR),
                "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(tmp_path / "target"),
                "--log-path", str(tmp_path / "logs"), "--quiet"]
        built = False
        if warehouse.exists():
            for suffix in ("", ".wal"):
                if Path(f"{warehouse}{suffix}").exists():
                    shutil.copyfile(f"{warehouse}{suffix}", f"{copy}{suffix}")
            try:
                _run_dbt(args, copy)
                built = True
            except RuntimeError as exc:
                log.warning("catalog from %s failed (%s); building the site with an empty catalog", warehouse, exc)
                for stale in copy.parent.iterdir():
                    stale.unlink()
        if not built:
            _run_dbt([*args, "--empty-catalog"], copy)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("index.html", "static_index.html", "manifest.json", "catalog.json"):
            shutil.copyfile(tmp_path / "target" / name, out_dir / name)
    return out_dir / "static_index.html"


def main(argv: list[str] | None = None) -> None:
    """python -m event_pipeline.dbt_cosmos manifest|docs [--out DIR]"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m event_pipeline.dbt_cosmos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("manifest", help=f"regenerate {MANIFEST_PATH} (dbt parse)")
    docs = sub.add_parser("docs", help="build the dbt docs site (dbt docs generate)")
    docs.add_argument("--out", type=Path, default=None, help="output directory (default $EVENTS_HOME/dbt_docs)")
    args = parser.parse_args(argv)
    if args.command == "manifest":
        changed = write_manifest()
        print(f"{MANIFEST_PATH} {'updated: commit it' if changed else 'unchanged'}")
    else:
        print(f"dbt docs site: {build_docs(args.out)}")


if __name__ == "__main__":
    main()
