"""`make bench` at a tiny size: the benchmark command itself runs end to end and reports what it measured."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from event_pipeline.bench.calibrate import calibrate
from event_pipeline.bench.run import _stage as stage_of
from event_pipeline.bench.stages import dbt_time_split
from event_pipeline.dbt_cosmos import MANIFEST_PATH
from event_pipeline.settings import REPO_ROOT

STAGES = ["discover", "load", "validate", "dbt_build", "segment", "publish"]


def test_the_benchmark_times_each_hour_after_dbts_parse_and_reports_every_stage(s3, events_home, tmp_path):
    """A 3,000-event hour and the incremental scenario (one day of 500-event hours) through
    `python -m event_pipeline.bench`, on the test's S3 endpoint: every stage is timed, the records the
    hour validated are the records generated, the dbt parse runs before each timed hour (whose build
    then parses nothing), and the report lands in the docs file it is given."""
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nkept text\n")
    command = [sys.executable, "-m", "event_pipeline.bench", "--only", "hour,incremental", "--events", "3000",
               "--incremental-events", "2000", "--history-days", "1", "--history-events", "500", "--repeats", "2",
               "--no-data-docs", "--skip-airflow", "--docs", str(docs)]
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    root = events_home / "bench"
    results = json.loads((root / "results.json").read_text())
    hour = results["hour"]
    assert hour["generated"]["events"] == 3000
    assert [s["stage"] for s in hour["run"]["stages"]] == STAGES
    assert set(hour["run"]["dbt_parse"]) == {"stage", "wall", "cpu", "peak_rss"}
    validated = hour["run"]["outputs"]["validate"]
    assert validated["records"] == 3000
    assert validated["valid"] + validated["quarantined"] == 3000
    assert validated["quarantined"] == sum(validated["reasons"].values()) > 0

    incremental = results["incremental"]
    assert incremental["history"]["rows"] == 24 * 500
    assert [s["stage"] for s in incremental["first"]["stages"]] == STAGES
    assert [s["stage"] for s in incremental["next"]["stages"]] == STAGES
    # each hour ran twice, the next one from the same history each time; the faster run is reported
    for which in ("first", "next"):
        runs = incremental[f"{which}_runs"]
        assert len(runs) == 2
        reported = round(sum(s["wall"] for s in incremental[which]["stages"]), 2)
        assert reported == min(runs), which
    for name in ("next_hour", "next_hour_2"):
        segments = json.loads((root / f"{name}.json").read_text())["outputs"]["segment"]
        assert segments == json.loads((root / "next_hour.json").read_text())["outputs"]["segment"]
    assert not (root / "incremental.history").exists()

    # each timed build found the parse made before it: nothing to parse, the manifest's nodes all there
    for home in ("hour", "first", "incremental"):
        timed_build = (root / home / "dbt_logs" / "dbt.log").read_text().split("\n============================== ")[-1]
        assert "no changes found, skipping parsing" in timed_build, home
    # the hour's dbt build split: DuckDB's SQL of every statement the timed build's log records, inside the run
    split = hour["run"]["outputs"]["dbt_build"]["time_split"]
    hour_build = (root / "hour" / "dbt_logs" / "dbt.log").read_text().split("Running with dbt=")[-1]
    assert split["statements"] == hour_build.count("SQL status: ") > 100
    assert 0 < split["sql"] < split["run_elapsed"] < stage_of(hour["run"], "dbt_build")["wall"]
    parsed = json.loads((root / "hour_dbt_parse.json").read_text())["outputs"]["dbt_parse"]
    assert parsed["nodes"] == len(json.loads(MANIFEST_PATH.read_text())["nodes"])

    # the per-core speed workload ran before and after the scenarios, computing the same both times
    speed = results["machine"]
    assert speed["speed_start"]["python_result"] == speed["speed_end"]["python_result"]
    assert speed["speed_start"]["duckdb_result"] == speed["speed_end"]["duckdb_result"]
    assert all(speed[when][name] > 0 for when in ("speed_start", "speed_end") for name in ("python_s", "duckdb_s"))

    report = docs.read_text()
    assert report.startswith("# Benchmarks\n\nkept text\n")
    assert "Per-core speed (`event_pipeline.bench.calibrate`" in report
    block = report.split("<!-- bench:results:begin -->")[1].split("<!-- bench:results:end -->")[0]
    assert "`dbt parse` of a fresh warehouse" in block
    assert "| 1 | 1M-event hour, end-to-end data path < 30 s | " in block and "(reduced size)" in block
    assert "(reduced: 1 day of history)" in block
    assert "Each hour ran 2 times" in block and "medians of 2 runs" in block
    assert "dbt build: " in block and "dbt build, next hour: " in block and "DuckDB's SQL" in block


def test_the_dbt_time_split_sums_the_sql_of_the_last_invocation_only(tmp_path):
    """The log holds every invocation of the home (the parse before the hour, earlier hours): only the
    statements after the last start count; a log rotated during the run (no start) gives no split."""
    log, run_results = tmp_path / "dbt.log", tmp_path / "run_results.json"
    run_results.write_text(json.dumps({"elapsed_time": 2.5}))
    log.write_text(
        "[debug] Running with dbt=1.11.16\n[debug] SQL status: OK in 9.000 seconds\n"
        "[info ] Running with dbt=1.11.16\n[debug] On model.x: select 1\n[debug] SQL status: OK in 0.250 seconds\n"
        "[debug] SQL status: OK in 1.125 seconds\n[debug] SQL status: OK in 0.000 seconds\n"
    )
    assert dbt_time_split(log, run_results) == {"run_elapsed": 2.5, "sql": 1.375, "statements": 3}
    log.write_text("[debug] SQL status: OK in 0.250 seconds\n")
    assert dbt_time_split(log, run_results) is None
    assert dbt_time_split(tmp_path / "missing.log", run_results) is None


def test_the_per_core_speed_workload_is_fixed_and_done_in_full():
    """The calibration's work does not depend on the machine or on the project's code: DuckDB's aggregates
    equal what Python computes for the same range, and the Python part gives the same digest on every run
    and another one for another number of records (so none of it is skipped)."""
    rows = 5000
    first = calibrate(repeats=1, python_records=2000, duckdb_rows=rows)
    again = calibrate(repeats=2, python_records=2000, duckdb_rows=rows)
    md5s = [hashlib.md5(str(i).encode()).hexdigest() for i in range(rows)]
    ranked = sum(position * ord(h[1]) % 1000 for position, h in enumerate(sorted(md5s), start=1))
    expected = [rows, 32 * rows, sum(ord(h[0]) for h in md5s), sum(len(str(i * 7)) + 1 for i in range(rows)), ranked]
    assert first["duckdb_result"] == ",".join(map(str, expected))
    assert first["python_result"] == again["python_result"] != calibrate(1, 2001, 10)["python_result"]
    assert first["python_s"] > 0 and first["duckdb_s"] > 0
