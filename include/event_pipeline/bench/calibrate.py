"""A fixed workload that times this machine's per-core speed, so a slower run can be told from slower code.

The same code has measured the 1M-event hour at 31.0 s and at 41.8 s on one machine type within two hours
(docs/benchmarks-log.md): the host's speed moves. `make bench` runs this before and after its scenarios and
prints both figures next to the results. The workload uses none of the project's code, so a change to the
pipeline never moves it:

- python: what the load's per-record work is made of (orjson, sorted-key serialisation, sha256, ISO
  timestamps, dict and tuple building, the rows kept in memory) over a fixed set of synthetic records;
- duckdb: hashing, text functions, a sort and aggregations over a fixed range, DuckDB limited to one thread.

Each is run `repeats` times and the fastest run is kept (other processes only ever make a run slower).
Both return what they computed (a digest of the records' hashes; the aggregates), the same on every machine,
which keeps the work from being skipped and lets a test pin the workload down.

    python -m event_pipeline.bench.calibrate
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta

import duckdb
import orjson

PYTHON_RECORDS = 100_000
DUCKDB_ROWS = 3_000_000
_EPOCH = datetime(2026, 1, 1)


def _python_workload(records: int) -> str:
    digest = hashlib.sha256()
    kept = []  # every record stays alive, as the loader's rows do until their batch is taken
    for number in range(records):
        received = (_EPOCH + timedelta(milliseconds=number * 37)).isoformat(timespec="milliseconds") + "Z"
        line = orjson.dumps({
            "received_at": received,
            "body": {"event": {"key": f"event_{number % 17}", "value": number % 1000,
                               "properties": {"plan": "pro" if number % 3 else "free", "step": number % 5}},
                     "user": {"id": f"user-{number % 50_000}"}, "timestamp": 1_767_225_600_000 + number},
        })
        envelope = orjson.loads(line)
        body = envelope["body"]
        record = {"event_name": body["event"]["key"].strip(), "user_id": str(body["user"]["id"]).strip(),
                  "event_time": datetime.fromisoformat(envelope["received_at"][:-1]),
                  "properties": orjson.dumps(body["event"]["properties"], option=orjson.OPT_SORT_KEYS)}
        serialized = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        record["payload_hash"] = hashlib.sha256(b"calibration\x1f" + serialized).hexdigest()[:32]
        kept.append(tuple(record.values()))
    for row in kept:
        digest.update(row[-1].encode())
    return digest.hexdigest()[:16]


def _duckdb_workload(rows: int) -> str:
    con = duckdb.connect()
    try:
        con.execute("set threads = 1")
        # the window sorts every hash: memory-bound work, as the pipeline's million-row tables are
        row = con.execute(
            "select count(distinct i % 1000003), sum(length(h)), sum(ascii(h)), "
            "sum(length(cast(i * 7 as varchar) || 'x')), sum(position * ascii(substr(h, 2, 1)) % 1000) "
            "from (select i, h, row_number() over (order by h) as position "
            "      from (select i, md5(cast(i as varchar)) as h from range(?) as t(i)))",
            [rows],
        ).fetchall()[0]
    finally:
        con.close()
    return ",".join(str(int(value)) for value in row)


def _fastest(workload, size: int, repeats: int) -> tuple[float, str]:
    best, result = float("inf"), ""
    for _ in range(repeats):
        started = time.process_time()
        result = workload(size)
        best = min(best, time.process_time() - started)
    return best, result


def calibrate(repeats: int = 3, python_records: int = PYTHON_RECORDS, duckdb_rows: int = DUCKDB_ROWS) -> dict:
    """CPU seconds of each fixed workload (the fastest of `repeats`; lower is a faster core) and its result."""
    python_seconds, python_result = _fastest(_python_workload, python_records, repeats)
    duckdb_seconds, duckdb_result = _fastest(_duckdb_workload, duckdb_rows, repeats)
    return {"python_s": round(python_seconds, 3), "duckdb_s": round(duckdb_seconds, 3),
            "python_result": python_result, "duckdb_result": duckdb_result}


if __name__ == "__main__":
    print(json.dumps(calibrate(), indent=1))
