"""Real Airflow for the integration tests: components as subprocesses, the REST API, the reference warehouse.

    with airflow_stack(tmp_path / "af", s3_connection=conn, events_home=home) as af:
        af.unpause("events_hourly")
        af.create_backfill("events_hourly", hours[0], hours[-1])
        runs = af.wait_for_runs("events_hourly", len(hours))

Every component (api-server, scheduler, dag-processor, triggerer, celery workers) runs in its own process
group with its log under <base>/logs; the stack is always stopped (process groups and every descendant),
also when the test fails. Ports are free ones, never 8080/8793/8794. The scheduler does not create
scheduled runs (`[scheduler] use_job_schedule = False`): with it, unpausing the DAG would also start a
run for the current hour, which would write to the warehouse next to the backfill and change its tables.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psutil

from event_pipeline.local_s3 import free_port

REPO = Path(__file__).resolve().parents[1]
TEST_OUTPUT = REPO / "test-output"
VENV_BIN = Path(sys.executable).parent
DAG_ID = "events_hourly"
ADMIN = "admin"
# The settings docker-compose.yml and the Makefile give Airflow so that the hourly DAG's chain of ~30 short
# cosmos tasks does not wait a second or five at every link (docs/benchmarks-log.md, "Scheduling latency of the
# cosmos tasks"): the same values here, so the tests and the benchmark run what users run
# (tests/test_docker_compose.py compares them).
SCHEDULING_LATENCY_ENV = {
    # the task supervisor notices its task process has exited at its next wake-up, up to this many seconds
    # later (when the process closes its sockets before it exits); 5 by default
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    # an idle scheduler loop sleeps this long before it looks for tasks made ready by one that finished; 1 by default
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
}
# Variables of the pytest process that must not leak into the components (each stack sets its own).
_DROP_ENV = ("EVENTS_WAREHOUSE_PATH", "EVENTS_ANALYTICS_PATH", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
             "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
             "AIRFLOW_CONFIG", "PYTEST_CURRENT_TEST")


def iso(value: datetime) -> str:
    """A naive-UTC or aware datetime as the API's ISO form, e.g. 2026-11-19T00:00:00Z."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """An API timestamp as a naive UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def tcp_reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# The machine's PostgreSQL (trust auth): the metadata DB of the tests that start Airflow's components.
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


def postgres_metadata_env(database: str) -> dict[str, str]:
    """Airflow env for a metadata DB on the machine's PostgreSQL (see `postgres_metadata_database`)."""
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"}


class PostgresUnavailable(RuntimeError):
    """The machine's PostgreSQL cannot be reached or refuses the connection."""


@contextmanager
def postgres_metadata_database(prefix: str = "events_airflow_test") -> Iterator[str]:
    """A fresh, empty database on the machine's PostgreSQL for Airflow's metadata (its name); dropped after."""
    import psycopg2

    if not tcp_reachable(PG_HOST, PG_PORT):
        raise PostgresUnavailable(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}")

    def admin():
        con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
        con.autocommit = True
        return con

    try:
        con = admin()
    except psycopg2.OperationalError as exc:
        raise PostgresUnavailable(f"cannot connect to PostgreSQL on {PG_HOST}:{PG_PORT} as {PG_USER}: {exc}") from exc
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with con.cursor() as cur:
        cur.execute(f'create database "{name}"')
    con.close()
    try:
        yield name
    finally:
        con = admin()
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        con.close()


class AirflowError(AssertionError):
    """Something in the real Airflow stack did not happen in time or failed; the message carries logs."""


class Airflow:
    """One Airflow installation: a fresh AIRFLOW_HOME, its components and a REST client."""

    def __init__(self, base: Path, *, s3_connection: str, events_home: Path, extra_env: dict | None = None):
        self.base = base
        self.home = base / "airflow"
        self.logs = base / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None
        env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
        env.update({
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            # shared by every component: the api-server checks tokens the scheduler and workers sign
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            **SCHEDULING_LATENCY_ENV,
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # no usage reporting from cosmos' dbt tasks (a 1 s timeout each without internet), as in the Makefile
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "AIRFLOW_CONN_EVENTS_S3": s3_connection,
            "EVENTS_HOME": str(events_home),
            # the GX Data Docs site only writes HTML; off as in the benchmark, to keep each task short
            "EVENTS_DATA_DOCS": "0",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra_env or {})
        self.env = env
        (self.home / "passwords.json").write_text(json.dumps({ADMIN: self.password}))

    # ---------------------------------------------------------------- processes
    def cli(self, *args: str, timeout: float = 300) -> str:
        """Run `airflow <args>` against this home; fail with its output."""
        result = subprocess.run(["airflow", *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise AirflowError(f"airflow {' '.join(args)} exited {result.returncode}:\n"
                               f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def init_db(self) -> None:
        self.cli("db", "migrate")
        self.cli("pools", "set", "duckdb_warehouse", "1", "one writer for the DuckDB warehouse")

    def start(self, name: str, *args: str, env: dict | None = None) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child process
        try:
            self.procs[name] = subprocess.Popen(
                ["airflow", *args], env={**self.env, **(env or {})}, cwd=self.base, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AirflowError(f"airflow {name} exited with {proc.returncode}; its log "
                                   f"({self.log(name)}):\n{tail(self.log(name), 80)}")

    def stop(self) -> None:
        """Stop every component: SIGTERM to its process group, then SIGKILL to whatever is left,
        including descendants that moved to a group of their own."""
        procs = list(self.procs.items())[::-1]
        family: list[psutil.Process] = []
        for _, proc in procs:
            try:
                parent = psutil.Process(proc.pid)
                family += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for _, proc in procs:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for _, proc in procs:
            _signal_group(proc.pid, signal.SIGKILL)
        for child in family:
            with suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(family, timeout=10)
        for _, proc in procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()

    # ---------------------------------------------------------------- REST
    def request(self, method: str, path: str, body: dict | None = None, *, auth: bool = True,
                timeout: float = 30) -> dict:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AirflowError(f"{method} {path} -> HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}"
                               ) from exc
        return json.loads(raw) if raw else {}

    def token(self) -> str:
        """A JWT from SimpleAuthManager's login endpoint (POST /auth/token)."""
        if self._token is None:
            self._token = self.request("POST", "/auth/token", {"username": ADMIN, "password": self.password},
                                       auth=False)["access_token"]
        return self._token

    def health(self) -> dict:
        return self.request("GET", "/api/v2/monitor/health", auth=False, timeout=5)

    def wait_healthy(self, components: Sequence[str], timeout: float = 180) -> dict:
        """Wait until /api/v2/monitor/health reports the metadata DB and `components` healthy."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                last = self.health()
                if last.get("metadatabase", {}).get("status") == "healthy" and all(
                        (last.get(c) or {}).get("status") == "healthy" for c in components):
                    return last
            except (OSError, AirflowError, ValueError) as exc:
                last = exc
            time.sleep(1)
        raise AirflowError(f"Airflow at {self.url} not healthy after {timeout:.0f}s (last: {last!r})\n"
                           + self.logs_report())

    def wait_for_dag(self, dag_id: str = DAG_ID, timeout: float = 120) -> dict:
        """Wait until the dag-processor has parsed and serialised the DAG."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                dag = self.request("GET", f"/api/v2/dags/{dag_id}")
                self.request("GET", f"/api/v2/dags/{dag_id}/details")  # only there once serialised
                return dag
            except AirflowError as exc:
                last = exc
            time.sleep(1)
        errors = self.request("GET", "/api/v2/importErrors")
        raise AirflowError(f"DAG {dag_id} not parsed after {timeout:.0f}s ({last}); import errors: {errors}\n"
                           + self.logs_report(("dag-processor",)))

    def unpause(self, dag_id: str = DAG_ID) -> None:
        dag = self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        assert dag["is_paused"] is False, dag

    def create_backfill(self, dag_id: str, first_hour: datetime, last_hour: datetime, *,
                        max_active_runs: int = 1, reprocess_behavior: str = "completed") -> dict:
        """POST /api/v2/backfills for the runs with logical dates first_hour..last_hour (both included).

        On SQLite the api-server can answer 500 ("database is locked" in its log) when the scheduler takes the
        write lock while the backfill's runs are created. Airflow commits the runs as it goes, so such a
        request can leave a backfill with only the first runs (seen: 18 of 24 hours, on 2026-11-27). A request
        that created nothing is sent again; a part-made backfill is an error that says so."""
        body = {"dag_id": dag_id, "from_date": iso(first_hour), "to_date": iso(last_hour),
                "reprocess_behavior": reprocess_behavior, "max_active_runs": max_active_runs}
        expected = int((last_hour - first_hour) / timedelta(hours=1)) + 1
        for attempt in range(1, 4):
            try:
                return self.request("POST", "/api/v2/backfills", body, timeout=120)
            except AirflowError as exc:
                if "HTTP 500" not in str(exc):
                    raise
                existing = self.request("GET", f"/api/v2/backfills?dag_id={dag_id}").get("backfills", [])
                if existing:
                    made = [r for r in self.dag_runs(dag_id) if r["run_type"] == "backfill"]
                    raise AirflowError(
                        f"POST /api/v2/backfills failed part-way (HTTP 500): backfill {existing[-1]['id']} has "
                        f"{len(made)} of {expected} runs. On SQLite this is 'database is locked' (api-server log); "
                        f"cancel it and backfill fewer hours at a time, or use PostgreSQL.\n"
                        f"{self.logs_report(['api-server'])}") from exc
                if attempt == 3:
                    raise
                print(f"POST /api/v2/backfills: HTTP 500, nothing created (attempt {attempt}); retrying",
                      file=sys.stderr)
                time.sleep(3 * attempt)
        raise AssertionError("unreachable")

    def task_instances(self, dag_id: str = DAG_ID) -> list[dict]:
        """Every task instance of the DAG's runs (REST, page by page: the API caps a page at 100)."""
        found: list[dict] = []
        while True:
            page = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances"
                                       f"?limit=100&offset={len(found)}&order_by=start_date")
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def dag_runs(self, dag_id: str = DAG_ID) -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")["dag_runs"]

    @staticmethod
    def run_timeout(hours: int) -> float:
        """Seconds to wait for `hours` hourly runs (one at a time; EVENTS_TEST_SECONDS_PER_HOUR, default 480)."""
        return 60 + hours * float(os.environ.get("EVENTS_TEST_SECONDS_PER_HOUR", 480))

    def wait_for_runs(self, dag_id: str, count: int, timeout: float) -> list[dict]:
        """Wait until `count` runs exist and all succeeded; fail at once when one fails."""
        deadline = time.monotonic() + timeout
        runs: list[dict] = []
        while time.monotonic() < deadline:
            self.check_alive()
            runs = self.dag_runs(dag_id)
            failed = [r for r in runs if r["state"] == "failed"]
            if failed:
                raise AirflowError(f"run(s) {[r['dag_run_id'] for r in failed]} failed\n"
                                   + self.failure_report(dag_id, runs))
            if len(runs) >= count and all(r["state"] == "success" for r in runs):
                return runs
            time.sleep(2)
        raise AirflowError(f"{dag_id}: expected {count} successful runs within {timeout:.0f}s\n"
                           + self.failure_report(dag_id, runs))

    # ---------------------------------------------------------------- diagnostics
    def logs_report(self, names: Sequence[str] | None = None, lines: int = 40) -> str:
        names = names or list(self.procs)
        return "\n".join(f"--- {n} log tail ({self.log(n)}):\n{tail(self.log(n), lines)}" for n in names)

    def failure_report(self, dag_id: str, runs: list[dict]) -> str:
        parts = ["runs: " + ", ".join(f"{r['dag_run_id']}={r['state']}" for r in runs)]
        for run in runs:
            if run["state"] == "success":
                continue
            try:
                tis = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances"
                                   )["task_instances"]
            except AirflowError as exc:
                parts.append(str(exc))
                continue
            parts.append(f"{run['dag_run_id']}: " + ", ".join(f"{t['task_id']}={t['state']}" for t in tis))
            for ti in tis:
                if ti["state"] in ("failed", "up_for_retry", "upstream_failed"):
                    pattern = f"*run_id={run['dag_run_id']}*/task_id={ti['task_id']}*/*"
                    logs = sorted((self.home / "logs").rglob(pattern))
                    for log in logs[-1:]:
                        parts.append(f"--- task log {log}:\n{tail(log, 40)}")
        parts.append(self.logs_report(("scheduler",), 60))
        return "\n".join(parts)

    def keep_logs(self, name: str) -> Path:
        """Copy component and task logs to test-output/<name>/ (called when a test fails)."""
        target = TEST_OUTPUT / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.logs, target / "components", dirs_exist_ok=True)
        if (self.home / "logs").exists():
            shutil.copytree(self.home / "logs", target / "tasks", dirs_exist_ok=True)
        return target


def _signal_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # start_new_session: the group id is the child's pid


@contextmanager
def airflow_stack(base: Path, *, s3_connection: str, events_home: Path, extra_env: dict | None = None,
                  celery_workers: int = 0, name: str = "airflow") -> Iterator[Airflow]:
    """A fresh Airflow (db migrate, the warehouse pool), its components started and healthy; always stopped.

    With celery_workers > 0 the stack also starts that many `airflow celery worker --concurrency 1`
    (extra_env must then select the CeleryExecutor and its broker / result backend)."""
    af = Airflow(base, s3_connection=s3_connection, events_home=events_home, extra_env=extra_env)
    try:
        af.init_db()
        af.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(af.port), "--workers", "1")
        af.start("scheduler", "scheduler")
        af.start("dag-processor", "dag-processor")
        af.start("triggerer", "triggerer")
        queue = af.env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE")
        for number in range(1, celery_workers + 1):
            args = ["celery", "worker", "--concurrency", "1", "--celery-hostname", f"w{number}@%h",
                    "--skip-serve-logs", "--without-gossip", "--without-mingle"]
            if queue:
                args += ["--queues", queue]
            af.start(f"worker-{number}", *args)
        af.wait_healthy(("scheduler", "triggerer", "dag_processor"))
        yield af
    except BaseException:
        af.stop()  # first, so the copied logs are complete
        try:
            kept = af.keep_logs(name)
            print(f"Airflow logs kept in {kept}", file=sys.stderr)
        except OSError:
            pass
        raise
    finally:
        af.stop()  # a no-op when already stopped


# ---------------------------------------------------------------- the reference: the same hours run directly
def hours_from(first: datetime, count: int) -> list[datetime]:
    return [first + timedelta(hours=i) for i in range(count)]


def upload_sample_hours(fs, bucket: str, hours: Sequence[datetime]) -> None:
    """The demo's deterministic sample dumps (every source, duplicates, late and invalid records)."""
    from event_pipeline import sample_data

    for hour in hours:
        sample_data.upload(fs, bucket, sample_data.generate_hour(hour))


_REFERENCE = textwrap.dedent("""
    # Runs the hours it reads from stdin (one ISO datetime a line) with pipeline.run_hour, in order, and
    # writes the warehouse checksums after each one to <out>/after-<n>.json.
    import json, sys
    from datetime import datetime
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from airflow_services import warehouse_checksums
    from event_pipeline import pipeline
    from event_pipeline.settings import get_settings
    out = Path(sys.argv[2])
    for number, line in enumerate(sys.stdin, start=1):
        pipeline.run_hour(datetime.fromisoformat(line.strip()))
        sums = warehouse_checksums(get_settings().warehouse_path, read_only=False)
        tmp = out / f".after-{number}.json"
        tmp.write_text(json.dumps(sums))
        tmp.rename(out / f"after-{number}.json")
""")


class ReferenceRun:
    """The embedded default's result without Airflow: pipeline.run_hour for each hour, in a subprocess (no
    Airflow state in the test process), in its own EVENTS_HOME and bucket, in the background while Airflow
    runs. Shared by the tests of one session: they all use a prefix of the same sample hours, and the
    warehouse after hour n does not depend on what comes later, so `checksums(n)` serves every test."""

    _instance: ReferenceRun | None = None

    def __init__(self, s3_endpoint: str):
        from event_pipeline.local_s3 import LOCAL_KEY, LOCAL_SECRET, create_bucket

        self.dir = Path(tempfile.mkdtemp(prefix="events-reference-"))
        bucket = f"reference-{secrets.token_hex(6)}"
        create_bucket(s3_endpoint, bucket)
        self.connection = json.dumps({"conn_type": "aws", "login": LOCAL_KEY, "password": LOCAL_SECRET, "extra": {
            "endpoint_url": s3_endpoint, "bucket": bucket, "region_name": "us-east-1"}})
        self.bucket = bucket
        self.hours: list[datetime] = []
        env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
        env.update({"EVENTS_HOME": str(self.dir / "events"), "AIRFLOW_CONN_EVENTS_S3": self.connection,
                    "EVENTS_DATA_DOCS": "0", "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"})
        self.log = self.dir / "reference.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", _REFERENCE, str(Path(__file__).parent), str(self.dir)],
                                         env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        atexit.register(self.close)

    @classmethod
    def shared(cls, s3_endpoint: str) -> ReferenceRun:
        if cls._instance is None or cls._instance.proc.poll() is not None:
            cls._instance = cls(s3_endpoint)
        return cls._instance

    def ensure(self, hours: Sequence[datetime]) -> None:
        """Queue the hours not run yet; `hours` must start with the hours already queued."""
        hours = list(hours)
        if hours[:len(self.hours)] != self.hours[:len(hours)]:
            raise AssertionError(f"reference hours {hours} do not extend {self.hours}")
        new = hours[len(self.hours):]
        if not new:
            return
        from event_pipeline import storage
        from event_pipeline.settings import S3Config

        extra = json.loads(self.connection)["extra"]
        fs = storage.filesystem(S3Config(bucket=self.bucket, endpoint_url=extra["endpoint_url"],
                                         key=json.loads(self.connection)["login"],
                                         secret=json.loads(self.connection)["password"]))
        upload_sample_hours(fs, self.bucket, new)
        for hour in new:
            self.proc.stdin.write(f"{hour.isoformat()}\n".encode())
        self.proc.stdin.flush()
        self.hours += new

    def checksums(self, hours: Sequence[datetime], timeout: float = 900) -> dict[str, tuple]:
        """The tables after running `hours` (a prefix of the queued ones) directly."""
        self.ensure(hours)
        path = self.dir / f"after-{len(hours)}.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"the direct reference run exited {self.proc.returncode}:\n{tail(self.log, 60)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the direct reference run did not finish {len(hours)} hours in "
                                     f"{timeout:.0f}s:\n{tail(self.log, 30)}")
            time.sleep(1)
        return {k: tuple(v) for k, v in json.loads(path.read_text()).items()}

    def close(self) -> None:
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


# What the last run's events asserted before it ran (the identity map's input): nothing before a first
# run of an hour, the first run's assertions before a rerun (a retried task too). It describes the run,
# not the data.
RUN_INPUT_TABLES = ("intermediate.int_run_scope_previous_assertions",)


def warehouse_checksums(path: Path, read_only: bool = True) -> dict[str, tuple]:
    """Row count and an order-independent hash of every table in landing, intermediate, marts and segments.

    Left out: segments.definitions (loaded_at), the audit schema (wall-clock times) and RUN_INPUT_TABLES."""
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        tables = [(s, t) for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('landing', 'intermediate', 'marts', 'segments') and table_type = 'BASE TABLE' "
            "and not (table_schema = 'segments' and table_name = 'definitions') order by all").fetchall()
            if f"{s}.{t}" not in RUN_INPUT_TABLES]
        return {f"{s}.{t}": con.execute(
            f'select count(*), coalesce(sum(hash(t::varchar)), 0) from "{s}"."{t}" t').fetchall()[0]
            for s, t in tables}
    finally:
        con.close()


def assert_same_tables(actual: dict, expected: dict) -> None:
    assert expected, "the reference warehouse has no tables"
    missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    differ = sorted(t for t in set(actual) & set(expected) if actual[t] != expected[t])
    assert not (missing or extra or differ), (
        f"tables differ from running the same hours directly: missing {missing}, extra {extra}, "
        f"different content {[(t, actual[t], expected[t]) for t in differ]}")
    assert any(rows for rows, _ in expected.values()), "every reference table is empty"


def assert_hourly_intervals(runs: list[dict], hours: Sequence[datetime]) -> None:
    """One run per hour, each covering exactly [H, H+1h)."""
    intervals = sorted((parse_time(r["data_interval_start"]), parse_time(r["data_interval_end"])) for r in runs)
    assert intervals == [(h, h + timedelta(hours=1)) for h in hours], intervals
