"""Load one hour of raw dumps from object storage into the landing tables, line faults included."""

from __future__ import annotations

import gc
import logging
import operator
import zlib
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from event_pipeline.adapters import CHECK_COLUMNS, Adapter, AdapterError
from event_pipeline.adapters.base import dumps
from event_pipeline.contract import CANONICAL_COLUMNS
from event_pipeline.storage import DumpObject
from event_pipeline.warehouse import STAGED_EXTRA_COLUMNS

log = logging.getLogger(__name__)

FLUSH_ROWS = 100_000
# An hour whose dumps hold less than this (bytes as stored) is parsed in this process: starting the worker
# processes (each imports pyarrow, duckdb, the adapters) costs more than parsing a small hour.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "DOUBLE": pa.float64(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
    "VARCHAR[]": pa.list_(pa.string()),
}
STAGED_COLUMNS = [(n, t) for n, t, _ in CANONICAL_COLUMNS] + list(CHECK_COLUMNS) + list(STAGED_EXTRA_COLUMNS)
STAGED_SCHEMA = pa.schema([(n, _ARROW_TYPES[t]) for n, t in STAGED_COLUMNS])


class UnknownSourceError(RuntimeError):
    """Dumps arrived for a source that has no adapter: refusing to ignore them."""


@dataclass
class LoadStats:
    objects: int = 0
    lines: int = 0
    blank_lines: int = 0
    records: int = 0
    line_faults: Counter = field(default_factory=Counter)
    drift: Counter = field(default_factory=Counter)  # (source, field) -> records

    def merge(self, other: LoadStats) -> None:
        """Add another object's counts (a worker process's) to these."""
        self.objects += other.objects
        self.lines += other.lines
        self.blank_lines += other.blank_lines
        self.records += other.records
        self.line_faults.update(other.line_faults)
        self.drift.update(other.drift)

    def as_dict(self) -> dict:
        return {
            "objects": self.objects,
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "records": self.records,
            "line_faults": dict(self.line_faults),
        }


def iter_lines(data: bytes, gzipped: bool) -> Iterator[tuple[bytes | None, str | None]]:
    """Yield (line, None) for each line, then (None, message) if a gzip stream breaks part-way.

    Reads concatenated gzip members; a truncated or corrupt member keeps every line before the fault."""
    if not gzipped:
        lines = data.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()  # the newline that ends the last line does not start another
        yield from ((line, None) for line in lines)
        return
    pending = b""
    remaining = data
    while remaining:
        decomp = zlib.decompressobj(wbits=31)
        try:
            out = decomp.decompress(remaining)
        except zlib.error as exc:
            out, error = b"", f"corrupt gzip data: {exc}"
        else:
            error = None if decomp.eof else "gzip stream ends before its last member is complete (truncated)"
        chunk = pending + out
        lines = chunk.split(b"\n")
        pending = lines.pop()
        yield from ((line, None) for line in lines)
        if error:
            if pending:
                yield pending, None  # the last decoded (possibly partial) line is still read as a line
            yield None, error
            return
        remaining = decomp.unused_data
    if pending:
        yield pending, None


# Staged columns an adapter record or a line fault fills; row_id and batch_hour are added at flush.
_ROW_COLUMNS = tuple(n for n, _ in STAGED_COLUMNS if n not in ("row_id", "batch_hour"))
_RECORD_COLUMNS = tuple(n for n in _ROW_COLUMNS if n not in ("line_fault", "raw_text"))
_record_values = operator.itemgetter(*_RECORD_COLUMNS)
_ROW_SCHEMA = pa.schema([STAGED_SCHEMA.field(n) for n in _ROW_COLUMNS])
_FAULT_TEMPLATE = dict.fromkeys(_ROW_COLUMNS)
_ROW_STRUCT = pa.struct(list(_ROW_SCHEMA))
_CHUNK_SCHEMA = _ROW_SCHEMA.append(pa.field("row_id", pa.int64()))


class Batch:
    """Row tuples for staged records, taken out as Arrow record batches (built column-wise, not from dicts)."""

    def __init__(self, flush_rows: int | None = None):
        self.rows: list[tuple] = []
        self.next_row_id = 0
        self.flush_rows = flush_rows or FLUSH_ROWS

    def add_record(self, record: dict) -> None:
        """A canonical record from an adapter (every canonical and check field present)."""
        try:
            values = (*_record_values(record), None, None)
        except KeyError:  # an adapter that leaves a field out: the missing ones are NULL, as before
            values = tuple(record.get(n) for n in _ROW_COLUMNS)
        self.rows.append(values)

    def add(self, row: dict) -> None:
        """Any row as a dict (line faults): absent columns are NULL."""
        row = {**_FAULT_TEMPLATE, **row}
        self.rows.append(tuple(row[n] for n in _ROW_COLUMNS))

    @property
    def full(self) -> bool:
        return len(self.rows) >= self.flush_rows

    def take(self) -> pa.RecordBatch:
        """The rows so far as one record batch with their row ids; the batch starts empty again."""
        # Arrow turns the row tuples into columns itself (a tuple of the wrong length is an error there): 0.10 s
        # per 100k rows of CPU, against 0.135 s for transposing them in Python (zip) and one array per column
        rows = pa.RecordBatch.from_struct_array(pa.array(self.rows, type=_ROW_STRUCT))
        first = self.next_row_id
        self.next_row_id += len(self.rows)
        self.rows = []
        return rows.append_column(_CHUNK_SCHEMA.field("row_id"),
                                  pa.array(np.arange(first, self.next_row_id, dtype=np.int64)))


def _fault(source: str, key: str, line_number: int, code: str, raw_text: str) -> dict:
    return {"source": source, "object_key": key, "line_number": line_number, "record_index": 0,
            "line_fault": code, "raw_text": raw_text}


def _record_row(record: dict, key: str, line_number: int, index: int) -> dict:
    record["object_key"] = key
    record["line_number"] = line_number
    record["record_index"] = index
    raw_json = record.pop("raw_json", None)  # adapters.base.finish: the content's serialisation, made once
    record["raw"] = raw_json if raw_json is not None else dumps(record["raw"])
    if record["properties"] is not None:
        record["properties"] = dumps(record["properties"])
    return record


def _read_object(obj: DumpObject, data: bytes, adapter: Adapter, batch: Batch,
                 stats: LoadStats) -> Iterator[pa.RecordBatch]:
    """Add every line of one object to `batch` (as records or line faults), yielding the batch when full."""
    line_number = 0
    for line, error in iter_lines(data, obj.key.endswith(".gz")):
        if batch.full:
            yield batch.take()
        if error is not None:
            stats.line_faults["corrupt_gzip"] += 1
            batch.add(_fault(obj.source, obj.key, line_number + 1, "corrupt_gzip",
                             f"<unreadable after line {line_number}: {error}>"))
            continue
        line_number += 1
        if not line or line.isspace():  # what strip() would empty, without copying every line
            stats.blank_lines += 1
            continue
        stats.lines += 1
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            stats.line_faults["not_utf8"] += 1
            batch.add(_fault(obj.source, obj.key, line_number, "not_utf8", line.decode("utf-8", "replace")))
            continue
        try:
            envelope = orjson.loads(text)
        except orjson.JSONDecodeError:
            stats.line_faults["malformed_json"] += 1
            batch.add(_fault(obj.source, obj.key, line_number, "malformed_json", text))
            continue
        if envelope in ({}, []):
            stats.line_faults["empty_object"] += 1
            batch.add(_fault(obj.source, obj.key, line_number, "empty_object", text))
            continue
        if not isinstance(envelope, dict):
            stats.line_faults["not_an_object"] += 1
            batch.add(_fault(obj.source, obj.key, line_number, "not_an_object", text))
            continue
        if adapter.known_fields is not None:
            body = envelope.get("body")
            for item in body if isinstance(body, list) else [body]:
                # issuperset walks the keys without building a set: the common case, no new field, is cheap
                if isinstance(item, dict) and not adapter.known_fields.issuperset(item):
                    for name in item.keys() - adapter.known_fields:
                        stats.drift[(obj.source, name)] += 1
        try:
            records = adapter.records(envelope, len(line))
        except AdapterError as exc:
            stats.line_faults[exc.code] += 1
            batch.add(_fault(obj.source, obj.key, line_number, exc.code, text))
            continue
        for index, record in enumerate(records):
            if isinstance(record, AdapterError):
                row = _fault(obj.source, obj.key, line_number, record.code, text)
                row["record_index"] = index
                batch.add(row)
                continue
            stats.records += 1
            batch.add_record(_record_row(record, obj.key, line_number, index))


def parse_object(obj: DumpObject, data: bytes, adapter: Adapter,
                 flush_rows: int) -> tuple[list[pa.RecordBatch], LoadStats]:
    """One object's rows as record batches (row ids from 0 across them) and its counts: the work of a load
    worker process (given the loading process's batch size: a worker process has only the module default)."""
    batch = Batch(flush_rows)
    stats = LoadStats(objects=1)
    # Parsing makes no reference cycles, but its hundreds of thousands of live row tuples make every cyclic
    # GC pass slow: off while parsing, 10-15% less time (measured on the 1M-event benchmark hour's objects).
    gc.disable()
    try:
        batches = list(_read_object(obj, data, adapter, batch, stats))
        if batch.rows:
            batches.append(batch.take())
    finally:
        gc.enable()
    return batches, stats


def _serial_batches(objects: list[DumpObject], fetch, adapters: dict[str, Adapter],
                    stats: LoadStats) -> Iterator[pa.RecordBatch]:
    """The hour's record batches parsed in this process, the next object fetched while this one is parsed."""
    batch = Batch()
    # the next object is fetched while this one is parsed: the network wait overlaps the CPU work
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as prefetch:
        pending = prefetch.submit(fetch, objects[0]) if objects else None
        for number, obj in enumerate(objects, start=1):
            data = pending.result()
            pending = prefetch.submit(fetch, objects[number]) if number < len(objects) else None
            yield from _read_object(obj, data, adapters[obj.source], batch, stats)
            del data
            stats.objects += 1
            log.info("read %s/%s %s (%s lines so far)", number, len(objects), obj.key, stats.lines)
    if batch.rows:
        yield batch.take()


def _parallel_batches(objects: list[DumpObject], fetch, adapters: dict[str, Adapter], stats: LoadStats,
                      workers: int) -> Iterator[pa.RecordBatch]:
    """The same batches, in the same order and with the same row ids, parsed by `workers` processes.

    Objects are parsed whole, in order; at most workers + 1 are in flight, so memory holds a few objects'
    rows, not the hour's. The workers are plain subprocesses (see load_workers.py for why)."""
    from event_pipeline.load_workers import LoadWorkers

    with LoadWorkers(workers) as pool:
        in_flight: deque[tuple[DumpObject, Future]] = deque()
        upcoming = iter(objects)

        def submit_next() -> None:
            obj = next(upcoming, None)
            if obj is not None:
                in_flight.append((obj, pool.submit(obj, fetch(obj), adapters[obj.source], FLUSH_ROWS)))

        for _ in range(workers + 1):
            submit_next()
        next_row_id = 0
        number = 0
        while in_flight:
            obj, parsed = in_flight.popleft()
            submit_next()  # fetch the next object while the workers parse
            batches, object_stats = parsed.result()
            stats.merge(object_stats)
            number += 1
            log.info("read %s/%s %s (%s lines so far)", number, len(objects), obj.key, stats.lines)
            first_row_id = pa.scalar(next_row_id, pa.int64())  # the object's row ids run from 0 in its worker
            for batch in batches:
                row_ids = pc.add(batch.column("row_id"), first_row_id)
                next_row_id += batch.num_rows
                yield batch.set_column(batch.schema.get_field_index("row_id"), "row_id", row_ids)


def load_workers(objects: list[DumpObject], workers: int) -> int:
    """How many processes parse the hour: 1 (this one) for a small hour or a single object."""
    if workers <= 1 or len(objects) < 2 or sum(o.size for o in objects) < PARALLEL_MIN_BYTES:
        return 1
    return min(workers, len(objects))


def load_hour(con: duckdb.DuckDBPyConnection, fs, bucket: str, hour: datetime, objects: list[DumpObject],
              adapters: dict[str, Adapter], workers: int = 1) -> LoadStats:
    """Replace landing.staged_records of `hour` with every record (and line fault) of its dumps."""
    unknown = sorted({o.source for o in objects} - set(adapters))
    if unknown:
        raise UnknownSourceError(
            f"dumps for hour {hour:%Y-%m-%dT%H} arrived under raw/{unknown[0]}/ but no adapter or mapping "
            f"handles source(s) {unknown}: add mappings/<source>.yml (see docs/sources.md) or move the objects"
        )
    stats = LoadStats()
    failure: list[BaseException] = []

    workers = load_workers(objects, workers)
    if workers > 1:
        log.info("hour %s: %s objects parsed by %s worker processes", f"{hour:%Y-%m-%dT%H}", len(objects), workers)

    def fetch(obj: DumpObject) -> bytes:
        return fs.cat_file(f"{bucket}/{obj.key}")

    def record_batches() -> Iterator[pa.RecordBatch]:
        try:
            if workers > 1:
                yield from _parallel_batches(objects, fetch, adapters, stats, workers)
            else:
                yield from _serial_batches(objects, fetch, adapters, stats)
        except BaseException as exc:  # DuckDB reports it as its own error: keep the original to raise
            failure.append(exc)
            raise

    # One INSERT streams the whole hour: DuckDB writes its row groups to the file as they fill, so memory
    # stays flat with the hour's size (many INSERTs in one transaction kept every row in memory until
    # COMMIT: 8.4 GB for a 10M-event hour), and the hour still lands all at once or not at all.
    con.register("staged_stream", pa.RecordBatchReader.from_batches(_CHUNK_SCHEMA, record_batches()))
    con.execute("begin transaction")
    try:
        con.execute("delete from landing.staged_records where batch_hour = ?", [hour])
        con.execute("delete from audit.schema_drift where batch_hour = ?", [hour])
        con.execute("insert into landing.staged_records by name select *, ?::timestamp as batch_hour "
                    "from staged_stream", [hour])
        if stats.drift:
            con.executemany(
                "insert into audit.schema_drift values (?, ?, ?, ?)",
                [[hour, source, name, count] for (source, name), count in sorted(stats.drift.items())],
            )
            for (source, name), count in sorted(stats.drift.items()):
                log.warning("schema drift: %s sends new top-level field %r (%s records); kept in raw", source,
                            name, count)
        con.execute("commit")
    except BaseException as exc:
        con.execute("rollback")
        if failure and isinstance(exc, duckdb.Error):
            raise failure[0] from None  # the reader's own error (a vanished object, ...), not DuckDB's wrapper
        raise
    finally:
        con.unregister("staged_stream")
    return stats
