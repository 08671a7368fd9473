"""Seed a warehouse with days of already-loaded history, fast, for the incremental benchmark.

    python -m event_pipeline.bench.history --before 2026-11-20T05 --days 30 --events 10000 --out seed.json

Writes the landing tables directly (landing.events and landing.object_counts, as load + validate leave
them), vectorised: the same users, sources, event mix, 10% duplicate deliveries and 5% late events as the
dump generator, but only valid records (the invalid ones would sit in landing.quarantine, which no model
reads for history). Then one full-scope `dbt build` builds every model from all of it, the segments are
evaluated as of the end of the history and that evaluation's snapshot is kept for every earlier hour too
(seed_segment_history: hourly runs leave a snapshot per hour), and the analysts' snapshot is published (twice,
so that the spare snapshot an hourly publish writes in place exists), so the next hour runs as it would
after 30 days in production.
The hourly path itself (discover, load, validate) is not replayed for history: its cost does not depend on it.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from event_pipeline.bench.generator import (
    DUPLICATE_SHARE,
    EVENT_NAMES,
    EVENT_WEIGHTS,
    LATE_SHARE,
    ORBEE_ACTIONS,
    SOURCE_SHARE,
    SOURCES,
    TRAKIO_CALLS,
    TRAKIO_WEIGHTS,
    USERS,
    _pick,
    _user_cdf,
    late_offsets_ms,
)
from event_pipeline.segments.store import log_rewritten_partitions

HOURS_PER_CHUNK = 24


def history_columns(first_hour: datetime, hours: int, events: int, seed: int = 7, users: int = USERS) -> pa.Table:
    """Logical events of `hours` consecutive hours from `first_hour`, `events` records each."""
    rng = np.random.default_rng([seed, int(first_hour.timestamp() // 3600), hours, 99])
    n_dup = round(events * DUPLICATE_SHARE)
    per_hour = events - n_dup
    n = per_hour * hours
    hour_index = np.repeat(np.arange(hours, dtype=np.int32), per_hour)
    i = np.tile(np.arange(per_hour, dtype=np.int64), hours)
    recv_ms = rng.integers(1_000, 3_599_000, size=n)
    evt_ms = recv_ms - rng.integers(0, 5_000, size=n)
    late = rng.random(n) < LATE_SHARE
    evt_ms[late] = -late_offsets_ms(rng, int(late.sum()))
    columns = {
        "k": hour_index, "i": i,
        "src": rng.choice(len(SOURCES), size=n, p=SOURCE_SHARE).astype(np.int8),
        "user": np.searchsorted(_user_cdf(users), rng.random(n)).astype(np.int32),
        "name": rng.choice(len(EVENT_NAMES), size=n, p=np.array(EVENT_WEIGHTS) / sum(EVENT_WEIGHTS)).astype(np.int8),
        "call_idx": rng.choice(len(TRAKIO_CALLS), size=n, p=TRAKIO_WEIGHTS).astype(np.int8),
        "recv_ms": recv_ms, "evt_ms": evt_ms,
        "amount": rng.choice(np.array([4500, 9900, 13200, 25000, 99000]), size=n).astype(np.int32),
        "r": rng.integers(0, 1_000_000, size=n).astype(np.int32),
        "retry": np.zeros(n, dtype=bool),
    }
    table = pa.table(columns)
    # re-deliveries: n_dup copies per hour of records of the same hour, in a retry object
    dup_rows = (np.repeat(np.arange(hours) * per_hour, n_dup)
                + rng.integers(0, per_hour, size=n_dup * hours))
    dups = table.take(pa.array(dup_rows))
    dups = dups.set_column(dups.schema.get_field_index("retry"), "retry", pa.array(np.ones(dups.num_rows, bool)))
    return pa.concat_tables([table, dups])


_UID = "('u' || lpad(user::varchar, 6, '0'))"
_NAME = f"({_pick(EVENT_NAMES, 'name')})"
_CALL = f"({_pick(TRAKIO_CALLS, 'call_idx')})"
_ACTION = f"({_pick(tuple(a for a, _ in ORBEE_ACTIONS), f'r % {len(ORBEE_ACTIONS)}')})"
_OBJECT = f"({_pick(tuple(o for _, o in ORBEE_ACTIONS), f'r % {len(ORBEE_ACTIONS)}')})"
_PURCHASE = EVENT_NAMES.index("purchase")

# Canonical landing rows, one per logical event (as the adapters would have mapped the dump lines).
LANDING_SQL = f"""
with ev as (
    select *, $first + to_hours(k) as h,
           $first + to_hours(k) + to_milliseconds(recv_ms) as received_at,
           $first + to_hours(k) + to_milliseconds(evt_ms) as event_time
    from history_chunk
),
mapped as (
    select *,
        list_value('hackle', 'suprsend', 'trakio', 'orbee')[src + 1] as source,
        case when src = 2 then list_value('track', 'page', 'identify', 'alias', 'annotate')[call_idx + 1]
             else 'track' end as message_type,
        case
            when src = 0 then json_object('platform', list_value('ios', 'android', 'web')[r % 3 + 1],
                                          'page', '/p/' || (r % 500))
            when src = 1 then json_object('first_name', 'User' || user, 'plan', list_value('free', 'pro')[r % 2 + 1],
                                          'cart', json_object('items', r % 7, 'currency', 'EUR',
                                                              'lines', [json_object('sku', 'sku-' || (r % 900))]))
            when src = 2 and call_idx = 2 then json_object('name', 'User ' || user, 'plan',
                list_value('free', 'pro', 'enterprise')[r % 3 + 1],
                'address', json_object('city', list_value('Berlin', 'Lisbon', 'Seoul', 'Austin')[r % 4 + 1]))
            when src = 2 and call_idx = 1 then json_object('url', 'https://shop.example.com/p/' || (r % 500))
            when src = 2 and call_idx in (0, 4) then json_object('source', 'app')
            when src = 3 then json_object('page', '/inventory/' || (r % 50),
                                          'lead', json_object('score', r % 10, 'tags', ['new', 'web']))
        end as props,
        md5(concat_ws('|', src, h, i)) as content_hash
    from ev
)
select
    case when src = 1 then 'ss-' || strftime(h, '%Y%m%d%H') || '-' || i else left(content_hash, 32) end as event_id,
    message_type,
    source,
    case when message_type = 'annotate' then null
         when src = 3 then case when r % 10 < 3 then {_UID} end
         else {_UID} end as user_id,
    case when src = 3 then 'anon-' || user end as anonymous_id,
    case when message_type = 'alias' then ['anon-' || user] end as alias_ids,
    case
        when src = 3 then {_ACTION} || '_' || {_OBJECT}
        when message_type = 'page' then 'page_view'
        when message_type in ('identify', 'alias') then message_type
        when message_type = 'annotate' then 'Deployed update'
        else {_NAME} end as event_name,
    case when src = 0 and name = {_PURCHASE} then amount::double end as value,
    case when message_type <> 'alias' then props::varchar end as properties,
    case when src = 1 and name = {_PURCHASE} then {_UID} || '-purchase-' || strftime(h, '%Y%m%d%H') end
        as idempotency_key,
    case when src = 1 then 'default' end as brand_id,
    case when src = 2 and message_type = 'track' and r % 5 = 0 then 'acme_ltd' end as company_id,
    case when src = 3 then (12 + r % 3)::varchar end as account_id,
    case when src = 3 then '34' end as tracker_id,
    case when src = 2 and message_type in ('track', 'page') then
         case when r % 2 = 0 then 'mobile_app' else 'web_site' end
         when message_type = 'annotate' then 'Documentation' end as channel,
    case when src = 3 then {_ACTION} end as action,
    case when src = 3 then {_OBJECT} end as object,
    case when src = 3 then 'Vendor ' || chr(65 + r % 3) end as vendor,
    case when src = 3 then 'Product ' || (r % 20) end as product,
    case when src = 3 then 'chat-' || user end as instance_id,
    null::varchar[] as attachments,
    event_time,
    received_at,
    'raw/' || source || '/dt=' || strftime(h, '%Y-%m-%d') || '/hour=' || strftime(h, '%H') || '/part-0000'
        || case when retry then '-retry' else '' end || '.jsonl.gz' as object_key,
    (row_number() over (partition by h, src, retry order by i))::integer as line_number,
    0 as record_index,
    content_hash as payload_hash,
    json_object('event', event_name, 'user', user_id, 'properties', props, 'received_at', received_at,
                'time', event_time)::varchar as raw,
    h as batch_hour
from mapped
"""


def seed_landing(con: duckdb.DuckDBPyConnection, before: datetime, days: int, events: int, seed: int = 7) -> int:
    """Insert `days` x 24 hours of landing rows ending at `before` (exclusive); returns the rows inserted."""
    hours = days * 24
    first = before - timedelta(hours=hours)
    rows = 0
    for start in range(0, hours, HOURS_PER_CHUNK):
        chunk_hours = min(HOURS_PER_CHUNK, hours - start)
        chunk_first = first + timedelta(hours=start)
        con.register("history_chunk", history_columns(chunk_first, chunk_hours, events, seed))
        con.execute(f"insert into landing.events by name {LANDING_SQL}", {"first": chunk_first})
        con.unregister("history_chunk")
        rows += chunk_hours * events
    con.execute("""
        insert into landing.object_counts by name
        select batch_hour, source, object_key, count(*) as records_read, count(*) as records_valid,
               0 as records_quarantined
        from landing.events where batch_hour >= ? and batch_hour < ? group by all
    """, [first, before])
    return rows


def seed_segment_history(con: duckdb.DuckDBPyConnection, as_of: datetime, hours: int) -> int:
    """Give the segments tables the volume `hours` hourly evaluations leave, from the one evaluation as_of.

    Every hourly run writes a snapshot of every segment's members (about 190k rows an hour for the benchmark's
    50k users), so after 30 days segments.membership_snapshots holds 720 of them; evaluating 720 hours would
    take longer than the rest of the seed. Instead as_of's snapshot, evaluation rows and sizes are repeated for
    each earlier hour, and the derived tables say what that history means (everyone entered their segments at
    the first hour and stayed): changes at the first hour, history and memberships from it. Only
    volume and consistency matter here; the next hour's evaluation reads as_of's snapshot (update_derived).
    Returns the snapshot rows added."""
    first = as_of - timedelta(hours=hours - 1)
    added = 0
    # oldest first, one hour per statement, committed as it goes: the rows lie in as_of order as hourly runs
    # append them (each row group holds an hour or two, which is what lets a scan of one as_of skip the
    # rest), and no transaction holds 130M new rows in memory until its commit
    for hours_back in range(hours - 1, 0, -1):
        params = {"as_of": as_of, "earlier": as_of - timedelta(hours=hours_back)}
        added += con.execute(
            "insert into segments.membership_snapshots select $earlier, segment_key, version, user_key, metrics "
            "from segments.membership_snapshots where as_of = $as_of order by segment_key, user_key",
            params).fetchall()[0][0]
        for table in ("evaluations", "segment_sizes"):
            con.execute(f"insert into segments.{table} by name select * replace ($earlier as as_of) "
                        f"from segments.{table} where as_of = $as_of", params)
    moved = {"first": first, "as_of": as_of}
    con.execute("begin transaction")
    con.execute("update segments.membership_changes set as_of = $first where as_of = $as_of", moved)
    con.execute("update segments.membership_history set valid_from = $first where valid_from = $as_of", moved)
    con.execute("update segments.memberships set entered_at = $first where entered_at = $as_of", moved)
    log_rewritten_partitions(con, ["membership_snapshots", "evaluations", "segment_sizes", "membership_changes"],
                             None)  # written here, not by an evaluation: the publish compares them whole
    con.execute("commit")
    return added


def seed(before: datetime, days: int, events: int, seed_value: int = 7) -> dict:
    """Landing history, one full-scope dbt build, segments as of the end of the history and the analysts'
    snapshot published, as the last hourly run of the history leaves them (the next hour's publish then
    updates a snapshot, as it does in production, instead of writing the first one)."""
    from event_pipeline import pipeline
    from event_pipeline.settings import get_settings
    from event_pipeline.warehouse import connect

    settings = get_settings()
    timings = {}
    started = time.monotonic()
    with connect(settings.warehouse_path) as con:
        rows = seed_landing(con, before, days, events, seed_value)
    timings["landing"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    pipeline.dbt_build(None, settings)  # no batch_hour: every model computed from all of landing
    timings["dbt_full_build"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    pipeline.segment(before - timedelta(hours=1), settings)
    with connect(settings.warehouse_path) as con:
        snapshot_rows = seed_segment_history(con, before, days * 24)
    timings["segment"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    pipeline.publish(before - timedelta(hours=1), settings)
    # twice, as hourly runs leave it: the snapshot and the one before it, the spare that the next publish
    # writes in place (event_pipeline.snapshot); after a single publish there is none yet
    pipeline.publish(before - timedelta(hours=1), settings)
    timings["publish"] = round(time.monotonic() - started, 2)
    return {"rows": rows, "days": days, "events_per_hour": events, "segment_snapshot_rows": snapshot_rows,
            "seconds": timings}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m event_pipeline.bench.history", description=__doc__)
    parser.add_argument("--before", required=True, help="the first hour after the history, e.g. 2026-11-20T05")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    if args.log:
        import os

        args.log.parent.mkdir(parents=True, exist_ok=True)
        log = open(args.log, "ab")  # noqa: SIM115 - lives as long as the process
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    result = seed(datetime.fromisoformat(args.before), args.days, args.events, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
