"""Hourly segment runs: re-running an hour is idempotent, hour order does not matter, versions are tracked."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from test_segments import Marts, rule, write_definitions

from event_pipeline.segments import default_definitions_dir, evaluate_segments, load_definitions
from event_pipeline.segments.store import rebuild_derived

START = datetime(2024, 5, 1, 6)
HOURS = [START + timedelta(hours=h) for h in range(1, 7)]
NAMES = {"page_view": 30, "view_item": 22, "search": 10, "add_to_cart": 12, "purchase": 6, "login": 8, "signup": 2}
DERIVED = (
    "membership_snapshots",
    "membership_history",
    "membership_changes",
    "memberships",
    "segment_sizes",
    "evaluations",
    "definitions",
)


def demo_like(con: duckdb.DuckDBPyConnection, users: int = 240, per_hour: int = 150) -> None:
    """A few hundred users over the 6 hours from START, long-tailed like the demo's sample data."""
    Marts(con)
    rng = random.Random(20240501)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(users)]
    rows = []
    for n in range(6 * per_hour):
        user = f"u{rng.choices(range(users), weights=weights)[0]:04d}"
        name = rng.choices(list(NAMES), weights=list(NAMES.values()))[0]
        at = START + timedelta(seconds=rng.uniform(0, 6 * 3600))
        value = rng.choice([9900, 13200, 25000, 4500, 99000]) if name == "purchase" and rng.random() < 0.7 else None
        rows.append((f"e{n}", user, "demo", "track", name, value, json.dumps({"platform": "web"}), at))
    con.executemany("insert into marts.events values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(
        "insert into marts.users select user_key, min(event_time), max(event_time), "
        "json_object('plan', case when hash(user_key) % 3 = 0 then 'pro' else 'free' end) "
        "from marts.events group by user_key"
    )


def table(con, name: str) -> list[tuple]:
    return con.execute(f"select * from segments.{name} order by all").fetchall()


@pytest.fixture(scope="module")
def shipped() -> Path:
    return default_definitions_dir()


def test_shipped_defaults_are_non_empty_on_demo_like_data(shipped):
    con = duckdb.connect()
    demo_like(con)
    sizes = {}
    for hour in HOURS:
        sizes = evaluate_segments(con, hour, shipped)
    for key in ("purchasers_30d", "high_value_customers", "cart_abandoners", "power_users", "lifecycle.new"):
        assert sizes[key] > 0, key
    paying = con.execute(
        "select count(distinct user_key) from marts.events where event_name = 'purchase' and value > 0 "
        "and event_time < ?",
        [HOURS[-1]],
    ).fetchall()[0][0]
    assert sum(v for k, v in sizes.items() if k.startswith("rfm.")) == paying  # RFM: every paying user once
    assert sum(1 for k, v in sizes.items() if k.startswith("rfm.") and v) >= 4
    known = con.execute("select count(*) from marts.users").fetchall()[0][0]
    assert sum(v for k, v in sizes.items() if k.startswith("lifecycle.")) == known  # one stage each
    memberships = con.execute("select segment_key, count(*) from segments.memberships group by 1").fetchall()
    assert dict(memberships) == {k: v for k, v in sizes.items() if v}


def test_reevaluating_an_hour_gives_identical_results(shipped):
    con = duckdb.connect()
    demo_like(con)
    for hour in HOURS[:4]:
        evaluate_segments(con, hour, shipped)
    before = {name: table(con, name) for name in DERIVED}
    sizes_again = evaluate_segments(con, HOURS[2], shipped)
    assert {name: table(con, name) for name in DERIVED} == before
    expected = con.execute(
        "select segment_key, members from segments.segment_sizes where as_of = ?", [HOURS[2]]
    ).fetchall()
    assert sizes_again == dict(sorted(expected))
    # later events (after as_of) do not change what hour H gives
    con.execute(
        "insert into marts.events values ('late', 'u0001', 'demo', 'track', 'purchase', 99000, '{}', ?)",
        [HOURS[2] + timedelta(minutes=5)],
    )
    evaluate_segments(con, HOURS[2], shipped)
    assert table(con, "membership_snapshots") == before["membership_snapshots"]


def test_hours_in_shuffled_order_give_the_same_history(shipped):
    hours = HOURS[1:4]
    results = []
    for order in (hours, [hours[2], hours[0], hours[1], hours[0]]):  # shuffled, one hour run twice
        con = duckdb.connect()
        demo_like(con)
        for hour in order:
            evaluate_segments(con, hour, shipped)
        results.append({name: table(con, name) for name in DERIVED})
        if len(results) == 2:
            # the incremental update equals re-deriving everything from the snapshots
            for definition in load_definitions(shipped):
                rebuild_derived(con, definition.key)
            assert {name: table(con, name) for name in DERIVED} == results[1]
        con.close()
    assert results[0] == results[1]
    history = results[0]["membership_history"]
    assert any(row[4] is not None for row in history)  # some spans closed: there was movement to compare
    assert len({row[0] for row in results[0]["membership_changes"]}) == 3  # changes at every hour


def test_editing_a_definition_is_a_new_version_in_history(tmp_path):
    con = duckdb.connect()
    marts = Marts(con)
    marts.users("a", "b")
    marts.event("a", "login", START + timedelta(minutes=10))
    marts.event("b", "login", START + timedelta(minutes=10))
    marts.event("b", "login", START + timedelta(minutes=20))
    first = write_definitions(tmp_path / "v1", rule("logins", "event: login\nwindow: 7d"))
    second = write_definitions(tmp_path / "v2", rule("logins", "event: login\nwindow: 7d\ncount: {at_least: 2}"))
    v1, v2 = (load_definitions(d)[0].version for d in (first, second))
    h1, h2 = HOURS[0], HOURS[1]
    evaluate_segments(con, h1, first)
    evaluate_segments(con, h2, second)
    assert con.execute("select key, version from segments.definitions order by version").fetchall() == sorted(
        [("logins", v1), ("logins", v2)], key=lambda r: r[1]
    )
    history = con.execute(
        "select user_key, version, valid_from, valid_to from segments.membership_history order by all"
    ).fetchall()
    assert history == [("a", v1, h1, h2), ("b", v1, h1, h2), ("b", v2, h2, None)]
    changes = con.execute(
        "select as_of, user_key, version, change from segments.membership_changes where as_of = ? order by all",
        [h2],
    ).fetchall()
    assert changes == [(h2, "a", v1, "exited"), (h2, "b", v1, "exited"), (h2, "b", v2, "entered")]
    current = con.execute("select user_key, version, entered_at from segments.memberships").fetchall()
    assert current == [("b", v2, h2)]
    # re-running h1 with the new version replaces what h1 wrote
    evaluate_segments(con, h1, second)
    history = con.execute(
        "select user_key, version, valid_from, valid_to from segments.membership_history order by all"
    ).fetchall()
    assert history == [("b", v2, h1, None)]


def test_each_evaluation_logs_the_partitions_it_rewrote_and_the_publish_rewrites_just_those(shipped, tmp_path):
    """segments.store logs every partition (as_of) an evaluation rewrites in event_pipeline.snapshot's change
    log: the snapshot publish then rewrites those partitions, not every hour's members."""
    from event_pipeline.snapshot import PARTITIONS_LOGGED, publish_snapshot

    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    demo_like(con)
    con.execute("create schema landing")  # the publish stamps the snapshot with the latest loaded hour
    con.execute("create table landing.object_counts (batch_hour timestamp)")
    target = tmp_path / "analytics.duckdb"
    tables = [("segments", name) for name in DERIVED]

    def logged() -> dict[str, set[datetime | None]]:
        rows = con.execute("select table_name, list(distinct make_timestamp(key_hash::bigint)) "
                           "from audit.mart_changes group by all").fetchall()
        return {name: set(times) for name, times in rows}

    def publish() -> dict[str, str]:
        actions = publish_snapshot(con, target, tables, None)["actions"]
        con.execute(f"attach '{target}' as published (read_only)")
        try:
            for name in DERIVED:
                assert con.execute(
                    f"select count(*) from (select * from segments.{name} except all "
                    f"select * from published.segments.{name} union all (select * from published.segments.{name} "
                    f"except all select * from segments.{name}))").fetchall() == [(0,)], name
        finally:
            con.execute("detach published")
        return {name: actions[name] for name in PARTITIONS_LOGGED}

    evaluate_segments(con, HOURS[0], shipped)
    publish()  # the first snapshot: every table copied
    evaluate_segments(con, HOURS[3], shipped)  # a new hour: its own partitions
    assert logged() == {name: {HOURS[3]} for name in PARTITIONS_LOGGED}
    assert publish() == dict.fromkeys(PARTITIONS_LOGGED, "1 partitions replaced (change log)")
    assert logged() == {}  # applied: the publish keeps it as the previous generation

    # an hour evaluated late, between two others: its partitions, and the changes of the hour after it
    evaluate_segments(con, HOURS[1], shipped)
    assert logged() == {**{name: {HOURS[1]} for name in PARTITIONS_LOGGED},
                        "segments.membership_changes": {HOURS[1], HOURS[3]}}
    # this publish writes the spare in place (the first snapshot): it applies both generations of the log,
    # HOURS[3]'s and HOURS[1]'s
    assert publish() == dict.fromkeys(PARTITIONS_LOGGED, "2 partitions replaced (change log)")

    # the repair path re-derives every change: logged whole, so the publish compares every partition; the
    # spare it writes lacks HOURS[1]'s evaluation (the previous generation of the log)
    for definition in load_definitions(shipped):
        rebuild_derived(con, definition.key)
    assert logged() == {"segments.membership_changes": {None}}
    assert publish() == {**dict.fromkeys(PARTITIONS_LOGGED, "1 partitions replaced (change log)"),
                         "segments.membership_changes": "2 partitions replaced"}
    assert publish() == {**dict.fromkeys(PARTITIONS_LOGGED, "unchanged (change log)"),
                         "segments.membership_changes": "unchanged"}
