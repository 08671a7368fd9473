"""Every DAG imports cleanly and follows the house rules: tags, retries, timeouts, the writer pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from event_pipeline.dag_defaults import TAG_EVENTS
from event_pipeline.dbt_cosmos import MANIFEST_PATH
from event_pipeline.settings import WAREHOUSE_POOL

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
# Tasks that open the DuckDB warehouse for writing: they must queue in the 1-slot pool, and so must the dbt
# group's producer (the hour's `dbt build`). Each model's run/test task only reads the producer's results;
# when it runs dbt itself (a retry), it holds the warehouse writer lock instead (tested below).
WRITER_TASKS = {"load_landing", "validate_records", "evaluate_segments", "publish_snapshot"}
DBT_PRODUCER = "dbt.dbt_producer_watcher"


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


def dbt_tasks(dag) -> set[str]:
    """The cosmos tasks that can invoke dbt (not the group's bookkeeping EmptyOperator)."""
    return {t.task_id for t in dag.tasks if t.task_id.startswith("dbt.") and hasattr(t, "project_dir")}


def test_warehouse_writers_use_the_one_slot_pool(dagbag):
    dag = dagbag.dags["events_hourly"]
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert DBT_PRODUCER in dbt_tasks(dag)
    assert {t for t, p in pools.items() if p == WAREHOUSE_POOL} == WRITER_TASKS | {DBT_PRODUCER}
    assert dag.max_active_runs == 1


def test_dbt_model_tasks_take_the_writer_lock_when_they_run_dbt(dagbag, tmp_path, monkeypatch):
    """A model task's own dbt run (its retry) waits for the warehouse writer lock held by another process."""
    from event_pipeline import dbt_cosmos, writer_lock
    from event_pipeline.settings import get_settings

    dag = dagbag.dags["events_hourly"]
    consumers = [t for t in dag.tasks if t.task_id in dbt_tasks(dag) - {DBT_PRODUCER}]
    assert consumers and all(type(t).__name__.startswith("Locked") for t in consumers)
    monkeypatch.setenv("EVENTS_HOME", str(tmp_path))
    warehouse = get_settings().warehouse_path
    released = tmp_path / "holder-released"  # the holder touches it as the last thing before letting go
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from pathlib import Path; from event_pipeline.writer_lock import warehouse_writer_lock\n"
        f"with warehouse_writer_lock(Path({str(warehouse)!r}), 'test holder'):\n"
        f"    print('held', flush=True); time.sleep(2); Path({str(released)!r}).touch()")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    seen = {}

    def fake_run(self, try_number, context):
        seen["holder_had_released"] = released.exists()
        return True

    base = type(consumers[0]).__mro__[1]
    monkeypatch.setattr(base, "_fallback_to_non_watcher_run", fake_run)
    assert consumers[0]._fallback_to_non_watcher_run(2, {}) is True
    assert holder.wait(timeout=30) == 0
    assert seen == {"holder_had_released": True}
    assert writer_lock.lock_path(warehouse).exists()
    assert dbt_cosmos.locked_consumer_class(base) is type(consumers[0])


def test_producer_writes_each_xcom_value_once_and_no_test_events():
    """cosmos' result parsing sees XComWrittenOnce: a repeated value and a data test's dbt event are not written."""
    from event_pipeline.dbt_cosmos import XComWrittenOnce

    class RecordingTaskInstance:
        run_id = "scheduled__2026-11-20T05:00:00+00:00"

        def __init__(self):
            self.writes = []

        def xcom_push(self, key, value, **kwargs):
            self.writes.append((key, json.loads(json.dumps(value))))  # serialised when written, as Airflow does

        def xcom_pull(self, task_ids=None, key=None):
            return {"pulled": key}

    real = RecordingTaskInstance()
    ti = XComWrittenOnce(real)
    model_status = "model__event_pipeline__users_status"
    ti.xcom_push(key=model_status, value={"status": "success", "outlet_uris": []})
    ti.xcom_push(key=model_status, value={"status": "success", "outlet_uris": []})  # dbt's second terminal event
    ti.xcom_push(key="test__event_pipeline__unique_users_user_key_dbt_event", value={"status": "pass"})
    ti.xcom_push(key="model__event_pipeline__users_dbt_event", value={"status": "success"})
    changing = {"status": "success"}
    ti.xcom_push(key="model__event_pipeline__events_status", value=changing)
    changing["status"] = "error"  # changed in place after the write: written again
    ti.xcom_push(key="model__event_pipeline__events_status", value=changing)
    ti.xcom_push(key=model_status, value={"status": "error", "outlet_uris": []})  # a new value for a key
    assert real.writes == [
        (model_status, {"status": "success", "outlet_uris": []}),
        ("model__event_pipeline__users_dbt_event", {"status": "success"}),
        ("model__event_pipeline__events_status", {"status": "success"}),
        ("model__event_pipeline__events_status", {"status": "error"}),
        (model_status, {"status": "error", "outlet_uris": []}),
    ]
    # everything else is the task instance's own
    assert ti.run_id == real.run_id
    assert ti.xcom_pull(task_ids="x", key="k") == {"pulled": "k"}


def test_every_dbt_model_has_a_run_task_and_its_tests_a_test_task(dagbag):
    dag = dagbag.dags["events_hourly"]
    nodes = json.loads(MANIFEST_PATH.read_text())["nodes"]
    models = {n["name"] for n in nodes.values() if n["resource_type"] == "model"}
    tested = {nodes[d]["name"] for n in nodes.values() if n["resource_type"] == "test"
              for d in n["depends_on"]["nodes"] if d in nodes and nodes[d]["resource_type"] == "model"}
    ids = {t.task_id for t in dag.tasks}
    assert models and tested
    assert {m for m in models if f"dbt.{m}.run" not in ids and f"dbt.{m}_run" not in ids} == set()
    assert {m for m in tested if f"dbt.{m}.test" not in ids} == set()


def test_hourly_dag_runs_the_stages_in_order(dagbag):
    dag = dagbag.dags["events_hourly"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order[:4] == ["discover_objects", "load_landing", "validate_records", DBT_PRODUCER]
    assert order[-2:] == ["evaluate_segments", "publish_snapshot"]
    assert {t for t in order[4:-2] if not t.startswith("dbt.")} == set()
    # the one `dbt build` comes before every model task, which only report (or, on retry, rerun) its result
    producer = dag.get_task(DBT_PRODUCER)
    assert set(order[4:-2]) - {DBT_PRODUCER} <= producer.get_flat_relative_ids(upstream=False)
    assert dag.get_task("evaluate_segments").upstream_task_ids >= {"dbt.dbt_producer_watcher_done"}


def test_dbt_group_renders_from_the_committed_manifest(dagbag):
    """cosmos renders the dbt group from the committed manifest (LoadMode.DBT_MANIFEST), so the scheduler
    never runs dbt to parse the DAG file (that alone takes ~10 s; `make bench` prints the parse times)."""
    from cosmos.constants import LoadMode

    graph = dagbag.dags["events_hourly"].task_group_dict["dbt"].dbt_graph
    assert graph.load_method == LoadMode.DBT_MANIFEST
    assert str(graph.project.manifest_path).removeprefix("file://") == str(MANIFEST_PATH)


def test_committed_dbt_manifest_matches_the_dbt_project():
    """The DAG's dbt tasks come from dbt_project/manifest/manifest.json: it must be regenerated (and committed)
    with every model, test or dbt_project.yml change. `dbt parse` runs in a child process (~10 s)."""
    code = "from event_pipeline.dbt_cosmos import parse_manifest; import sys; sys.stdout.write(parse_manifest())"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert fresh == MANIFEST_PATH.read_text(), (
        f"{MANIFEST_PATH} is stale: run `make dbt-manifest` and commit it with the dbt change")


def test_dag_files_import_no_heavy_modules_at_parse_time():
    """dbt, GX and pandas load inside tasks, never when the scheduler parses the file."""
    for path in DAG_FILES:
        code = (f"import runpy, sys; runpy.run_path({str(path)!r}); "
                "heavy = sorted(m for m in ('dbt.cli.main', 'great_expectations', 'pandas') if m in sys.modules); "
                "print('HEAVY=' + ','.join(heavy))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        # cosmos logs to stdout while the DAG is built: read our own line
        heavy = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")]
        assert heavy == ["HEAVY="], f"{path.name} imports {heavy or result.stdout[-2000:]}"
