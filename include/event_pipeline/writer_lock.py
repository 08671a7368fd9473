"""A cross-process lock around every write to the DuckDB warehouse file, so writers wait instead of failing.

DuckDB allows one writing process per file; a second one fails at once with "Could not set lock on file".
The Airflow pool `duckdb_warehouse` (1 slot) keeps the writing *tasks* apart; this lock also covers what the
pool cannot see: a cosmos model task that runs dbt itself on retry (those tasks are outside the pool, see
dbt_cosmos.py), the benchmark, a data engineer's script. It is an `flock` on `<warehouse>.lock`, released by
the kernel when its process exits (no stale locks after a crash), and re-entrant within one process
(dag.test and the demo run every task in one process, nested writers there must not wait for themselves).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

# Longer than any one writer should hold it, shorter than a task's execution_timeout (30 min).
DEFAULT_TIMEOUT_S = float(os.environ.get("EVENTS_WRITER_LOCK_TIMEOUT_S", 25 * 60))
_PROGRESS_EVERY_S = 30.0


class WarehouseLockTimeout(TimeoutError):
    """Another process held the warehouse for longer than the timeout."""


# What this process holds: lock file -> [file descriptor, depth]. Threads of one process share it (DuckDB
# itself lets connections of one process share the file).
_held: dict[Path, list[int]] = {}
_guard = threading.Lock()


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def warehouse_writer_lock(warehouse: Path, purpose: str = "", timeout_s: float | None = None) -> Iterator[None]:
    """Hold the warehouse's writer lock for the block, waiting (with progress logs) while another process has it."""
    timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    path = lock_path(Path(warehouse))
    with _guard:
        entry = _held.get(path)
        if entry:
            entry[1] += 1
    if entry:
        try:
            yield
        finally:
            with _guard:
                entry[1] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        _acquire(fd, path, warehouse, timeout_s)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {purpose}".encode())
        with _guard:
            _held[path] = [fd, 1]
        try:
            yield
        finally:
            with _guard:
                del _held[path]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, warehouse: Path, timeout_s: float) -> None:
    started = time.monotonic()
    next_report = started + _PROGRESS_EVERY_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = time.monotonic()
            if now - started > timeout_s:
                raise WarehouseLockTimeout(
                    f"waited {timeout_s:.0f} s for the warehouse {warehouse} held by {_holder(path)}; "
                    "if that process is still working, let it finish and retry this task; if it hangs, "
                    "stop it (the lock goes with its process)") from None
            if now >= next_report:
                log.info("waiting for the warehouse writer lock (%.0f s so far), held by %s",
                         now - started, _holder(path))
                next_report = now + _PROGRESS_EVERY_S
            time.sleep(0.2)
