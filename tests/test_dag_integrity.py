"""Every DAG imports cleanly and follows the house rules: tags, retries, timeouts, the writer pool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from event_pipeline.dag_defaults import TAG_EVENTS
from event_pipeline.settings import WAREHOUSE_POOL

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
# Tasks that open the DuckDB warehouse for writing: they must queue in the 1-slot pool.
WRITER_TASKS = {"load_landing", "validate_records", "dbt_build", "evaluate_segments", "publish_snapshot"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_FILES, "no DAG files found"
    assert {Path(d.fileloc).name for d in dagbag.dags.values()} == {p.name for p in DAG_FILES}


def test_dags_have_tags_docs_and_guards(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert TAG_EVENTS in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} needs doc_md"
        assert dag.max_active_runs >= 1
        assert not dag.catchup, f"{dag_id}: catchup would flood the scheduler with historical runs"


def test_every_task_retries_with_backoff_and_has_a_timeout(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"
            assert task.retry_exponential_backoff, f"{dag_id}.{task.task_id} has no exponential backoff"
            assert task.execution_timeout is not None, f"{dag_id}.{task.task_id} has no execution_timeout"
            assert task.on_failure_callback, f"{dag_id}.{task.task_id} has no failure notifier"


def test_warehouse_writers_use_the_one_slot_pool(dagbag):
    dag = dagbag.dags["events_hourly"]
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert {t for t, p in pools.items() if p == WAREHOUSE_POOL} == WRITER_TASKS
    assert dag.max_active_runs == 1


def test_hourly_dag_is_a_chain_without_cycles(dagbag):
    dag = dagbag.dags["events_hourly"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order == ["discover_objects", "load_landing", "validate_records", "dbt_build", "evaluate_segments",
                     "publish_snapshot"]


def test_dag_files_import_no_heavy_modules_at_parse_time():
    """dbt, GX and pandas load inside tasks, never when the scheduler parses the file."""
    for path in DAG_FILES:
        code = (f"import runpy, sys; runpy.run_path({str(path)!r}); "
                "heavy = sorted(m for m in ('dbt.cli.main', 'great_expectations', 'pandas') if m in sys.modules); "
                "print(','.join(heavy))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert result.stdout.strip().splitlines()[-1:] in ([], [""]), f"{path.name} imports {result.stdout}"
