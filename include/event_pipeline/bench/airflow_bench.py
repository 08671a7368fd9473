"""The Airflow side of the benchmark: `airflow dags test` of an hour, DAG file parse times, and a backfill
through the running scheduler.

The Airflow installation is the integration tests' own (tests/airflow_services.py): a fresh AIRFLOW_HOME with
the LocalExecutor (metadata on SQLite for `dags test`; the backfill's on PostgreSQL when reachable), its
components as subprocesses (api-server, scheduler, dag-processor, triggerer), the scheduler creating no
scheduled runs of its own, and the `duckdb_warehouse` pool.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psutil

from event_pipeline.settings import REPO_ROOT

DAG_ID = "events_hourly"


def services():
    """tests/airflow_services.py, the one place that knows how to run a real Airflow for this project."""
    tests = REPO_ROOT / "tests"
    if not (tests / "airflow_services.py").exists():
        raise RuntimeError(f"the Airflow scenarios run Airflow with {tests / 'airflow_services.py'}, which is "
                           "missing; run with --skip-airflow")
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    import airflow_services

    return airflow_services


def run_measured(cmd: list[str], env: dict, log: Path, timeout: float) -> dict:
    """Run a command; wall seconds and the peak RSS summed over it and its descendants (sampled every 50 ms)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = 0
    with open(log, "ab") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        done = threading.Event()

        def sample():
            nonlocal peak
            try:
                parent = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while not done.is_set():
                try:
                    rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
                    peak = max(peak, rss)
                except psutil.Error:
                    pass
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = "timeout"
        done.set()
        sampler.join()
    return {"returncode": code, "wall": round(time.monotonic() - started, 3), "peak_rss": peak}


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _task_instances(db: Path) -> list[dict]:
    """Every task instance with its wall seconds from start_date to end_date. Not the `duration` column: with
    the scheduler on SQLite it is wrong for many task instances (seconds off, some negative: -58.6 s for a
    0.4 s task in one run), while `airflow dags test` fills it correctly."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "select run_id, task_id, state, start_date, end_date from task_instance order by start_date"
        ).fetchall()
    finally:
        con.close()
    return [{"run_id": r[0], "task_id": r[1], "state": r[2], "start": r[3], "end": r[4],
             "seconds": round(_seconds(r[3], r[4]), 3)} for r in rows]


PRODUCER = "dbt.dbt_producer_watcher"
# The tasks that do the hour's work, in order (the producer runs the hour's single `dbt build`).
MAIN_TASKS = ("discover_objects", "load_landing", "validate_records", PRODUCER, "evaluate_segments",
              "publish_snapshot")


def breakdown(tasks: list[dict]) -> dict:
    """Where one run's wall time went: the six tasks doing the hour's work (wall seconds each); the cosmos
    model/test tasks after the build (how many, their summed task seconds, and the wall seconds from the
    build's end to the last one's end); the first task's start to the last task's end (span); and the rest
    of the span: the time between tasks (queueing, starting each task's process)."""
    done = [t for t in tasks if t["start"] and t["end"]]
    if not done:
        return {}
    by_id = {t["task_id"]: t for t in done}
    main = {tid: by_id[tid]["seconds"] for tid in MAIN_TASKS if tid in by_id}
    models = [t for t in done if t["task_id"].startswith("dbt.") and t["task_id"] != PRODUCER]
    first = min(t["start"] for t in done)
    last = max(t["end"] for t in done)
    span = _seconds(first, last)
    model_span = 0.0
    if models and PRODUCER in by_id:
        model_span = max(0.0, _seconds(by_id[PRODUCER]["end"], max(t["end"] for t in models)))
    return {
        "main": main, "models": len(models), "model_task_seconds": round(sum(t["seconds"] for t in models), 2),
        "model_span": round(model_span, 2), "span": round(span, 2),
        "between_tasks": round(span - sum(main.values()) - model_span, 2),
        "task_seconds": round(sum(t["seconds"] for t in done), 2),
    }


def new_airflow(base: Path, s3_connection: str, events_home: Path):
    """A migrated Airflow home (SQLite) with the warehouse pool; returns (Airflow, setup seconds)."""
    af = services().Airflow(base, s3_connection=s3_connection, events_home=events_home)
    started = time.monotonic()
    af.init_db()
    return af, round(time.monotonic() - started, 1)


def dags_test(af, hour: datetime, log: Path, timeout: float = 3600) -> dict:
    """`airflow dags test events_hourly` for the hour [hour, hour+1h): a manual run processes the last complete
    hour before its logical date, so the logical date is hour+1h."""
    logical = (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    result = run_measured(["airflow", "dags", "test", DAG_ID, logical], af.env, log, timeout)
    tasks = [t for t in _task_instances(af.home / "airflow.db") if t["run_id"] and "manual" in t["run_id"]]
    result["tasks"] = tasks
    result["task_seconds"] = round(sum(t["seconds"] for t in tasks), 3)
    result["states"] = sorted({t["state"] for t in tasks})
    result["breakdown"] = breakdown(tasks)
    return result


def mean_breakdown(items: list[dict]) -> dict:
    """The runs' breakdowns averaged, field by field (the six tasks too)."""
    if not items:
        return {}
    mean = {k: round(statistics.mean(b[k] for b in items), 2) for k, v in items[0].items() if k != "main"}
    mean["main"] = {tid: round(statistics.mean(b["main"].get(tid, 0.0) for b in items), 2)
                    for tid in items[0]["main"]}
    return mean


PARSE_SNIPPET = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag  # airflow itself is loaded before timing, as in the dag-processor
path = sys.argv[1]
times = []
for _ in range(2):
    started = time.perf_counter()
    bag = DagBag(dag_folder=path, safe_mode=False)
    times.append(time.perf_counter() - started)
print(json.dumps({"file": path, "cold": times[0], "warm": times[1], "dags": sorted(bag.dag_ids),
                  "errors": {k: str(v)[-300:] for k, v in bag.import_errors.items()}}))
"""


def parse_times(af, dags_dir: Path = REPO_ROOT / "dags") -> list[dict]:
    """Each DAG file parsed in its own fresh interpreter: cold (first parse: the file's imports included) and
    warm (the same file again in that process: what the dag-processor pays on every later refresh)."""
    results = []
    for path in sorted(dags_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        out = subprocess.run([sys.executable, "-c", PARSE_SNIPPET, str(path)], env=af.env, capture_output=True,
                             text=True, timeout=300, check=False)
        line = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{")), None)
        if out.returncode != 0 or line is None:
            results.append({"file": path.name, "error": (out.stderr or out.stdout)[-500:]})
            continue
        data = json.loads(line)
        data["file"] = path.name
        results.append(data)
    return results


def _rest_task_instances(af) -> list[dict]:
    """Every task instance of the DAG through the REST API (any metadata DB), in `_task_instances`' shape."""
    return [{"run_id": t["dag_run_id"], "task_id": t["task_id"], "state": t["state"], "start": t["start_date"],
             "end": t["end_date"], "seconds": round(_seconds(t["start_date"], t["end_date"]), 3)}
            for t in af.task_instances(DAG_ID)]


@contextmanager
def metadata_database(choice: str) -> Iterator[tuple[str, dict]]:
    """(label, Airflow env) of the backfill's metadata DB: a fresh PostgreSQL database (dropped after) or
    Airflow's embedded SQLite file. `auto` takes PostgreSQL when the machine's is reachable: on SQLite a long
    backfill request can fail part-way with 'database is locked' (18 of 24 runs created on 2026-11-27)."""
    svc = services()
    with ExitStack() as stack:
        database = None
        if choice != "sqlite":
            try:
                database = stack.enter_context(svc.postgres_metadata_database("events_airflow_bench"))
            except svc.PostgresUnavailable:
                if choice == "postgres":
                    raise
        if database is None:
            yield f"SQLite (Airflow's embedded default{'' if choice == 'sqlite' else '; PostgreSQL unreachable'})", {}
        else:
            yield f"PostgreSQL ({svc.PG_HOST}:{svc.PG_PORT})", svc.postgres_metadata_env(database)


def _wait_until_completed(af, backfill_id: int, timeout: float = 120) -> None:
    """Airflow takes one backfill of a DAG at a time, and marks one completed a scheduler loop or more after
    its last run succeeded: until then a new one is refused (HTTP 409)."""
    deadline = time.monotonic() + timeout
    while af.request("GET", f"/api/v2/backfills/{backfill_id}").get("completed_at") is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"backfill {backfill_id}: its runs succeeded, but Airflow did not mark it completed "
                               f"within {timeout:.0f}s (the scheduler's log is in the Airflow home's logs)")
        time.sleep(0.5)


def scheduler_backfill(base: Path, hours: list[datetime], s3_connection: str, events_home: Path,
                       seconds_per_hour: float = 600, metadata: str = "auto",
                       warmup_hour: datetime | None = None) -> dict:
    """Start Airflow's components, then backfill `hours` through the scheduler (one run at a time).

    With `warmup_hour`, that hour is backfilled first and not timed: a fresh deployment's first run pays
    once for what later runs find ready (the producer parses the whole dbt project, about 3 s, as cosmos'
    cache of dbt's partial parse is still empty or was made for another warehouse; the first task spent
    about 3 s before loading the DAG bundle), and the timed runs should cost what each hour of a long
    backfill does (docs/benchmarks-log.md, "A per-core speed figure beside the results")."""
    svc = services()
    with metadata_database(metadata) as (metadata_label, metadata_env):
        started = time.monotonic()
        with svc.airflow_stack(base, s3_connection=s3_connection, events_home=events_home,
                               extra_env=metadata_env, name="bench-backfill") as af:
            af.wait_for_dag(DAG_ID)
            af.unpause(DAG_ID)
            warmups = 0
            if warmup_hour is not None:
                backfill = af.create_backfill(DAG_ID, warmup_hour, warmup_hour)
                warmups = len(af.wait_for_runs(DAG_ID, 1, timeout=60 + seconds_per_hour))
                _wait_until_completed(af, backfill["id"])
            startup = time.monotonic() - started
            started = time.monotonic()
            af.create_backfill(DAG_ID, hours[0], hours[-1])
            runs = af.wait_for_runs(DAG_ID, warmups + len(hours), timeout=60 + seconds_per_hour * len(hours))
            total = time.monotonic() - started
            tasks = _rest_task_instances(af)
    runs = [run for run in runs if svc.parse_time(run["logical_date"]) >= hours[0]]  # not the warm-up's
    timed = {run["dag_run_id"] for run in runs}
    tasks = [task for task in tasks if task["run_id"] in timed]
    if len(runs) != len(hours):
        raise RuntimeError(f"expected {len(hours)} timed runs from {hours[0]}, found {sorted(timed)}")
    per_run = []
    for run in runs:
        start, end = svc.parse_time(run["start_date"]), svc.parse_time(run["end_date"])
        run_tasks = [t for t in tasks if t["run_id"] == run["dag_run_id"]]
        per_run.append({"run_id": run["dag_run_id"], "wall": (end - start).total_seconds(),
                        "task_seconds": sum(t["seconds"] for t in run_tasks), "breakdown": breakdown(run_tasks)})
    walls = [r["wall"] for r in per_run]
    return {
        "metadata": metadata_label, "hours": len(hours), "warmup_runs": warmups, "startup_seconds": round(startup, 1),
        "total_seconds": round(total, 1),
        "run_wall_mean": round(statistics.mean(walls), 2), "run_wall_median": round(statistics.median(walls), 2),
        "task_seconds_mean": round(statistics.mean(r["task_seconds"] for r in per_run), 2),
        "breakdown_mean": mean_breakdown([r["breakdown"] for r in per_run if r["breakdown"]]),
        "runs": per_run, "tasks": tasks,
    }
