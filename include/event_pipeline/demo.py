"""`make demo`: sample dumps for the last 6 complete hours, the hourly DAG run through Airflow, a summary."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from event_pipeline import sample_data, storage
from event_pipeline.query import print_table
from event_pipeline.settings import REPO_ROOT, get_settings, s3_config

HOURS = 6


def last_complete_hours(now: datetime, count: int = HOURS) -> list[datetime]:
    top = now.astimezone(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=count - i) for i in range(count)]


def load_dag(dag_id: str = "events_hourly"):
    path = REPO_ROOT / "dags" / f"{dag_id}.py"
    spec = importlib.util.spec_from_file_location(f"dag_{dag_id}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


@contextmanager
def output_to(log_path: Path):
    """Send everything written to stdout/stderr (Airflow's task logs included) to a file."""
    sys.stdout.flush()
    sys.stderr.flush()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_hour_in_airflow(dag, hour: datetime):
    """Airflow's own runner (dag.test). A manual run processes the last complete hour before its logical
    date, so the run for hour H gets logical date H+1h; its data interval is exactly [H, H+1h)."""
    run = dag.test(logical_date=(hour + timedelta(hours=1)).replace(tzinfo=UTC))
    start = run.data_interval_start.astimezone(UTC).replace(tzinfo=None)
    if not str(run.state).endswith("success") or start != hour:
        raise RuntimeError(f"the run for hour {hour:%Y-%m-%dT%H} ended {run.state} (interval start {start})")
    return run


def summary(hours: list[datetime]) -> None:
    path = get_settings().analytics_path
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        """
        select strftime(s.batch_hour, '%Y-%m-%d %H:00') as hour,
               sum(s.records_read) as events_read,
               sum(s.records_valid) as valid,
               sum(s.records_quarantined) as quarantined,
               sum(s.duplicates_removed) as duplicates_removed,
               sum(s.events_loaded) as loaded,
               (select count(distinct e.user_key) from marts.events e
                where e.event_time >= s.batch_hour and e.event_time < s.batch_hour + interval 1 hour) as users
        from marts.hourly_load_stats s
        where s.batch_hour between ? and ?
        group by s.batch_hour order by s.batch_hour
        """,
        [hours[0], hours[-1]],
    ).fetchall()
    print("\nPer hour (events read = loaded + quarantined + duplicates removed):\n")
    print_table(rows, ["hour", "events read", "valid", "quarantined", "duplicates removed", "loaded", "users"])
    # PIVOT cannot bind parameters; the bounds are our own datetimes, formatted here
    first, last = f"{hours[0]:%Y-%m-%d %H:%M:%S}", f"{hours[-1] + timedelta(hours=1):%Y-%m-%d %H:%M:%S}"
    sizes = con.execute(
        f"""
        pivot (select strftime(as_of - interval 1 hour, '%H:00') as hour, segment_key, members
               from segments.segment_sizes
               where as_of > '{first}' and as_of <= '{last}')
        on hour using sum(members) group by segment_key order by segment_key
        """
    )
    print("\nSegment sizes at the end of each hour:\n")
    print_table(sizes.fetchall(), [d[0] for d in sizes.description])
    users = con.execute("select count(*) from marts.users").fetchall()[0][0]
    print(f"\n{users} users in marts.users. Query the warehouse (read-only, safe while the pipeline runs):\n")
    print('  .venv/bin/python -m event_pipeline.query "select * from marts.hourly_load_stats order by all"')
    print(f"  .venv/bin/python -m event_pipeline.segments list --warehouse {path}")
    print(f"  or any DuckDB client: duckdb -readonly {path}\n")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    hours = last_complete_hours(datetime.now(UTC))
    config = s3_config()
    fs = storage.filesystem(config)
    print(f">> writing sample dumps for {hours[0]:%Y-%m-%d %H:00} .. {hours[-1]:%H:00} UTC to "
          f"s3://{config.bucket}/raw/ at {config.endpoint_url}")
    for hour in hours:
        sample_data.upload(fs, config.bucket, sample_data.generate_hour(hour))
    log_path = get_settings().home / "demo.log"
    log_path.unlink(missing_ok=True)
    print(f">> running the events_hourly DAG through Airflow (dag.test), task logs in {log_path}")
    with output_to(log_path):
        dag = load_dag()
    for number, hour in enumerate(hours, start=1):
        started = time.monotonic()
        print(f">> [{number}/{len(hours)}] hour {hour:%Y-%m-%d %H:00} UTC ... ", end="", flush=True)
        try:
            with output_to(log_path):
                run_hour_in_airflow(dag, hour)
        except Exception as exc:
            print("FAILED")
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            print("\n".join(tail))
            raise SystemExit(f"{exc}; the full task logs are in {log_path}") from exc
        print(f"done in {time.monotonic() - started:.0f}s", flush=True)
    summary(hours)


if __name__ == "__main__":
    sys.exit(main())
