"""Run the pipeline's stages for one hour in this process and measure each: wall, CPU and peak resident memory.

    python -m event_pipeline.bench.stages --hour 2026-11-20T05 --out result.json [--stages discover,load,...]

The benchmark starts this in a fresh subprocess per scenario, so imports, caches and memory of one scenario
never flatter the next. A sampler thread reads the RSS of this process and its children (the load's worker
processes) every 20 ms; a stage's peak is the highest sample while it ran (ru_maxrss, the kernel's exact
high-water mark for this process alone, is reported too).
Stage output (dbt's console, GX, logs) goes to --log so the benchmark's table stays readable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import sys
import threading
import time
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import psutil

STAGES = ("discover", "load", "validate", "dbt_build", "segment", "publish")
SAMPLE_SECONDS = 0.02
CHILDREN_SECONDS = 0.5


class PeakSampler(threading.Thread):
    """Samples the RSS of this process and its children; `peak()` is the highest value since the last `reset()`."""

    def __init__(self):
        super().__init__(daemon=True, name="rss-sampler")
        self.process = psutil.Process()
        self._peak = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._children: list[psutil.Process] = []
        self._children_due = 0.0

    def run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(SAMPLE_SECONDS)

    def _rss(self) -> int:
        """This process's RSS plus its children's (the load's worker processes)."""
        now = time.monotonic()
        if now >= self._children_due:
            # Listing children reads /proc/<pid>/stat of every process on the machine: every 20 ms that took
            # about a tenth of the benchmark's samples (py-spy) on a busy machine. The load's workers live for
            # the whole load, so finding them every half second misses none of their memory.
            with suppress(psutil.Error):
                self._children = self.process.children(recursive=True)
            self._children_due = now + CHILDREN_SECONDS
        total = 0
        for process in [self.process, *self._children]:
            with suppress(psutil.Error):  # a child that just exited
                total += process.memory_info().rss
        return total

    def _sample(self) -> None:
        rss = self._rss()
        with self._lock:
            self._peak = max(self._peak, rss)

    def reset(self) -> None:
        with self._lock:
            self._peak = self._rss()

    def peak(self) -> int:
        self._sample()
        with self._lock:
            return self._peak

    def stop(self) -> None:
        self._stop.set()


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have exited (the load's worker processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _dbt_slowest(target: Path, top: int = 8) -> list[tuple[str, float]]:
    """The dbt nodes that took longest (run_results.json of the build just run)."""
    try:
        results = json.loads((target / "run_results.json").read_text())["results"]
    except (OSError, KeyError, ValueError):
        return []
    nodes = sorted(((r["unique_id"].split(".", 1)[0] + ":" + r["unique_id"].split(".")[2],
                     round(r["execution_time"], 2)) for r in results), key=lambda x: -x[1])
    return nodes[:top]


# dbt's debug log: one line per invocation start, one per SQL statement with DuckDB's time for it
_DBT_INVOCATION_START = "Running with dbt="
_DBT_SQL_SECONDS = re.compile(r"SQL status: .* in ([0-9.]+) seconds")


def dbt_time_split(log_path: Path, run_results_path: Path) -> dict | None:
    """Where the last dbt invocation's time went: DuckDB's time in its SQL statements (the debug log's
    `SQL status ... in X seconds`) against the run's elapsed time (run_results.json); the rest of the run is
    dbt's own Python (compiling, materialization macros, logging). None when the log does not hold the
    invocation's start (rotated during the run) or either file is missing."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
        elapsed = json.loads(run_results_path.read_text())["elapsed_time"]
    except (OSError, KeyError, ValueError):
        return None
    starts = [number for number, line in enumerate(lines) if _DBT_INVOCATION_START in line]
    if not starts:
        return None
    seconds = [float(m.group(1)) for line in lines[starts[-1]:] if (m := _DBT_SQL_SECONDS.search(line))]
    return {"run_elapsed": round(elapsed, 3), "sql": round(sum(seconds), 3), "statements": len(seconds)}


def run_stages(hour: datetime, stages: tuple[str, ...] = STAGES, settings=None) -> dict:
    """Every requested stage in order, in-process (the same functions the DAG's tasks call)."""
    from event_pipeline import pipeline
    from event_pipeline.settings import get_settings

    settings = settings or get_settings()
    sampler = PeakSampler()
    sampler.start()
    objects: list[dict] | None = None
    results = []
    outputs: dict = {}

    def call(name: str):
        nonlocal objects
        if name == "discover":
            objects = pipeline.discover(hour)
            return {"objects": len(objects), "bytes": sum(o["size"] for o in objects)}
        if name == "load":
            return pipeline.load(hour, objects if objects is not None else pipeline.discover(hour), settings)
        if name == "validate":
            return pipeline.validate(hour, settings)
        if name == "validate_data_docs":  # the same validation again, with GX Data Docs built
            return pipeline.validate(hour, dataclasses.replace(settings, data_docs=True))
        if name == "dbt_parse":  # run.py runs it in a process of its own, before the hour's stages
            return pipeline.dbt_parse(settings)
        if name == "dbt_build":
            return {**pipeline.dbt_build(hour, settings), "slowest": _dbt_slowest(settings.home / "dbt_target"),
                    "time_split": dbt_time_split(settings.home / "dbt_logs" / "dbt.log",
                                                 settings.home / "dbt_target" / "run_results.json")}
        if name == "segment":
            return pipeline.segment(hour, settings)
        if name == "publish":
            return pipeline.publish(hour, settings)
        raise ValueError(f"unknown stage {name!r}")

    for name in stages:
        sampler.reset()
        cpu, started = _cpu_seconds(), time.monotonic()
        outputs[name] = call(name)
        wall = time.monotonic() - started
        results.append({"stage": name, "wall": round(wall, 3), "cpu": round(_cpu_seconds() - cpu, 3),
                        "peak_rss": sampler.peak()})
    sampler.stop()
    return {
        "hour": hour.isoformat(),
        "stages": results,
        "outputs": outputs,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        # the whole run's high-water mark: the kernel's for this process, or the sampled sum of this process
        # and the load's worker processes when that is higher
        "peak_rss": max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                         *(r["peak_rss"] for r in results)]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m event_pipeline.bench.stages", description=__doc__)
    parser.add_argument("--hour", required=True, help="hour start, e.g. 2026-11-20T05")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--profile", choices=("pyinstrument",), help="profile the stages; report next to --out")
    args = parser.parse_args(argv)
    hour = datetime.fromisoformat(args.hour)
    stages = tuple(s for s in args.stages.split(",") if s)
    if args.log:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        log = open(args.log, "ab")  # noqa: SIM115 - lives as long as the process
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01)
        profiler.start()
    result = run_stages(hour, stages)
    if profiler is not None:
        profiler.stop()
        args.out.with_suffix(".profile.txt").write_text(profiler.output_text(unicode=False, color=False))
        args.out.with_suffix(".profile.html").write_text(profiler.output_html())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
