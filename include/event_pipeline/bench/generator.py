"""Benchmark data: N events an hour in the real dump formats, vectorised (numpy + DuckDB SQL, no per-event loop).

The mix per hour (fractions of the N records delivered):

* all four sources: Hackle 35%, SuprSend 30% (a fifth of it in bulk requests of 5), Trak.io 20% (track,
  page_view, identify, alias, a few annotate), Orbee 15%;
* ~50k users with a long-tailed activity distribution (Zipf-like weights 1/(rank+1)^0.8: the busiest user
  sends ~2.6% of the events, the top 1% of users a third, the least active ~1/5700 of the busiest's share);
* 10% duplicate deliveries: single-record lines written again in a re-delivered ``part-NNNN-retry`` dump
  (plus the SuprSend idempotency-key retries that purchases produce naturally);
* 1% invalid records: malformed JSON, non-UTF-8 bytes, events older than the late limit and each source's
  own contract breaks (text value, nested Hackle property, reserved SuprSend names, an unknown Trak.io call,
  a missing Orbee vendor...);
* 5% late events: event time 1 to 48 hours before the hour (inside the 72-hour limit), most of them
  within a few hours (1 hour + an exponential with a 2-hour mean, capped at 48 hours);
* nested properties (SuprSend carts, Trak.io addresses, Orbee lead data).

Deterministic: the same (seed, hour, events) writes byte-identical objects. Records are generated in parts
of at most ``PART_RECORDS`` so memory stays bounded at 10M events; each part is one object per source plus
one re-delivery object per source, gzipped (level 1: fast, and reading cost does not depend on the level).
"""

from __future__ import annotations

import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from event_pipeline.storage import dump_key

SOURCES = ("hackle", "suprsend", "trakio", "orbee")
SOURCE_SHARE = (0.35, 0.30, 0.20, 0.15)
USERS = 50_000
ZIPF_EXPONENT = 0.8
DUPLICATE_SHARE = 0.10
INVALID_SHARE = 0.01
LATE_SHARE = 0.05
LATE_MEAN_HOURS = 2.0  # beyond the first hour
LATE_MAX_HOURS = 48
BULK_SHARE = 0.20  # of SuprSend records
BULK_SIZE = 5
PART_RECORDS = 500_000
GZIP_LEVEL = 1

EVENT_NAMES = ("page_view", "view_item", "search", "add_to_cart", "purchase", "login", "signup", "email_open")
EVENT_WEIGHTS = (30, 22, 10, 12, 6, 8, 2, 6)
TRAKIO_CALLS = ("track", "page_view", "identify", "alias", "annotate")
TRAKIO_WEIGHTS = (0.60, 0.25, 0.10, 0.0495, 0.0005)
ORBEE_ACTIONS = (("view", "vehicle"), ("submit", "form"), ("start", "chat"), ("view", "offer"))

# Invalid kinds (column `bad`). 1-3 apply to any source, 4-6 are per-source contract breaks.
VALID, MALFORMED, NOT_UTF8, TOO_LATE, BREAK_A, BREAK_B, BREAK_C = range(7)
BAD_KINDS = (MALFORMED, NOT_UTF8, TOO_LATE, BREAK_A, BREAK_B, BREAK_C)
BAD_WEIGHTS = (0.15, 0.05, 0.15, 0.25, 0.20, 0.20)
NOT_UTF8_MARK = "\u0001NOT-UTF8\u0001"


@dataclass
class HourStats:
    """What one generated hour holds: the figures a benchmark compares its outcome with."""

    records: Counter = field(default_factory=Counter)  # source -> records delivered (duplicates included)
    lines: int = 0
    objects: int = 0
    bytes_gz: int = 0
    bytes_raw: int = 0
    duplicates: int = 0
    invalid: int = 0
    late: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.records.values())

    def add(self, other: HourStats) -> None:
        self.records.update(other.records)
        for name in ("lines", "objects", "bytes_gz", "bytes_raw", "duplicates", "invalid", "late"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def late_offsets_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """How long before the hour a late event happened: at least 1 hour, then exponentially fewer the older
    (mean LATE_MEAN_HOURS more), at most LATE_MAX_HOURS: mostly devices that were offline for a while."""
    hours = 1 + np.minimum(rng.exponential(LATE_MEAN_HOURS, size=n), LATE_MAX_HOURS - 1)
    return (hours * 3_600_000).astype(np.int64)


def _user_cdf(users: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, users + 1, dtype=np.float64) ** ZIPF_EXPONENT
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _rng(seed: int, hour: datetime, part: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(hour.timestamp() // 3600), part])


def part_columns(hour: datetime, records: int, part: int, seed: int = 7, users: int = USERS,
                 start_index: int = 0) -> pa.Table:
    """The logical events of one part: one row per record delivered (originals and re-deliveries).

    Columns: i (order in the hour), src, user, name, recv_ms / evt_ms (ms after the hour start), amount,
    bad (0 valid, else an invalid kind), late, bulk (SuprSend bulk request id or -1), dup_of (-1, else the i
    of the original this row re-delivers), r (a random int for properties)."""
    rng = _rng(seed, hour, part)
    n_dup = round(records * DUPLICATE_SHARE)
    n = records - n_dup
    i = np.arange(start_index, start_index + n, dtype=np.int64)
    src = rng.choice(len(SOURCES), size=n, p=SOURCE_SHARE).astype(np.int8)
    user = np.searchsorted(_user_cdf(users), rng.random(n)).astype(np.int32)
    name = rng.choice(len(EVENT_NAMES), size=n, p=np.array(EVENT_WEIGHTS) / sum(EVENT_WEIGHTS)).astype(np.int8)
    recv_ms = np.sort(rng.integers(1_000, 3_599_000, size=n))  # dumps are in receive order
    evt_ms = recv_ms - rng.integers(0, 5_000, size=n)
    late = rng.random(n) < LATE_SHARE
    evt_ms[late] = -late_offsets_ms(rng, int(late.sum()))
    # SuprSend bulk requests: runs of BULK_SIZE consecutive SuprSend records
    bulk = np.full(n, -1, dtype=np.int64)
    ss = np.flatnonzero(src == 1)
    in_bulk = ss[(rng.random(ss.size) < BULK_SHARE / BULK_SIZE)]
    for offset in range(BULK_SIZE):  # BULK_SIZE vector steps, not a loop over events
        idx = np.searchsorted(ss, in_bulk) + offset
        idx = idx[idx < ss.size]
        bulk[ss[idx]] = in_bulk[: idx.size]
    # invalid records: never bulk members, so a broken line is exactly one record
    bad = np.zeros(n, dtype=np.int8)
    single = np.flatnonzero(bulk < 0)
    n_bad = min(round(records * INVALID_SHARE), single.size)
    bad_rows = rng.choice(single, size=n_bad, replace=False)
    bad[bad_rows] = rng.choice(BAD_KINDS, size=n_bad, p=BAD_WEIGHTS)
    late &= bad == VALID
    # re-deliveries: copies of valid single-record lines
    candidates = np.flatnonzero((bulk < 0) & (bad == VALID))
    dup_src_rows = np.sort(rng.choice(candidates, size=min(n_dup, candidates.size), replace=False))
    columns = {
        "i": i, "src": src, "user": user, "name": name, "recv_ms": recv_ms, "evt_ms": evt_ms,
        "amount": rng.choice(np.array([4500, 9900, 13200, 25000, 99000]), size=n).astype(np.int32),
        "bad": bad, "late": late, "bulk": bulk, "r": rng.integers(0, 1_000_000, size=n).astype(np.int32),
    }
    table = pa.table({**columns, "dup_of": np.full(n, -1, dtype=np.int64)})
    dups = table.take(pa.array(dup_src_rows)).set_column(
        table.schema.get_field_index("dup_of"), "dup_of", pa.array(i[dup_src_rows]))
    return pa.concat_tables([table, dups])


# One SELECT per source turning the logical columns into that source's dump lines (one JSON object a line).
# The JSON is assembled by string concatenation (every generated string is plain ASCII without quotes or
# backslashes, so nothing needs escaping): 2-3x faster than DuckDB's json_object, and optional keys are left
# out rather than written as null, as the SDKs do.


def _s(expr: str) -> str:
    """A JSON string from a SQL text expression."""
    return f"""('"' || {expr} || '"')"""


def _obj(*pairs: tuple) -> str:
    """A JSON object from (key, json_sql) or (key, json_sql, condition) pairs; the first pair is unconditional."""
    parts = []
    for index, (key, value, *condition) in enumerate(pairs):
        piece = f"""'{"," if index else ""}"{key}":' || {value}"""
        if condition:
            piece = f"(case when {condition[0]} then {piece} else '' end)"
        parts.append(piece)
    return "('{' || " + " || ".join(parts) + " || '}')"


def _j(text: str) -> str:
    """A SQL literal holding a constant JSON string."""
    return f"""'"{text}"'"""


_RAW_TAGS = """'["new","web"]'"""


def _pick(values: tuple, index_sql: str) -> str:
    return f"[{', '.join(repr(v) for v in values)}][{index_sql} + 1]"


_TS = "(h + to_milliseconds(recv_ms))"
_EVT = f"(case when bad = {TOO_LATE} then h - interval 100 hour else h + to_milliseconds(evt_ms) end)"
_ISO = "strftime({}, '%Y-%m-%dT%H:%M:%S.%gZ')"
_UID = "('u' || lpad(user::varchar, 6, '0'))"
_NAME = f"({_pick(EVENT_NAMES, 'name')})"
_RECEIVED = ("received_at", _s(_ISO.format(_TS)))
_PLATFORM = ("platform", _s(_pick(("ios", "android", "web"), "r % 3")))

_HACKLE_EVENT = f"""case
    when bad = {BREAK_A} then {_obj(("key", _j("purchase")), ("value", _j("lots")))}
    when bad = {BREAK_C} then {_obj(("key", _s(_NAME)),
                                    ("properties", _obj(("cart", _obj(("n", "(r % 5)::varchar"))))))}
    when name = {EVENT_NAMES.index("purchase")} then {_obj(
        ("key", _j("purchase")), ("value", "amount::varchar"),
        ("properties", _obj(_PLATFORM, ("pay_method", _s(_pick(("CARD", "BANK"), "r % 2"))),
                            ("is_discount", "(r % 7 = 0)::varchar"),
                            ("discount_amount", "((r % 10) * 100)::varchar"))))}
    else {_obj(("key", _s(_NAME)), ("properties", _obj(_PLATFORM, ("page", _s("'/p/' || (r % 500)")))))}
end"""
_HACKLE = f"""
select i, bulk, bad, {_obj(_RECEIVED, ("body", _obj(
    ("event", _HACKLE_EVENT),
    ("user", f"case when bad = {BREAK_B} then '{{}}' else {_obj(('id', _s(_UID)))} end"),
    ("timestamp", f"epoch_ms({_EVT})::varchar"))))} as line
from ev where src = 0
"""

_CART = _obj(("items", "(r % 7)::varchar"), ("currency", _j("EUR")),
             ("lines", "'[' || " + _obj(("sku", _s("'sku-' || (r % 900)"))) + " || ']'"))
_SS_PROPERTIES = f"""case
    when bad = {BREAK_C} then '{{"ss_flag":1}}'
    else {_obj(("first_name", _s("'User' || user")), ("plan", _s(_pick(("free", "pro"), "r % 2"))), ("cart", _CART),
               ("$attachments", "'[' || " + _obj(("url", _s("'https://example.com/invoice/' || i || '.pdf'")),
                                                 ("filename", _j("inv"))) + " || ']'", "r % 10 = 0"))}
end"""
_SS_EVENT = _obj(
    ("distinct_id", _s(_UID)),
    ("event", _s(f"case when bad = {BREAK_A} then '$internal_event' else {_NAME} end")),
    ("$insert_id", _s("'ss-' || strftime(h, '%Y%m%d%H') || '-' || i")),
    ("$time", f"epoch_ms({_EVT})::varchar"),
    ("brand_id", _j("default")),
    ("properties", _SS_PROPERTIES),
    ("$idempotency_key", _s("repeat('k', 300)"), f"bad = {BREAK_B}"),
    ("$idempotency_key", _s(f"{_UID} || '-purchase-' || strftime(h, '%Y%m%d%H')"),
     f"bad <> {BREAK_B} and name = {EVENT_NAMES.index('purchase')}"),
)
_SUPRSEND = f"""
with events as (select i, bulk, bad, recv_ms, h, {_SS_EVENT} as event from ev where src = 1)
select i, bulk, bad, '{{"received_at":"' || {_ISO.format(_TS)} || '","body":' || event || '}}' as line
from events where bulk < 0
union all
select min(i), bulk, 0, '{{"received_at":"' || {_ISO.format("min(h + to_milliseconds(recv_ms))")} || '","body":['
       || string_agg(event, ',' order by i) || ']}}'
from events where bulk >= 0 group by bulk
"""

_TIME = ("time", f"case when bad = {BREAK_B} then {_j('yesterday-ish')} else {_s(_ISO.format(_EVT))} end")
_TRAKIO_BODY = f"""case
    when bad = {BREAK_C} then {_obj(("distinct_id", _s(_UID)))}
    when call = 'alias' then {_obj(("distinct_id", _s(_UID)), ("alias", "'[' || " + _s("'anon-' || user") + " || ']'"))}
    when call = 'identify' then {_obj(("distinct_id", _s(_UID)), ("properties", _obj(
        ("name", _s("'User ' || user")), ("email", _s("'user' || user || '@example.com'")),
        ("plan", _s(_pick(("free", "pro", "enterprise"), "r % 3"))),
        ("address", _obj(("city", _s(_pick(("Berlin", "Lisbon", "Seoul", "Austin"), "r % 4"))),
                          ("country", _s(_pick(("DE", "PT", "KR", "US"), "r % 4"))))))))}
    when call = 'annotate' then {_obj(("event", _j("Deployed update")), ("channel", _j("Documentation")),
                                      ("properties", _obj(("commit", _s("'c' || r")))))}
    when call = 'page_view' then {_obj(("distinct_id", _s(_UID)),
                                       ("url", _s("'https://shop.example.com/p/' || (r % 500)")),
                                       ("title", _s("'Product ' || (r % 500)")), _TIME)}
    else {_obj(("distinct_id", _s(_UID)), ("event", _s(_NAME)),
               ("properties", _obj(("source", _j("app")),
                                   ("screen", _obj(("w", "(390 + r % 3)::varchar"), ("h", "'844'"))))),
               ("channel", _j("mobile_app"), "r % 2 = 0"), ("company_id", _j("acme_ltd"), "r % 5 = 0"), _TIME)}
end"""
_TRAKIO = f"""
select i, bulk, bad, {_obj(_RECEIVED, ("call", _s("call")), ("body", _TRAKIO_BODY))} as line
from (select *, case bad when {BREAK_A} then 'group' when {BREAK_B} then 'track' when {BREAK_C} then 'alias'
                         else {_pick(TRAKIO_CALLS, 'call_idx')} end as call
      from ev where src = 2)
"""

_ORBEE = f"""
select i, bulk, bad, {_obj(_RECEIVED, ("path", _s("'/collect/' || (12 + r % 3) || '/34/event'")), ("body", _obj(
    ("action", _s(_pick(tuple(a for a, _ in ORBEE_ACTIONS), f"r % {len(ORBEE_ACTIONS)}"))),
    ("object", _s(_pick(tuple(o for _, o in ORBEE_ACTIONS), f"r % {len(ORBEE_ACTIONS)}"))),
    ("vendor", _s("'Vendor ' || chr(65 + r % 3)"), f"bad not in ({BREAK_A}, {BREAK_C})"),
    ("product", _s("'Product ' || (r % 20)")),
    ("instance_id", _s("'chat-' || user"), f"bad <> {BREAK_B}"),
    ("anonymous_id", _s("'anon-' || user")),
    ("user_id", _s(_UID), "r % 10 < 3"),
    ("timestamp", _s(_ISO.format(_EVT))),
    ("page", _s("'/inventory/' || (r % 50)")),
    ("lead", _obj(("score", "(r % 10)::varchar"), ("tags", _RAW_TAGS))))))} as line
from ev where src = 3
"""

SOURCE_SQL = {"hackle": _HACKLE, "suprsend": _SUPRSEND, "trakio": _TRAKIO, "orbee": _ORBEE}


def _lines_sql(source: str) -> str:
    """Final line text: originals in order, broken on purpose where `bad` says so, then the re-deliveries."""
    return f"""
    with lines as ({SOURCE_SQL[source]})
    select 0 as retry, i, case
        when bad = {MALFORMED} then left(line, length(line) // 2)
        when bad = {NOT_UTF8} then '{NOT_UTF8_MARK}' || line
        else line end || chr(10) as line
    from lines
    union all
    select 1, d.i, o.line || chr(10) from ev_all d join lines o on d.dup_of = o.i
    where d.dup_of >= 0 and d.src = {SOURCES.index(source)}
    order by 1, 2
    """


def _buffer(table: pa.Table, column: str = "line") -> bytes:
    """The concatenated text of a string column (every value already ends with a newline)."""
    parts = []
    for chunk in table.column(column).chunks:
        if len(chunk) == 0:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset: chunk.offset + len(chunk) + 1]
        parts.append(memoryview(chunk.buffers()[2])[offsets[0]: offsets[-1]])
    return b"".join(parts)


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # gzip header with mtime 0: deterministic
    return compressor.compress(data) + compressor.flush()


def generate_part(hour: datetime, records: int, part: int, seed: int = 7, users: int = USERS,
                  start_index: int = 0) -> tuple[dict[str, bytes], HourStats]:
    """One part of an hour: object key -> gzipped bytes, and what went into them."""
    table = part_columns(hour, records, part, seed, users, start_index)
    rng = _rng(seed, hour, 10_000 + part)
    call_idx = rng.choice(len(TRAKIO_CALLS), size=table.num_rows, p=TRAKIO_WEIGHTS).astype(np.int8)
    ev = table.append_column("call_idx", pa.array(call_idx))
    con = duckdb.connect()
    con.execute("set threads = 2")
    con.register("ev_arrow", ev)
    con.execute(f"create temp view ev_all as select *, timestamp '{hour:%Y-%m-%d %H:%M:%S}' as h from ev_arrow")
    con.execute("create temp view ev as select * from ev_all where dup_of < 0")
    stats = HourStats()
    raw: dict[str, bytes] = {}
    for source in SOURCES:
        lines = con.sql(_lines_sql(source)).to_arrow_table()
        retry = pc.equal(lines.column("retry"), 1)
        for name, part_lines in ((f"part-{part:04d}.jsonl.gz", lines.filter(pc.invert(retry))),
                                 (f"part-{part:04d}-retry.jsonl.gz", lines.filter(retry))):
            if part_lines.num_rows == 0:
                continue
            data = _buffer(part_lines)
            if NOT_UTF8_MARK.encode() in data:
                data = data.replace(NOT_UTF8_MARK.encode(), b"\xff\xfe")
            raw[dump_key(source, hour, name)] = data
            stats.lines += part_lines.num_rows
            stats.bytes_raw += len(data)
    con.close()
    src = np.asarray(table.column("src"))
    for index, source in enumerate(SOURCES):
        stats.records[source] += int((src == index).sum())
    stats.duplicates = int((np.asarray(table.column("dup_of")) >= 0).sum())
    stats.invalid = int((np.asarray(table.column("bad")) != VALID).sum())
    stats.late = int(np.asarray(table.column("late")).sum())
    with ThreadPoolExecutor(max_workers=2) as pool:  # zlib releases the GIL
        files = dict(zip(raw, pool.map(_gzip, raw.values()), strict=True))
    stats.objects = len(files)
    stats.bytes_gz = sum(len(v) for v in files.values())
    return files, stats


def generate_hour(hour: datetime, events: int, seed: int = 7, users: int = USERS,
                  part_records: int = PART_RECORDS):
    """Yield (files, stats) per part: `events` records in all, at most `part_records` a part."""
    parts = max(1, -(-events // part_records))
    done = 0
    for part in range(parts):
        records = events // parts + (1 if part < events % parts else 0)
        yield generate_part(hour, records, part, seed, users, start_index=done)
        done += records


def write_hour(fs, bucket: str, hour: datetime, events: int, seed: int = 7, users: int = USERS,
               part_records: int = PART_RECORDS) -> HourStats:
    """Generate one hour and write it to object storage (replacing that hour's folder of every source)."""
    import time

    started = time.monotonic()
    for source in SOURCES:
        prefix = f"{bucket}/{dump_key(source, hour, '')}".rstrip("/")
        if fs.exists(prefix):
            fs.rm(prefix, recursive=True)
    total = HourStats()
    for files, stats in generate_hour(hour, events, seed, users, part_records):
        fs.pipe({f"{bucket}/{key}": data for key, data in files.items()})  # concurrent uploads
        total.add(stats)
    total.seconds = round(time.monotonic() - started, 2)
    return total
