"""Worker processes that parse dump objects for the load: `python -m event_pipeline.load_workers`, fed over pipes.

Plain subprocesses rather than multiprocessing: a spawned multiprocessing child first re-runs the caller's
main script, so a script without an `if __name__ == "__main__":` guard would load the hour again in every
worker (and wait forever for the warehouse lock its parent holds), and forking a process that has DuckDB's
and Airflow's threads copies their locks held. A worker here imports only this module.

Protocol: each message is an 8-byte big-endian length and a pickle. The loading process sends
(DumpObject, bytes, Adapter, flush_rows); the worker answers ("ok", (record batches, LoadStats)) or
("error", exception). The loading process is the only writer of the pickles a worker reads.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import BinaryIO

_LENGTH = struct.Struct(">Q")


def _write_message(stream: BinaryIO, payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_message(stream: BinaryIO) -> object | None:
    """The next message, or None when the other side closed the pipe."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        return None
    return pickle.loads(data)  # written by our own loading process (see the module docstring)


class WorkerCrashed(RuntimeError):
    """A load worker process exited while parsing an object (killed, out of memory, ...)."""


class LoadWorkers:
    """`count` worker processes; `submit` parses one object in whichever is free and returns a Future."""

    def __init__(self, count: int):
        self._idle: queue.Queue[subprocess.Popen] = queue.Queue()
        self._processes: list[subprocess.Popen] = []
        for _ in range(count):
            process = subprocess.Popen(
                [sys.executable, "-m", "event_pipeline.load_workers"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,  # stderr: the loading task's own log
            )
            self._processes.append(process)
            self._idle.put(process)
        # one thread per process: each sends a request and waits for its answer, so no pipe fills up
        self._threads = ThreadPoolExecutor(max_workers=count, thread_name_prefix="load-worker")

    def submit(self, obj, data: bytes, adapter, flush_rows: int) -> Future:
        return self._threads.submit(self._parse, obj, data, adapter, flush_rows)

    def _parse(self, obj, data: bytes, adapter, flush_rows: int):
        process = self._idle.get()
        try:
            _write_message(process.stdin, (obj, data, adapter, flush_rows))
            answer = _read_message(process.stdout)
        except OSError:  # a broken pipe: the process is gone
            answer = None
        finally:
            self._idle.put(process)  # a dead one too: whoever takes it next gets this same error
        if answer is None:
            code = process.wait()
            raise WorkerCrashed(f"load worker process {process.pid} exited with code {code} while parsing "
                                f"{obj.key} (its error, if any, is in the log above; rerun the task, or set "
                                "EVENTS_LOAD_WORKERS=1 to parse in the task's own process)")
        status, payload = answer
        if status == "error":
            raise payload
        return payload

    def close(self, kill: bool = False) -> None:
        """Stop the workers: they exit when their input closes (killed at once with kill=True)."""
        for process in self._processes:
            if kill:
                process.kill()
            with suppress(OSError):  # already broken: the process is gone
                process.stdin.close()
        for process in self._processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        self._threads.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LoadWorkers:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(kill=exc_type is not None)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The worker's loop: parse each object sent until the input closes."""
    from event_pipeline.ingest import parse_object

    while (request := _read_message(requests)) is not None:
        obj, data, adapter, flush_rows = request
        try:
            answer = ("ok", parse_object(obj, data, adapter, flush_rows))
        except Exception as exc:  # sent back to be raised in the loading process as itself
            try:
                pickle.dumps(exc)
                answer = ("error", exc)
            except Exception:  # an exception that does not pickle: its traceback as text
                answer = ("error", RuntimeError(f"parsing {obj.key} failed in a load worker:\n"
                                                f"{traceback.format_exc()}"))
        _write_message(answers, answer)


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not corrupt the answers
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
