"""Load + GX validation against the real S3 endpoint: every invalid kind is quarantined with its reason."""

from __future__ import annotations

import gzip
import os
from datetime import datetime

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_pipeline import pipeline
from event_pipeline.storage import dump_key
from event_pipeline.validate import BatchCheckError

HOUR = datetime(2026, 11, 20, 5)
T = "2026-11-20T05:30:00Z"


def jsonl(lines: list) -> bytes:
    return b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines)


def hackle(user="u1", key="purchase", value=None, props=None, ts=None):
    event = {"key": key}
    if value is not None:
        event["value"] = value
    if props is not None:
        event["properties"] = props
    body = {"event": event, "user": {"id": user} if user else {}}
    if ts is not None:
        body["timestamp"] = ts
    return {"received_at": T, "body": body}


def ss(**overrides):
    event = {"distinct_id": "u1", "event": "order_placed", "properties": {"k": "v"}, "$insert_id": None}
    event.update(overrides)
    return event


# (source, line, expected reason codes or None for valid). One record of every invalid kind, per source.
CASES = [
    ("hackle", hackle(value=100, props={"pay_method": "CARD"}), None),
    ("hackle", hackle(user=None), ["missing_required_field"]),
    ("hackle", hackle(key=None), ["missing_required_field"]),
    ("hackle", hackle(value="100"), ["value_not_numeric"]),
    ("hackle", hackle(props={"cart": {"items": 2}}), ["property_type_invalid"]),
    ("hackle", hackle(props=["not", "an", "object"]), ["property_key_invalid", "property_type_invalid"]),
    ("hackle", hackle(props={"blob": "x" * 110_000}), ["record_too_large"]),
    ("hackle", hackle(ts="not a time"), ["event_time_unparseable"]),
    ("hackle", hackle(ts="2026-11-20T09:00:00Z"), ["event_time_in_future"]),
    ("hackle", hackle(ts="2026-11-10T00:00:00Z"), ["event_too_late"]),
    ("hackle", b"{not json", ["malformed_json"]),
    ("hackle", b"\xff\xfe not utf-8", ["not_utf8"]),
    ("hackle", b"{}", ["empty_object"]),
    ("hackle", b"[1, 2]", ["not_an_object"]),
    ("suprsend", {"received_at": T, "body": ss(**{"$insert_id": "s-ok"})}, None),
    ("suprsend", {"received_at": T, "body": ss(distinct_id=None, **{"$insert_id": "s-1"})},
     ["missing_required_field"]),
    ("suprsend", {"received_at": T, "body": ss(event="$reserved", **{"$insert_id": "s-2"})},
     ["reserved_event_name"]),
    ("suprsend", {"received_at": T, "body": ss(event="ss_internal", **{"$insert_id": "s-3"})},
     ["reserved_event_name"]),
    ("suprsend", {"received_at": T, "body": ss(properties={"$x": 1, "ss_y": 2}, **{"$insert_id": "s-4"})},
     ["reserved_property_name"]),
    ("suprsend", {"received_at": T, "body": ss(**{"$insert_id": "s-5", "$idempotency_key": " " + "k" * 256 + " "})},
     ["idempotency_key_too_long"]),
    ("suprsend", {"received_at": T, "body": ss(**{"$insert_id": "s-6", "$idempotency_key": " " + "k" * 255 + " "})},
     None),  # 255 characters after trimming is allowed
    ("suprsend", {"received_at": T, "body": ss(attachments=["/local/file.pdf"], **{"$insert_id": "s-7"})},
     ["invalid_attachment"]),
    ("suprsend", {"received_at": T, "body": [ss(**{"$insert_id": "b-1"}), ss(event="$bad", **{"$insert_id": "b-2"}),
                                             ss(**{"$insert_id": "b-3"})]},
     [None, ["reserved_event_name"], None]),  # a bulk line: three records, three outcomes
    ("trakio", {"received_at": T, "call": "track", "body": {"distinct_id": "u1", "event": "login"}}, None),
    ("trakio", {"received_at": T, "call": "identify", "body": {"properties": {"name": "x"}}},
     ["missing_required_field"]),
    ("trakio", {"received_at": T, "call": "annotate", "body": {"properties": {}}}, ["missing_required_field"]),
    ("trakio", {"received_at": T, "call": "alias", "body": {"distinct_id": "u1", "alias": []}}, ["invalid_alias"]),
    ("trakio", {"received_at": T, "call": "group", "body": {"distinct_id": "u1"}}, ["unknown_message_type"]),
    ("trakio", {"received_at": T, "call": "track", "body": {"distinct_id": "u1", "event": "x", "properties": "s"}},
     ["property_key_invalid"]),
    ("orbee", {"received_at": T, "path": "/collect/7/9/event",
               "body": {"action": "view", "object": "form", "vendor": "V", "product": "P", "instance_id": "i1"}},
     None),
    ("orbee", {"received_at": T, "path": "/collect/7/9/event",
               "body": {"action": "view", "object": "form", "product": "P", "instance_id": "i1"}},
     ["missing_required_field"]),
    ("orbee", {"received_at": T, "path": "/wrong/path",
               "body": {"action": "view", "object": "form", "vendor": "V", "product": "P", "instance_id": "i2"}},
     ["missing_required_field"]),
]


# Line faults and the rules every source shares, once more for each of the other sources.
_BIG = "x" * 110_000
CASES += [
    ("suprsend", {"received_at": T, "body": ss(properties={"blob": _BIG}, **{"$insert_id": "s-8"})},
     ["record_too_large"]),
    ("suprsend", {"received_at": T, "body": ss(**{"$insert_id": "s-9", "$time": "2026-11-20T09:00:00Z"})},
     ["event_time_in_future"]),
    ("trakio", {"received_at": T, "call": "track",
                "body": {"distinct_id": "u1", "event": "x", "properties": {"blob": _BIG}}}, ["record_too_large"]),
    ("trakio", {"received_at": T, "call": "track",
                "body": {"distinct_id": "u1", "event": "x", "time": "2026-11-10T00:00:00Z"}}, ["event_too_late"]),
    ("orbee", {"received_at": T, "path": "/collect/7/9/event",
               "body": {"action": "view", "object": "form", "vendor": "V", "product": "P", "instance_id": "i3",
                        "notes": _BIG}}, ["record_too_large"]),
    ("orbee", {"received_at": T, "path": "/collect/7/9/event",
               "body": {"action": "view", "object": "form", "vendor": "V", "product": "P", "instance_id": "i4",
                        "timestamp": "not a time"}}, ["event_time_unparseable"]),
]
for _source in ("suprsend", "trakio", "orbee"):
    CASES += [(_source, b"{not json", ["malformed_json"]), (_source, b"\xff\xfe not utf-8", ["not_utf8"]),
              (_source, b"{}", ["empty_object"])]


def expected_outcomes():
    """(source, line_number, record_index) -> reasons (None = valid), from the hand-labelled CASES."""
    out, line_numbers = {}, {}
    for source, _, reasons in CASES:
        line_numbers[source] = line_numbers.get(source, 0) + 1
        for index, r in enumerate(reasons if (reasons and isinstance(reasons[0], list | type(None))) else [reasons]):
            out[(source, line_numbers[source], index)] = r
    return out


def upload_cases(fs, bucket):
    by_source: dict[str, list] = {}
    for source, line, _ in CASES:
        by_source.setdefault(source, []).append(line)
    for source, lines in by_source.items():
        fs.pipe_file(f"{bucket}/{dump_key(source, HOUR, 'part-0000.jsonl')}", jsonl(lines))


def run_load_and_validate(**validate_kwargs):
    objects = pipeline.discover(HOUR)
    loaded = pipeline.load(HOUR, objects)
    return loaded, pipeline.validate(HOUR, **validate_kwargs)


def test_every_invalid_kind_is_quarantined_with_its_reason(s3, events_home, monkeypatch):
    monkeypatch.setenv("EVENTS_MAX_INVALID_SHARE", "1")
    fs, bucket = s3
    upload_cases(fs, bucket)
    run_load_and_validate()
    expected = expected_outcomes()
    con = duckdb.connect(str(events_home / "warehouse" / "work.duckdb"), read_only=True)
    quarantined = {(s, ln, i): codes for s, ln, i, codes in con.execute(
        "select source, line_number, record_index, reason_codes from landing.quarantine").fetchall()}
    loaded = {(s, ln, i) for s, ln, i in con.execute(
        "select source, line_number, record_index from landing.events").fetchall()}
    assert quarantined == {k: v for k, v in expected.items() if v is not None}
    assert loaded == {k for k, v in expected.items() if v is None}
    counts = con.execute("select source, records_read, records_valid, records_quarantined "
                         "from landing.object_counts order by source").fetchall()
    assert counts == [("hackle", 14, 1, 13), ("orbee", 8, 1, 7), ("suprsend", 16, 4, 12), ("trakio", 11, 1, 10)]
    messages = dict(con.execute("select line_number, message from landing.quarantine "
                                "where source = 'orbee'").fetchall())
    assert messages[2] == "vendor is required"
    assert "account_id is required" in messages[3] and "tracker_id is required" in messages[3]
    raw = con.execute("select raw_text from landing.quarantine where source = 'hackle' and line_number = 11"
                      ).fetchall()
    assert raw == [("{not json",)]
    results = con.execute("select reason_code, sum(unexpected_count) from audit.validation_results "
                          "where reason_code = 'reserved_event_name' group by all").fetchall()
    assert results == [("reserved_event_name", 3)]
    assert (events_home / "gx" / "data_docs" / "hour=2026-11-20T05" / "index.html").exists()


def test_a_truncated_gzip_keeps_the_lines_before_the_fault(s3, events_home, monkeypatch):
    monkeypatch.setenv("EVENTS_MAX_INVALID_SHARE", "1")
    fs, bucket = s3
    lines = [hackle(user=f"u{i}") for i in range(50)]
    data = gzip.compress(jsonl(lines), mtime=0)
    fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, 'part-0000.jsonl.gz')}", data[: len(data) // 2])
    loaded, validated = run_load_and_validate()
    # the cut lands inside a line: that partial line is malformed JSON, the rest is unreadable
    assert loaded["line_faults"] == {"corrupt_gzip": 1, "malformed_json": 1}
    assert validated["records"] == validated["valid"] + validated["quarantined"] == loaded["lines"] + 1
    assert validated["quarantined"] == 2
    assert 0 < validated["valid"] < 50


def test_too_many_invalid_records_fail_the_batch_loudly(s3, events_home, monkeypatch):
    monkeypatch.setenv("EVENTS_MAX_INVALID_SHARE", "0.25")
    fs, bucket = s3
    upload_cases(fs, bucket)
    with pytest.raises(BatchCheckError, match=r"are invalid, above EVENTS_MAX_INVALID_SHARE=25%.*landing.quarantine"):
        run_load_and_validate()


def test_a_silent_expected_source_fails_the_batch(s3, events_home, monkeypatch):
    monkeypatch.setenv("EVENTS_EXPECTED_SOURCES", "hackle,orbee")
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, 'a.jsonl')}", jsonl([hackle()]))
    with pytest.raises(BatchCheckError, match=r"no valid events from \['orbee'\]"):
        run_load_and_validate()


def test_historical_import_lifts_the_late_limit(s3, events_home, monkeypatch):
    monkeypatch.setenv("EVENTS_MAX_INVALID_SHARE", "1")
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, 'a.jsonl')}",
                 jsonl([hackle(ts="2026-01-01T00:00:00Z"), hackle(ts="2026-11-20T05:00:00Z")]))
    assert run_load_and_validate()[1]["valid"] == 1
    assert run_load_and_validate(historical=True)[1]["valid"] == 2


def test_schema_drift_is_reported_not_fatal(s3, events_home):
    fs, bucket = s3
    line = hackle()
    line["body"]["experiment"] = {"id": 7}
    fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, 'a.jsonl')}", jsonl([line]))
    assert run_load_and_validate()[1]["valid"] == 1
    con = duckdb.connect(str(events_home / "warehouse" / "work.duckdb"), read_only=True)
    assert con.execute("select source, field, records from audit.schema_drift").fetchall() == [
        ("hackle", "experiment", 1)]


GOOD = st.sampled_from([orjson.dumps(hackle(user=f"u{i}")) for i in range(5)])
BROKEN = st.sampled_from([b"{", b"\xff", b"{}", b"[]", b"42", orjson.dumps(hackle(value="x")),
                          orjson.dumps(hackle(user=None))])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(GOOD, BROKEN), min_size=1, max_size=40))
def test_lines_read_always_equal_valid_plus_quarantined(s3, events_home, monkeypatch, lines):
    monkeypatch.setenv("EVENTS_MAX_INVALID_SHARE", "1")
    monkeypatch.setenv("EVENTS_DATA_DOCS", "0")
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, 'a.jsonl')}", b"\n".join(lines) + b"\n")
    loaded, validated = run_load_and_validate()
    assert loaded["lines"] == len(lines) == validated["records"]
    assert validated["valid"] + validated["quarantined"] == len(lines)


ORBEE_VIEW = {"received_at": T, "path": "/collect/7/9/event",
              "body": {"action": "view", "object": "form", "vendor": "V", "product": "P", "instance_id": "i1"}}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_load_that_fails_part_way_leaves_the_hour_as_it_was(s3, events_home, monkeypatch, workers):
    """The hour streams into DuckDB batch by batch in one INSERT: a failure after some batches went in
    (here an object that vanished between discover and load) lands none of them, and says which object;
    also when worker processes parse the objects."""
    monkeypatch.setattr("event_pipeline.ingest.FLUSH_ROWS", 2)  # several batches before the failure (in-process)
    monkeypatch.setattr("event_pipeline.ingest.PARALLEL_MIN_BYTES", 0)
    monkeypatch.setenv("EVENTS_LOAD_WORKERS", str(workers))
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, 'a.jsonl')}", jsonl([hackle(user=f"u{i}") for i in range(5)]))
    fs.pipe_file(f"{bucket}/{dump_key('orbee', HOUR, 'b.jsonl')}", jsonl([ORBEE_VIEW] * 3))
    objects = pipeline.discover(HOUR)
    assert pipeline.load(HOUR, objects)["records"] == 8

    def staged():
        con = duckdb.connect(str(events_home / "warehouse" / "work.duckdb"), read_only=True)
        try:
            return con.execute("select row_id, source, object_key, line_number, user_id, raw "
                               "from landing.staged_records order by row_id").fetchall()
        finally:
            con.close()

    before = staged()
    assert [row[0] for row in before] == list(range(8))  # row ids run on across the streamed batches
    fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, 'a.jsonl')}", jsonl([hackle(user=f"new{i}") for i in range(5)]))
    gone = {"source": "orbee", "key": dump_key("orbee", HOUR, "gone.jsonl"), "size": 10}
    with pytest.raises(FileNotFoundError, match=r"gone\.jsonl"):
        pipeline.load(HOUR, [*objects, gone])
    assert staged() == before


def test_an_hour_parsed_by_worker_processes_lands_exactly_as_in_one_process(s3, events_home, monkeypatch, caplog):
    """A large hour's objects are parsed by spawned worker processes (EVENTS_LOAD_WORKERS): the staged rows,
    their row ids, the line faults, the schema drift and the counts are the same as parsing in-process."""
    monkeypatch.setattr("event_pipeline.ingest.PARALLEL_MIN_BYTES", 0)  # these few objects count as large
    monkeypatch.setattr("event_pipeline.ingest.FLUSH_ROWS", 4)  # several batches per object, in a worker too
    fs, bucket = s3
    upload_cases(fs, bucket)  # every source, every line fault, a bulk line of three records
    drifting = hackle(user="drift")
    drifting["body"]["experiment"] = {"id": 7}
    fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, 'part-0001.jsonl')}",
                 jsonl([drifting] + [hackle(user=f"w{i}") for i in range(40)]))
    zipped = gzip.compress(jsonl([{**ORBEE_VIEW, "body": {**ORBEE_VIEW["body"], "instance_id": f"z{i}"}}
                                  for i in range(50)]), mtime=0)
    fs.pipe_file(f"{bucket}/{dump_key('orbee', HOUR, 'part-0001.jsonl.gz')}", zipped[: len(zipped) // 2])
    github = {"id": "gh-1", "type": "PushEvent", "actor": {"login": "octo", "id": 1},
              "created_at": T, "repo": {"name": "o/r", "id": 2}, "payload": {"size": 1}}
    fs.pipe_file(f"{bucket}/{dump_key('gharchive', HOUR, 'part-0000.jsonl')}",  # a YAML-mapped source
                 jsonl([github, {**github, "id": "gh-2"}]))
    objects = pipeline.discover(HOUR)
    assert len(objects) == 7

    def load_with(workers: int):
        monkeypatch.setenv("EVENTS_LOAD_WORKERS", str(workers))
        stats = pipeline.load(HOUR, objects)
        con = duckdb.connect(str(events_home / "warehouse" / "work.duckdb"), read_only=True)
        try:
            staged = con.execute("select row_id, source, event_id, * exclude (batch_hour) "
                                 "from landing.staged_records order by row_id").fetchall()
            drift = con.execute("select source, field, records from audit.schema_drift").fetchall()
        finally:
            con.close()
        return stats, staged, drift

    serial = load_with(1)
    caplog.clear()
    with caplog.at_level("INFO", logger="event_pipeline.ingest"):
        parallel = load_with(2)
    assert "7 objects parsed by 2 worker processes" in caplog.text
    assert parallel == serial
    stats, staged, drift = serial
    assert stats["objects"] == 7
    assert [row[0] for row in staged] == list(range(len(staged)))  # row ids run on across the objects
    assert len(staged) == stats["records"] + sum(stats["line_faults"].values())
    assert stats["line_faults"]["corrupt_gzip"] == 1
    assert drift == [("hackle", "experiment", 1)]
    by_source = {}
    for row in staged:
        by_source[row[1]] = by_source.get(row[1], 0) + 1
    lines_by_source = {source: sum(1 for s, _, _ in CASES if s == source) for source in ("hackle", "trakio")}
    assert by_source["hackle"] == lines_by_source["hackle"] + 41
    assert by_source["trakio"] == lines_by_source["trakio"]
    assert by_source["suprsend"] == sum(1 for s, _, _ in CASES if s == "suprsend") + 2  # the bulk line's 3 records
    assert [row[2] for row in staged if row[1] == "gharchive"] == ["gh-1", "gh-2"]


def test_an_error_in_a_worker_process_fails_the_load_as_itself(s3, events_home, monkeypatch):
    """An adapter that breaks inside a worker process (not a bad line: a bug) fails the load with its own
    error type, lands nothing, and leaves no worker process behind."""
    import operator

    import psutil

    from event_pipeline.adapters import Adapter
    from event_pipeline.ingest import load_hour
    from event_pipeline.storage import DumpObject
    from event_pipeline.warehouse import connect

    monkeypatch.setattr("event_pipeline.ingest.PARALLEL_MIN_BYTES", 0)
    fs, bucket = s3
    objects = []
    for name in ("a.jsonl", "b.jsonl", "c.jsonl"):
        key = dump_key("hackle", HOUR, name)
        fs.pipe_file(f"{bucket}/{key}", jsonl([hackle(user="u1")]))
        objects.append(DumpObject(source="hackle", key=key, size=fs.size(f"{bucket}/{key}")))
    # a records function with the wrong signature: a TypeError inside the worker, as a bug would raise
    broken = {"hackle": Adapter("hackle", operator.itemgetter("no_such_field"), {"*": ()})}
    with connect(events_home / "warehouse" / "work.duckdb") as con:
        with pytest.raises(TypeError, match="itemgetter expected 1 argument, got 2"):
            load_hour(con, fs, bucket, HOUR, objects, broken, workers=2)
        assert con.execute("select count(*) from landing.staged_records").fetchall() == [(0,)]
    workers = [p for p in psutil.Process().children(recursive=True) if "event_pipeline.load_workers" in p.cmdline()]
    assert workers == []


def test_a_script_without_a_main_guard_can_load_with_workers(s3, events_home, tmp_path):
    """Workers are plain subprocesses, not multiprocessing children that re-run the caller's script: an
    unguarded script (an analyst's one-off, a notebook export) loads once instead of hanging on its own
    warehouse lock."""
    import subprocess
    import sys

    fs, bucket = s3
    for name in ("a.jsonl", "b.jsonl"):
        lines = [hackle(user=f"{name}-{i}") for i in range(3)]
        fs.pipe_file(f"{bucket}/{dump_key('hackle', HOUR, name)}", jsonl(lines))
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import logging, sys\n"
        "from datetime import datetime\n"
        "from event_pipeline import ingest, pipeline\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
        "ingest.PARALLEL_MIN_BYTES = 0\n"
        "hour = datetime(2026, 11, 20, 5)\n"
        "print('records', pipeline.load(hour, pipeline.discover(hour))['records'])\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "EVENTS_LOAD_WORKERS": "2"}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 objects parsed by 2 worker processes" in done.stdout
    assert done.stdout.count("records 6") == 1
