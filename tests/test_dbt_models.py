"""The dbt project end to end on a small handcrafted warehouse.

Each test builds its own DuckDB file with the loader's landing tables, runs dbt in-process for
dump hours the way the hourly DAG does (the hour in EVENTS_BATCH_HOUR) and checks exact
outcomes: dedupe (event_id, SuprSend idempotency, conflicting copies), hourly load stats,
identity stitching, sessions, and that hour-by-hour runs in any order, a rerun, a full refresh
and a full_history run all give identical marts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from event_pipeline.contract import CANONICAL_COLUMN_NAMES, canonical_ddl, quarantine_ddl
from event_pipeline.dbt_cosmos import BATCH_HOUR_ENV, MANIFEST_PATH, dbt_batch_hour
from event_pipeline.warehouse import OBJECT_COUNTS_DDL

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"

MARTS = (
    "events",
    "annotations",
    "event_id_conflicts",
    "hourly_load_stats",
    "identities",
    "identity_merges",
    "users",
    "sessions",
    "daily_user_activity",
)

H1 = datetime(2026, 11, 20, 5)
H2 = datetime(2026, 11, 20, 6)
H3 = datetime(2026, 11, 20, 7)


def user_key(*nodes: str) -> str:
    """The user_key of a component: md5 of its smallest '<id_type>:<id_value>'."""
    return "u_" + hashlib.md5(min(nodes).encode()).hexdigest()[:16]


# --- landing rows -------------------------------------------------------------------------------


@dataclass
class Batch:
    """One dump hour as the loader writes it: valid records plus per-object counts."""

    hour: datetime
    rows: list[dict] = field(default_factory=list)
    quarantined: dict[str, int] = field(default_factory=dict)  # source -> records quarantined

    def add(self, source: str, event_id: str, event_time: datetime, *, received_at: datetime | None = None,
            payload: str | None = None, **values) -> Batch:
        line = sum(1 for row in self.rows if row["source"] == source) + 1
        row = dict.fromkeys(CANONICAL_COLUMN_NAMES)
        row.update(
            event_id=event_id,
            message_type="track",
            source=source,
            event_name="evt",
            event_time=event_time,
            received_at=received_at or event_time + timedelta(seconds=5),
            object_key=f"{source}/{self.hour:%Y%m%d%H}.jsonl.gz",
            line_number=line,
            record_index=0,
            payload_hash=payload or f"hash-{event_id}",
            batch_hour=self.hour,
        )
        row.update(values)
        if row["raw"] is None:
            row["raw"] = json.dumps({"id": event_id, "payload": row["payload_hash"]})
        if isinstance(row["properties"], dict):
            row["properties"] = json.dumps(row["properties"], separators=(",", ":"))
        self.rows.append(row)
        return self

    def object_counts(self) -> list[tuple]:
        sources = sorted({row["source"] for row in self.rows} | set(self.quarantined))
        counts = []
        for source in sources:
            valid = sum(1 for row in self.rows if row["source"] == source)
            bad = self.quarantined.get(source, 0)
            counts.append((self.hour, source, f"{source}/{self.hour:%Y%m%d%H}.jsonl.gz", valid + bad, valid, bad))
        return counts


class Warehouse:
    def __init__(self, path: Path):
        self.path = path
        with duckdb.connect(str(path)) as con:
            con.execute("create schema if not exists landing")
            con.execute(canonical_ddl("landing.events"))
            con.execute(quarantine_ddl("landing.quarantine"))
            con.execute(OBJECT_COUNTS_DDL)

    def load(self, batch: Batch) -> None:
        """What the loader does for a dump hour: replace every landing row of that batch_hour."""
        columns = ", ".join(CANONICAL_COLUMN_NAMES)
        params = ", ".join("?" for _ in CANONICAL_COLUMN_NAMES)
        with duckdb.connect(str(self.path)) as con:
            con.execute("begin")
            for table in ("landing.events", "landing.object_counts", "landing.quarantine"):
                con.execute(f"delete from {table} where batch_hour = ?", [batch.hour])
            for row in batch.rows:
                con.execute(f"insert into landing.events ({columns}) values ({params})",
                            [row[name] for name in CANONICAL_COLUMN_NAMES])
            for counts in batch.object_counts():
                con.execute(
                    "insert into landing.object_counts (batch_hour, source, object_key, records_read, records_valid, "
                    "records_quarantined) values (?, ?, ?, ?, ?, ?)", list(counts))
            con.execute("commit")

    def query(self, sql: str, params: Iterable | None = None) -> list[tuple]:
        with duckdb.connect(str(self.path)) as con:
            return con.execute(sql, list(params or [])).fetchall()

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every mart's full contents, rows sorted, JSON and lists rendered as text."""
        tables = {}
        with duckdb.connect(str(self.path)) as con:
            for mart in MARTS:
                columns = [r[0] for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'marts' and table_name = ? order by ordinal_position", [mart]
                ).fetchall()]
                select = ", ".join(f'cast("{c}" as varchar)' for c in columns)
                rows = con.execute(f"select {select} from marts.{mart}").fetchall()
                tables[mart] = sorted(rows, key=lambda row: tuple("" if v is None else v for v in row))
        return tables


class Dbt:
    """dbt in-process against one warehouse, reusing one parsed manifest (parsing is most of a run)."""

    def __init__(self, tmp_path: Path, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, manifest=None):
        self.warehouse = warehouse
        self.monkeypatch = monkeypatch
        self.manifest = manifest
        monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        self.base = [
            "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(tmp_path / "dbt-target"),
            "--log-path", str(tmp_path / "dbt-logs"),
        ]

    def __call__(self, command: str, *args: str, batch_hour: datetime | None = None,
                 variables: dict | None = None):
        variables = dict(variables or {})
        # the batch hour as the pipeline and the DAG pass it (an environment variable: macros/run_scope.sql)
        if batch_hour is not None:
            self.monkeypatch.setenv(BATCH_HOUR_ENV, dbt_batch_hour(batch_hour))
        else:
            self.monkeypatch.delenv(BATCH_HOUR_ENV, raising=False)
        self.monkeypatch.setenv("EVENTS_WAREHOUSE_PATH", str(self.warehouse.path))
        cli = [command, *self.base, "--quiet", "--vars", json.dumps(variables), *args]
        result = dbtRunner(manifest=self.manifest).invoke(cli)
        if not result.success:
            failures = []
            for node in getattr(result.result, "results", None) or []:
                if str(node.status) not in ("success", "pass"):
                    failures.append(f"{node.node.name}: {node.status}: {node.message}")
            raise AssertionError(f"dbt {' '.join(cli)} failed: {result.exception}\n" + "\n".join(failures))
        return result.result

    def run_hour(self, hour: datetime) -> None:
        # models only: the data tests and unit tests run once per test in `dbt build`
        self("run", batch_hour=hour)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """The project parsed once: a model's SQL is still rendered per run, with that run's vars."""
    tmp = tmp_path_factory.mktemp("dbt-parse")
    with pytest.MonkeyPatch.context() as monkeypatch:
        # relations in the manifest carry the database name, the warehouse file's stem: every
        # warehouse in these tests is a warehouse.duckdb
        parser = Dbt(tmp, Warehouse(tmp / "warehouse.duckdb"), monkeypatch)
        return parser("parse")


@pytest.fixture
def warehouse(tmp_path):
    return Warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture
def dbt(tmp_path, warehouse, monkeypatch, manifest):
    return Dbt(tmp_path, warehouse, monkeypatch, manifest)


# --- the scenario -------------------------------------------------------------------------------


def t(hour: datetime, minutes: float) -> datetime:
    return hour + timedelta(minutes=minutes)


def scenario() -> dict[datetime, Batch]:
    """Three dump hours that exercise every rule."""
    b1, b2, b3 = Batch(H1, quarantined={"hackle": 2}), Batch(H2, quarantined={"orbee": 1}), Batch(H3)
    # hackle: e1 re-delivered in H2 with the same payload (a), e9 re-delivered in H2 with a
    # different payload (c), e10 arrives late (04:50) in H2, e4 lands in H1's event hour from H2.
    b1.add("hackle", "e1", t(H1, 10), user_id="alice", event_name="view", value=1.0)
    b1.add("hackle", "e2", t(H1, 20), user_id="alice", event_name="click", value=2.0)
    b1.add("hackle", "e3", t(H1, 30), user_id="bob", event_name="view", value=2.5)
    b1.add("hackle", "e9", t(H1, 55), user_id="erin", event_name="buy", payload="p1")
    # gina's only event is two hours late (03:10); aaron aliases her in H3, whose scope does
    # not include 03:00: her event's user_key (now from 'user_id:aaron') must still change
    b1.add("hackle", "e12", t(H1, -110), user_id="gina", event_name="view")
    b2.add("hackle", "e1", t(H1, 10), received_at=t(H2, 1), user_id="alice", event_name="view", value=1.0)
    b2.add("hackle", "e9", t(H1, 55), received_at=t(H2, 5), user_id="erin", event_name="buy", payload="p2")
    b2.add("hackle", "e10", t(H1, -10), received_at=t(H2, 2), user_id="bob", event_name="view")
    b2.add("hackle", "e4", t(H1, 45), received_at=t(H2, 3), user_id="alice", event_name="view")
    b3.add("hackle", "e11", t(H3, 5), user_id="bob", event_name="view")
    b3.add("hackle", "e1", t(H1, 10), received_at=t(H3, 9), user_id="alice", event_name="view", value=1.0)
    # suprsend (b): K1/brand b1 kept at H1:00, its copies 30 min and 70 min later are dropped;
    # the same key under brand b2 is its own chain. K2: kept at day-1 05:10, dropped at
    # +23h59m (H2), kept at exactly +24h (H3), although that is within 24h of the dropped one.
    day0 = H1 - timedelta(days=1)
    ss = {"user_id": "carol", "event_name": "notify"}
    b1.add("suprsend", "s1", t(H1, 0), idempotency_key="K1", brand_id="b1", **ss)
    b1.add("suprsend", "s2", t(H1, 30), idempotency_key="K1", brand_id="b1", **ss)
    b2.add("suprsend", "s3", t(H2, 10), idempotency_key="K1", brand_id="b1", **ss)
    b2.add("suprsend", "s4", t(H2, 12), idempotency_key="K1", brand_id="b2", **ss)
    b1.add("suprsend", "sA", t(day0, 10), idempotency_key="K2", brand_id="b1", **ss)
    b2.add("suprsend", "sC", t(H1, 9), idempotency_key="K2", brand_id="b1", **ss)
    b3.add("suprsend", "sB", t(H1, 10), idempotency_key="K2", brand_id="b1", **ss)
    # trakio: dave identifies twice (latest traits win), then aliases alice (H2);
    # frank aliases erin in H3; one annotate event.
    b1.add("trakio", "t1", t(H1, 40), message_type="identify", event_name="identify", user_id="dave",
           properties={"plan": "free"})
    b3.add("trakio", "t4", t(H3, 20), message_type="identify", event_name="identify", user_id="dave",
           properties={"plan": "pro"})
    b1.add("trakio", "a1", t(H1, 45), message_type="annotate", event_name="deploy")
    b2.add("trakio", "t2", t(H2, 15), message_type="alias", event_name="alias", user_id="dave",
           alias_ids=["alice"])
    b3.add("trakio", "t3", t(H3, 15), message_type="alias", event_name="alias", user_id="frank",
           alias_ids=["erin"])
    b3.add("trakio", "t5", t(H3, 30), message_type="alias", event_name="alias", user_id="aaron",
           alias_ids=["gina"])
    # orbee: instance I1 is seen with anonymous anon1 (H1), then with user bob (H2, late into
    # H1's hour): anon1, I1 and bob are one shopper.
    ob = {"account_id": "acc", "tracker_id": "trk", "instance_id": "I1", "action": "view", "object": "item",
          "event_name": "view_item"}
    b1.add("orbee", "o1", t(H1, 50), anonymous_id="anon1", **ob)
    b2.add("orbee", "o2", t(H1, 58), received_at=t(H2, 20), user_id="bob", **ob)
    return {H1: b1, H2: b2, H3: b3}


# an alias target is linked as a user id and as an anonymous id (see int_identity_links)
ALICE = user_key("user_id:alice", "user_id:dave", "anonymous_id:alice")
BOB = user_key("user_id:bob", "instance_id:I1", "anonymous_id:anon1")
ERIN = user_key("user_id:erin", "user_id:frank", "anonymous_id:erin")
CAROL = user_key("user_id:carol")
GINA = user_key("user_id:gina", "user_id:aaron", "anonymous_id:gina")

def h2_changed(batches: dict[datetime, Batch], dropped: tuple[str, ...]) -> Batch:
    """H2 delivered again with different contents: the `dropped` events gone, orbee o2 without its user."""
    changed = Batch(H2, quarantined={"orbee": 1})
    for row in batches[H2].rows:
        if row["event_id"] in dropped:
            continue
        values = {k: v for k, v in row.items() if k not in ("source", "event_id", "event_time", "received_at",
                                                              "payload_hash", "line_number", "object_key")}
        if row["event_id"] == "o2":
            values["user_id"] = None
        changed.add(row["source"], row["event_id"], row["event_time"], received_at=row["received_at"],
                    payload=row["payload_hash"], **values)
    return changed


KEPT_EVENTS = {
    "e1", "e2", "e3", "e4", "e9", "e10", "e11", "e12",
    "s1", "s4", "sA", "sB",
    "t1", "t2", "t3", "t4", "t5",
    "o1", "o2",
}


def run_in_order(warehouse: Warehouse, dbt: Dbt, hours: list[datetime], batches: dict[datetime, Batch]) -> None:
    for hour in hours:
        warehouse.load(batches[hour])
        dbt.run_hour(hour)


# --- tests --------------------------------------------------------------------------------------


def test_hourly_runs_give_exact_outcomes(warehouse, dbt):
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2, H3], batches)
    hourly = warehouse.snapshot()
    # every data test (balance, keys, relationships) and unit test, as the hourly DAG runs them
    dbt("build", batch_hour=H3)
    assert warehouse.snapshot() == hourly

    # (a) + (b) + (c): exactly the expected events survive, annotate excluded from events
    assert {r[0] for r in warehouse.query("select event_id from marts.events")} == KEPT_EVENTS
    assert warehouse.query("select event_id from marts.annotations") == [("a1",)]
    # (a) the kept copy of e1 is the earliest delivery, from H1
    assert warehouse.query("select batch_hour, received_at from marts.events where event_id = 'e1'") == [
        (H1, t(H1, 10) + timedelta(seconds=5))
    ]
    # (c) e9 keeps payload p1; the p2 copy from H2 is recorded
    assert warehouse.query("select payload_hash from marts.events where event_id = 'e9'") == [("p1",)]
    assert warehouse.query(
        "select event_id, batch_hour, payload_hash, kept_payload_hash, copy_rank, raw_record::varchar "
        "from marts.event_id_conflicts"
    ) == [("e9", H2, "p2", "p1", 2, json.dumps({"id": "e9", "payload": "p2"}))]  # the copy's own JSON
    # (b) the dedupe decision of every SuprSend delivery
    statuses = dict(warehouse.query(
        "select event_id, dedupe_status from intermediate.int_event_deliveries_classified "
        "where source_name = 'suprsend'"
    ))
    assert statuses == {
        "s1": "kept", "s2": "duplicate_idempotency_key", "s3": "duplicate_idempotency_key", "s4": "kept",
        "sA": "kept", "sC": "duplicate_idempotency_key", "sB": "kept",
    }

    # hourly_load_stats: exact counts, and the balance holds
    stats = warehouse.query(
        "select batch_hour, source_name, records_read, records_valid, records_quarantined, duplicates_removed, "
        "duplicate_event_ids, duplicate_idempotency_keys, conflicting_copies, events_loaded "
        "from marts.hourly_load_stats order by batch_hour, source_name"
    )
    assert stats == [
        (H1, "hackle", 7, 5, 2, 0, 0, 0, 0, 5),
        (H1, "orbee", 1, 1, 0, 0, 0, 0, 0, 1),
        (H1, "suprsend", 3, 3, 0, 1, 0, 1, 0, 2),
        (H1, "trakio", 2, 2, 0, 0, 0, 0, 0, 2),
        (H2, "hackle", 4, 4, 0, 2, 1, 0, 1, 2),
        (H2, "orbee", 2, 1, 1, 0, 0, 0, 0, 1),
        (H2, "suprsend", 3, 3, 0, 2, 0, 2, 0, 1),
        (H2, "trakio", 1, 1, 0, 0, 0, 0, 0, 1),
        (H3, "hackle", 2, 2, 0, 1, 1, 0, 0, 1),
        (H3, "suprsend", 1, 1, 0, 0, 0, 0, 0, 1),
        (H3, "trakio", 3, 3, 0, 0, 0, 0, 0, 3),
    ]
    assert all(r[2] == r[9] + r[4] + r[5] for r in stats)

    # stitching: alias dave-alice, alias frank-erin, orbee I1 with anon1 and bob
    assert dict(warehouse.query("select id_type || ':' || id_value, user_key from marts.identities")) == {
        "user_id:alice": ALICE, "user_id:dave": ALICE, "anonymous_id:alice": ALICE,
        "user_id:bob": BOB, "instance_id:I1": BOB, "anonymous_id:anon1": BOB,
        "user_id:erin": ERIN, "user_id:frank": ERIN, "anonymous_id:erin": ERIN,
        "user_id:carol": CAROL,
        "user_id:gina": GINA, "user_id:aaron": GINA, "anonymous_id:gina": GINA,
    }
    assert dict(warehouse.query("select event_id, user_key from marts.events")) == {
        "e1": ALICE, "e2": ALICE, "e4": ALICE, "t1": ALICE, "t2": ALICE, "t4": ALICE,
        "e3": BOB, "e10": BOB, "e11": BOB, "o1": BOB, "o2": BOB,
        "e9": ERIN, "t3": ERIN,
        "s1": CAROL, "s4": CAROL, "sA": CAROL, "sB": CAROL,
        "e12": GINA, "t5": GINA,
    }
    assert sorted(warehouse.query(
        "select id_a_type, id_a_value, id_b_type, id_b_value, first_event_id, user_key from marts.identity_merges"
    )) == sorted([
        ("anonymous_id", "anon1", "instance_id", "I1", "o1", BOB),
        ("instance_id", "I1", "user_id", "bob", "o2", BOB),
        ("user_id", "alice", "user_id", "dave", "t2", ALICE),
        ("user_id", "erin", "user_id", "frank", "t3", ERIN),
        ("user_id", "aaron", "user_id", "gina", "t5", GINA),
        # each alias target also links as an anonymous id
        ("anonymous_id", "alice", "user_id", "dave", "t2", ALICE),
        ("anonymous_id", "erin", "user_id", "frank", "t3", ERIN),
        ("anonymous_id", "gina", "user_id", "aaron", "t5", GINA),
    ])
    users = {r[0]: r[1:] for r in warehouse.query(
        "select user_key, event_count, cast(traits as varchar), user_ids, anonymous_ids, instance_ids from marts.users"
    )}
    assert users[ALICE] == (6, '{"plan":"pro"}', ["alice", "dave"], ["alice"], [])
    assert users[BOB] == (5, None, ["bob"], ["anon1"], ["I1"])
    assert set(users) == {ALICE, BOB, ERIN, CAROL, GINA}

    # sessions (30 min gap): alice 05:10..05:45 then t2 06:15 (30 min after 05:45: new), t4 07:20
    sessions = warehouse.query(
        "select user_key, started_at, ended_at, event_count from marts.sessions order by user_key, started_at"
    )
    assert [s for s in sessions if s[0] == ALICE] == [
        (ALICE, t(H1, 10), t(H1, 45), 4),
        (ALICE, t(H2, 15), t(H2, 15), 1),
        (ALICE, t(H3, 20), t(H3, 20), 1),
    ]
    # bob: e10 04:50, e3 05:30 (40 min: new), o1 05:50, o2 05:58, then e11 07:05
    assert [s[1:] for s in sessions if s[0] == BOB] == [
        (t(H1, -10), t(H1, -10), 1),
        (t(H1, 30), t(H1, 58), 3),
        (t(H3, 5), t(H3, 5), 1),
    ]
    # erin: e9 05:55 / t3 07:15; carol: sA (day before) / s1 05:00 + sB 05:10 / s4 06:12;
    # gina: e12 03:10 / t5 07:30
    assert len(sessions) == 3 + 3 + 2 + 3 + 2
    daily = warehouse.query(
        "select activity_date, event_count, total_value, distinct_event_names from marts.daily_user_activity "
        "where user_key = ?", [ALICE]
    )
    assert daily == [(H1.date(), 6, 3.0, 4)]


def test_any_order_rerun_full_refresh_and_full_history_agree(tmp_path, warehouse, dbt, monkeypatch, manifest):
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2, H3], batches)
    in_order = warehouse.snapshot()
    assert len(in_order["events"]) == len(KEPT_EVENTS)

    dbt("run", "--full-refresh", batch_hour=H3)
    assert warehouse.snapshot() == in_order

    dbt("run", batch_hour=H3, variables={"full_history": True})
    assert warehouse.snapshot() == in_order

    # a fresh warehouse, hours loaded and run out of order: H3, H1, H2 (H1's copy of e1 arrives
    # after H2's and H3's and must take over as the kept one)
    for order in ([H3, H1, H2], [H2, H3, H1]):
        other_dir = tmp_path / "shuffled-{:%H}-{:%H}-{:%H}".format(*order)
        other_dir.mkdir()
        other = Warehouse(other_dir / "warehouse.duckdb")
        other_dbt = Dbt(other_dir, other, monkeypatch, manifest)
        run_in_order(other, other_dbt, order, batches)
        assert other.snapshot() == in_order, order

    # rerun H2 with different contents: e1's and e9's copies and the dave-alice alias are gone,
    # orbee o2 now carries no user; the result must equal a full refresh of the same landing.
    warehouse.load(h2_changed(batches, dropped=("e1", "e9", "t2")))
    dbt.run_hour(H2)
    rerun = warehouse.snapshot()
    dbt("run", "--full-refresh", batch_hour=H2)
    assert warehouse.snapshot() == rerun
    assert warehouse.query("select count(*) from marts.event_id_conflicts") == [(0,)]
    keys = dict(warehouse.query("select id_value, user_key from marts.identities where id_type = 'user_id'"))
    assert keys["alice"] != keys["dave"]
    assert "bob" in keys and keys["bob"] != dict(warehouse.query(
        "select id_value, user_key from marts.identities where id_type = 'instance_id'"))["I1"]


def test_an_hourly_run_that_finds_a_model_table_missing_builds_it_whole(tmp_path, warehouse, dbt, monkeypatch,
                                                                       manifest):
    """A new incremental model, one dropped by hand, or a view now materialized as a table
    (int_identity_links until 2026-11-28) is built from all of its inputs by the next hourly run,
    not from the affected hours alone: the marts equal those of hour-by-hour runs. A column a model
    no longer has (int_events_unioned.raw_record until 2026-12-06) is dropped, not a failed hour."""
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2, H3], batches)
    expected = warehouse.snapshot()
    expected_links = warehouse.query("select count(*) from intermediate.int_identity_links")

    other_dir = tmp_path / "rebuilt"
    other_dir.mkdir()
    other = Warehouse(other_dir / "warehouse.duckdb")
    other_dbt = Dbt(other_dir, other, monkeypatch, manifest)
    run_in_order(other, other_dbt, [H1, H2], batches)
    with duckdb.connect(str(other.path)) as con:
        for table in ("intermediate.int_event_deliveries_classified", "intermediate.int_events_deduped",
                      "marts.events", "marts.sessions", "marts.daily_user_activity", "marts.annotations",
                      "marts.hourly_load_stats", "marts.event_id_conflicts", "intermediate.int_identity_links"):
            con.execute(f"drop table {table}")
        con.execute("create view intermediate.int_identity_links as select 1 as placeholder")
        con.execute("alter table intermediate.int_events_unioned add column raw_record json default '{}'")
    other.load(batches[H3])
    other_dbt.run_hour(H3)
    assert other.snapshot() == expected
    assert other.query("select count(*) from information_schema.columns where table_name = 'int_events_unioned' "
                       "and column_name = 'raw_record'") == [(0,)]
    assert other.query("select count(*) from intermediate.int_identity_links") == expected_links
    assert expected_links[0][0] > 0


def test_an_hourly_run_rewrites_only_the_events_it_affects(warehouse, dbt):
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2], batches)
    before = warehouse.snapshot()

    # mark a row in an event hour that a rerun of H1 has no reason to touch (04:00, e10 came late
    # in H2), one of an event it must recompute (e2, H1's own), and one of an event it has no reason to
    # touch in an hour it recomputes (t2, H2's alias in 06:00, where H2's copy of s1's group lands)
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("update marts.events set event_name = 'marker' where event_id in ('e10', 'e2', 't2')")

    warehouse.load(batches[H1])
    dbt.run_hour(H1)
    # H1's rows are in 05:00, 03:00 (e12) and (sA) the day before; e1 and e9 have copies in 05:00; s1's
    # idempotency group (b1, K1) has s3 in 06:00, sA's (b1, K2) has sC in 05:00
    assert sorted(r[0] for r in warehouse.query("select event_hour from intermediate.int_run_scope")) == [
        H1 - timedelta(days=1), H1 - timedelta(hours=2), H1, H2,
    ]
    names = dict(warehouse.query(
        "select event_id, event_name from marts.events where event_id in ('e10', 'e2', 't2')"))
    assert names == {"e10": "marker", "e2": "click", "t2": "marker"}

    # A rerun of H2, whose events include e10 and t2, recomputes them and leaves exactly the tables of
    # before (daily_user_activity and sessions too: they are recomputed for bob's and dave's changed days).
    warehouse.load(batches[H2])
    dbt.run_hour(H2)
    assert warehouse.snapshot() == before


def test_an_hourly_run_recomputes_only_the_identity_components_its_events_touch(warehouse, dbt):
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2, H3], batches)
    before = warehouse.snapshot()

    # mark the map rows of two people: bob's (H2's e10 and o2 are his) and gina's (H2 has no event of
    # gina or aaron, nor a link of theirs). A recomputed component gets its real root again.
    with duckdb.connect(str(warehouse.path)) as con:
        for key, marker in ((BOB, "marker-bob"), (GINA, "marker-gina")):
            con.execute("update intermediate.int_identity_map set component_root = ? where user_key = ?", [marker, key])
        # and their pairs in identity_merges: only the pair H2 links (o2: I1 and bob) is rewritten
        con.execute("update marts.identity_merges set link_type = 'marker' where user_key in (?, ?)", [BOB, GINA])

    warehouse.load(batches[H2])
    dbt.run_hour(H2)
    # what H2's events asserted before the rerun: the ids of their kept copies (e1, e4 alice, e9 erin,
    # e10 and o2 bob, t2 dave, s1, s4, sA, sB carol; s2, s3, sC were dropped) and t2's and o2's links.
    # The rerun asserts the same, so it recomputes no component: gina's and bob's markers both stay.
    assert sorted(warehouse.query(
        "select event_id, id_type || ':' || id_value, coalesce(linked_id_type || ':' || linked_id_value, '') "
        "from intermediate.int_run_scope_previous_assertions")) == sorted([
        ("e1", "user_id:alice", ""), ("e4", "user_id:alice", ""), ("e9", "user_id:erin", ""),
        ("e10", "user_id:bob", ""), ("o2", "user_id:bob", ""), ("t2", "user_id:dave", ""),
        ("s1", "user_id:carol", ""), ("s4", "user_id:carol", ""), ("sA", "user_id:carol", ""),
        ("sB", "user_id:carol", ""),
        ("t2", "user_id:dave", "user_id:alice"), ("t2", "user_id:dave", "anonymous_id:alice"),
        ("o2", "instance_id:I1", "user_id:bob"),
    ])
    roots = dict(warehouse.query(
        "select id_type || ':' || id_value, component_root from intermediate.int_identity_map "
        "where user_key in (?, ?)", [BOB, GINA]))
    assert roots == {
        "user_id:bob": "marker-bob", "instance_id:I1": "marker-bob", "anonymous_id:anon1": "marker-bob",
        "user_id:gina": "marker-gina", "user_id:aaron": "marker-gina", "anonymous_id:gina": "marker-gina",
    }
    assert dict(warehouse.query(
        "select id_a_value || '-' || id_b_value, link_type from marts.identity_merges where user_key in (?, ?)",
        [BOB, GINA])) == {
        "I1-bob": "orbee_instance", "anon1-I1": "marker", "aaron-gina": "marker", "gina-aaron": "marker"}
    after = warehouse.snapshot()
    assert {k: v for k, v in after.items() if k != "identity_merges"} == {
        k: v for k, v in before.items() if k != "identity_merges"}

    # H2 again without t2 (dave's alias of alice) and with o2 carrying no user: those assertions are
    # gone, so alice's and bob's people are recomputed (and split); gina's still is not
    warehouse.load(h2_changed(batches, dropped=("t2",)))
    dbt.run_hour(H2)
    roots = dict(warehouse.query(
        "select id_type || ':' || id_value, component_root from intermediate.int_identity_map "
        "where id_value in ('bob', 'I1', 'anon1', 'gina', 'aaron', 'alice', 'dave')"))
    assert roots == {
        "user_id:bob": "user_id:bob", "instance_id:I1": "anonymous_id:anon1",
        "anonymous_id:anon1": "anonymous_id:anon1",
        "user_id:gina": "marker-gina", "user_id:aaron": "marker-gina", "anonymous_id:gina": "marker-gina",
        "user_id:alice": "user_id:alice", "user_id:dave": "user_id:dave",
        # alice as an anonymous id came only from t2's alias: forgotten, a tombstone for this run
        "anonymous_id:alice": None,
    }


def test_hourly_data_tests_check_the_rewritten_hours_and_a_full_scope_test_checks_every_row(warehouse, dbt):
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2, H3], batches)
    # H3's run rewrote the day before, 05:00 and 07:00 (test_run_scope_of_each_hour), not 04:00 (e10)
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("insert into marts.events select * from marts.events where event_id = 'e10'")
    dbt("test", "--select", "events", batch_hour=H3)
    with pytest.raises(AssertionError, match="unique_events_event_id: fail"):
        dbt("test", "--select", "events")  # full scope, as the daily warehouse_maintenance runs it

    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("delete from marts.events where event_id = 'e10' and rowid = (select max(rowid) from marts.events)")
        con.execute("insert into marts.events select * from marts.events where event_id = 'e11'")  # 07:00
    with pytest.raises(AssertionError, match="unique_events_event_id: fail"):
        dbt("test", "--select", "events", batch_hour=H3)

    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("delete from marts.events where event_id = 'e11' and rowid = (select max(rowid) from marts.events)")
        con.execute("update marts.events set message_type = 'screen' where event_id = 'e10'")  # 04:00
    dbt("test", "--select", "events", batch_hour=H3)
    with pytest.raises(AssertionError, match="accepted_values_events_message_type__track__identify__alias__page: fail"):
        dbt("test", "--select", "events")


def test_the_landing_tests_check_the_runs_dump_hour_and_a_full_scope_test_checks_every_row(warehouse, dbt):
    batches = scenario()
    for hour in (H1, H2):
        warehouse.load(batches[hour])
    landing_tests = ("--select", "source:landing.events")
    dbt("test", *landing_tests, batch_hour=H2)
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("update landing.events set message_type = 'screen' where batch_hour = ? and event_id = ?",
                    [H1, batches[H1].rows[0]["event_id"]])
    dbt("test", *landing_tests, batch_hour=H2)  # H2's load wrote no such row
    bad_type = "source_accepted_values_landing_events_message_type__track__identify__alias__page__annotate: fail"
    with pytest.raises(AssertionError, match=bad_type):
        dbt("test", *landing_tests)  # full scope, as the daily warehouse_maintenance runs it
    with pytest.raises(AssertionError, match=bad_type):
        dbt("test", *landing_tests, batch_hour=H1)


def test_the_load_stats_balance_test_checks_the_dump_hours_the_run_rewrote(warehouse, dbt):
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2, H3], batches)
    later = H3 + timedelta(days=2)  # its one event touches no earlier event hour
    warehouse.load(Batch(later).add("hackle", "e-later", t(later, 5), user_id="bob", event_name="view"))
    dbt.run_hour(later)
    balance = ("--select", "assert_hourly_load_stats_match_landing")
    dbt("test", *balance, batch_hour=later)
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("update marts.hourly_load_stats set events_loaded = events_loaded + 1 "
                    "where batch_hour = ? and source_name = 'hackle'", [H1])
    dbt("test", *balance, batch_hour=later)  # the later hour's run rewrote no stats of H1
    with pytest.raises(AssertionError, match="assert_hourly_load_stats_match_landing: fail: Got 1 result"):
        dbt("test", *balance)  # full scope, as the daily warehouse_maintenance runs it
    with pytest.raises(AssertionError, match="assert_hourly_load_stats_match_landing: fail: Got 1 result"):
        dbt("test", *balance, batch_hour=H1)


def test_the_balance_test_fails_when_a_kept_event_is_missing_from_the_marts_or_there_twice(warehouse, dbt):
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2, H3], batches)
    balance = ("--select", "assert_every_kept_delivery_reaches_a_mart")
    dbt("test", *balance, batch_hour=H3)
    with duckdb.connect(str(warehouse.path)) as con:  # e11 (07:00) is one of H3's events
        con.execute("create table kept_e11 as select * from marts.events where event_id = 'e11'")
        con.execute("delete from marts.events where event_id = 'e11'")
    with pytest.raises(AssertionError, match="assert_every_kept_delivery_reaches_a_mart: fail: Got 1 result"):
        dbt("test", *balance, batch_hour=H3)
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("insert into marts.events select * from kept_e11 union all select * from kept_e11")
    with pytest.raises(AssertionError, match="assert_every_kept_delivery_reaches_a_mart: fail: Got 1 result"):
        dbt("test", *balance, batch_hour=H3)
    # the failing row names the event and both counts (the test's SQL as this hourly run compiled it)
    target = Path(dbt.base[dbt.base.index("--target-path") + 1])
    compiled = (target / "compiled/event_pipeline/tests/assert_every_kept_delivery_reaches_a_mart.sql").read_text()
    assert warehouse.query(f"select event_id, kept_deliveries, mart_rows, problem from ({compiled})") == [
        ("e11", 1, 2, "in a mart but not kept")]


def declared_not_null(manifest) -> set[tuple[str, str]]:
    """(mart, column) of every column whose contract declares a not_null constraint."""
    return {(node.name, column.name)
            for node in manifest.nodes.values() if node.resource_type == "model" and node.name in MARTS
            for column in node.columns.values()
            if any(constraint.type == "not_null" for constraint in column.constraints)}


def not_null_columns(warehouse: Warehouse) -> set[tuple[str, str]]:
    return set(warehouse.query("select table_name, column_name from information_schema.columns "
                               "where table_schema = 'marts' and is_nullable = 'NO'"))


def test_the_marts_enforce_their_declared_not_null_constraints_also_in_an_existing_warehouse(warehouse, dbt, manifest):
    declared = declared_not_null(manifest)
    # the non-key columns carry a constraint instead of a not_null data test (macros/contract_not_null.sql)
    assert {("sessions", "total_value"), ("events", "event_hour"), ("hourly_load_stats", "records_read")} <= declared
    batches = scenario()
    run_in_order(warehouse, dbt, [H1, H2], batches)
    assert not_null_columns(warehouse) == declared
    with duckdb.connect(str(warehouse.path)) as con, pytest.raises(duckdb.ConstraintException, match="total_value"):
        con.execute("update marts.sessions set total_value = null")

    # incremental marts created before a column was declared not_null: the next hourly run adds the constraint
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("alter table marts.sessions alter column total_value drop not null")
        con.execute("alter table marts.events alter column event_hour drop not null")
    assert declared - not_null_columns(warehouse) == {("sessions", "total_value"), ("events", "event_hour")}
    warehouse.load(batches[H3])
    dbt.run_hour(H3)
    assert not_null_columns(warehouse) == declared

    # ... unless the existing rows break it: the run fails before writing and says what to do
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute("alter table marts.sessions alter column total_value drop not null")
        con.execute("update marts.sessions set total_value = null where session_number = 1")
        nulls = con.execute("select count(*) from marts.sessions where total_value is null").fetchall()[0][0]
    assert nulls > 0
    with pytest.raises(AssertionError, match=rf"sessions\"?\.total_value holds {nulls} NULL\(s\), but the model "
                                             r"contract now declares it not_null: rebuild .* `dbt build "
                                             r"--full-refresh --select sessions\+`"):
        dbt.run_hour(H3)
    assert warehouse.query("select count(*) from marts.sessions where total_value is null") == [(nulls,)]
    dbt("run", "--full-refresh", "--select", "sessions+", batch_hour=H3)  # the mend the message names
    assert warehouse.query("select count(*) from marts.sessions where total_value is null") == [(0,)]
    assert not_null_columns(warehouse) == declared


def published_differences(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows of each mart that differ between the warehouse and the attached snapshot `published`."""
    return {mart: con.execute(
        f"select count(*) from (select * from marts.{mart} except all select * from published.marts.{mart} "
        f"union all (select * from published.marts.{mart} except all select * from marts.{mart}))").fetchall()[0][0]
        for mart in MARTS}


def test_the_marts_change_log_lets_each_publish_rewrite_only_the_logged_rows(warehouse, dbt, tmp_path):
    from event_pipeline.snapshot import CHANGE_LOGGED, publish_snapshot

    batches = scenario()
    target = tmp_path / "analytics.duckdb"

    def publish(hour: datetime | None) -> dict[str, str]:
        with duckdb.connect(str(warehouse.path)) as con:
            actions = publish_snapshot(con, target, [("marts", mart) for mart in MARTS], hour)["actions"]
            con.execute(f"attach '{target}' as published (read_only)")
            try:
                assert published_differences(con) == dict.fromkeys(MARTS, 0)
            finally:
                con.execute("detach published")
        return {name: actions[name] for name in CHANGE_LOGGED}

    logged: dict[datetime, dict[str, int]] = {}  # the keys each hour's run logged, per mart
    for hour in (H1, H2, H3):
        warehouse.load(batches[hour])
        dbt.run_hour(hour)
        logged[hour] = dict(warehouse.query(
            "select table_name, count(distinct key_hash) from audit.mart_changes group by all"))
        actions = publish(hour)
        if hour != H1:  # (the first publish copies every table)
            assert all(action.endswith("keys replaced (change log)") for action in actions.values()), actions
    assert warehouse.query("select count(*) from audit.mart_changes") == [(0,)]  # applied and emptied
    # a rerun of H1 rewrites its partitions with the same rows: the log names no key. The publish writes
    # the spare in place (the snapshot H2's publish wrote): it applies the keys H3's run logged, no more
    warehouse.load(batches[H1])
    dbt.run_hour(H1)
    assert warehouse.query("select count(*) from audit.mart_changes") == [(0,)]
    assert publish(H1) == {name: f"{logged[H3][name]} keys replaced (change log)" for name in CHANGE_LOGGED}

    # a full-scope run logs each table whole (so do a first build and a full refresh, from the pre-hook):
    # the publish diffs the rows instead
    dbt("run")
    assert sorted(warehouse.query("select table_name, key_hash from audit.mart_changes")) == sorted(
        (name, None) for name in CHANGE_LOGGED)
    assert set(publish(None).values()) == {"unchanged"}
    dbt("run", "--full-refresh")
    assert sorted(warehouse.query("select table_name, key_hash from audit.mart_changes")) == sorted(
        (name, None) for name in CHANGE_LOGGED)
    assert set(publish(None).values()) == {"unchanged"}


def test_change_logged_marts_log_the_key_the_snapshot_publish_uses():
    from event_pipeline.snapshot import CHANGE_LOGGED, ROW_KEYS

    nodes = json.loads(MANIFEST_PATH.read_text())["nodes"]
    logged = {f"marts.{node['name']}": tuple(node["config"]["change_log_key"]) for node in nodes.values()
              if node["resource_type"] == "model" and node["config"].get("change_log_key")}
    assert logged == {name: ROW_KEYS[name] for name in CHANGE_LOGGED}


def test_run_scope_of_each_hour(warehouse, dbt):
    batches = scenario()
    expected = {
        H1: [H1 - timedelta(days=1), H1 - timedelta(hours=2), H1],  # (H2's s3 is not loaded yet)
        # e1 and e9 copies (05), e10 (04), e4 (05), s3 (06) joins (b1, K1) with s1 and s2 (05),
        # s4 (06), sC (05) joins (b1, K2) with sA (day before), t2 (06), o2 (05)
        H2: [H1 - timedelta(days=1), H1 - timedelta(hours=1), H1, H2],
        H3: [H1 - timedelta(days=1), H1, H3],
    }
    # the events each run reclassifies: its own, the other copies of those, and their idempotency groups
    expected_events = {
        H1: {"e1", "e2", "e3", "e9", "e12", "s1", "s2", "sA", "t1", "a1", "o1"},
        # e1 and e9 have H1 copies; s3 brings (b1, K1)'s s1 and s2, sC brings (b1, K2)'s sA
        H2: {"e1", "e9", "e10", "e4", "s3", "s4", "sC", "t2", "o2", "s1", "s2", "sA"},
        # sB brings (b1, K2): sA and sC
        H3: {"e11", "e1", "sB", "sA", "sC", "t3", "t4", "t5"},
    }
    # the people whose sessions and daily activity each run rewrites: the keys those events had in the
    # events mart before the run and have after it (H2: e1 moves from alice's own key to ALICE, dave's alias)
    expected_people = {
        H1: {user_key("user_id:alice"), user_key("user_id:bob"), user_key("user_id:erin"),
             user_key("user_id:gina"), CAROL, user_key("user_id:dave"),
             user_key("anonymous_id:anon1", "instance_id:I1")},
        H2: {user_key("user_id:alice"), ALICE, user_key("user_id:erin"), BOB, CAROL},
        H3: {ALICE, BOB, CAROL, ERIN, GINA},
    }
    # the ids whose rows in the events mart the run restamps: H2's alias and link merge alice with dave
    # (alice's e1, e2 and dave's t1 get the merged key) and bob with the anon1 shopper (bob's e3); H3
    # merges erin with frank (e9) and gina with aaron (e12)
    expected_restamped = {H1: set(), H2: {"user_id:alice", "user_id:dave", "user_id:bob"},
                          H3: {"user_id:erin", "user_id:gina"}}
    for hour in (H1, H2, H3):
        warehouse.load(batches[hour])
        dbt.run_hour(hour)
        # the events mart applied this run's identity map, so the next run compares only the ids its build of
        # the map changes (H1 had no events mart to compare)
        assert events_applied_the_current_map(warehouse), hour
        assert restamp_compared(dbt) == ("every event" if hour == H1 else "changed ids"), hour
        assert sorted(r[0] for r in warehouse.query("select event_hour from intermediate.int_run_scope")) == (
            expected[hour]
        ), hour
        assert {r[0] for r in warehouse.query(
            "select distinct identity_type || ':' || identity_value from intermediate.int_events_restamped")} == (
            expected_restamped[hour]), hour
        assert {r[0] for r in warehouse.query("select event_id from intermediate.int_run_scope_events")} == (
            expected_events[hour]), hour
        assert {r[0] for r in warehouse.query("select user_key from intermediate.int_run_scope_user_days")} == (
            expected_people[hour]), hour


def restamp_compared(dbt: Dbt) -> str:
    """What the last run's int_events_restamped compared with the map: 'changed ids' or 'every event'."""
    target = Path(dbt.base[dbt.base.index("--target-path") + 1])
    sql = (target / "run/event_pipeline/models/intermediate/int_events_restamped.sql").read_text()
    return "changed ids" if "compared the ids the map changed" in sql else "every event"


def events_applied_the_current_map(warehouse: Warehouse) -> bool:
    """Whether the fingerprint the events model recorded is the current identity map's."""
    return warehouse.query(
        "select fingerprint = (select count(*) || ':' || coalesce(sum(hash(id_type, id_value, user_key))::hugeint, 0) "
        "from intermediate.int_identity_map) from audit.events_applied_identity_map") == [(True,)]


def stale_events(warehouse: Warehouse) -> set[str]:
    """Events whose row carries a user_key the identity map no longer gives their id."""
    return {row[0] for row in warehouse.query(
        "select event_id from marts.events left join intermediate.int_identity_map as identity_map "
        "on identity_type = id_type and identity_value = id_value "
        "where events.user_key is distinct from identity_map.user_key")}


def test_a_run_that_failed_between_the_identity_map_and_the_events_mart_is_healed_by_the_next(warehouse, dbt):
    batches = scenario()
    run_in_order(warehouse, dbt, [H1], batches)
    # H2's run stops after the identity map (as if the events mart's build had failed): its alias and link
    # merge alice with dave and bob with the anon1 shopper, whose events the mart still stamps as before
    warehouse.load(batches[H2])
    dbt("run", "--exclude", "events+", batch_hour=H2)
    assert not events_applied_the_current_map(warehouse)
    assert stale_events(warehouse) == {"e1", "e2", "t1", "e3"}
    with pytest.raises(AssertionError, match="assert_events_carry_their_ids_user_key: fail: Got 4 results"):
        dbt("test", "--select", "assert_events_carry_their_ids_user_key")  # full scope, as the daily check runs

    # the next hour's run finds the mart a build behind: it compares every event, not only its own changed ids
    # (erin with frank, gina with aaron), and restamps H2's too
    warehouse.load(batches[H3])
    dbt.run_hour(H3)
    assert restamp_compared(dbt) == "every event"
    assert {r[0] for r in warehouse.query(
        "select distinct identity_type || ':' || identity_value from intermediate.int_events_restamped")} == {
        "user_id:alice", "user_id:dave", "user_id:bob", "user_id:erin", "user_id:gina"}
    assert stale_events(warehouse) == set()
    dbt("test", "--select", "assert_events_carry_their_ids_user_key")
    assert events_applied_the_current_map(warehouse)

    dbt.run_hour(H3)  # back in step: a rerun compares only the ids changed, and finds none stale
    assert restamp_compared(dbt) == "changed ids"
    assert warehouse.query("select count(*) from intermediate.int_events_restamped") == [(0,)]


def _dbt_invocations(log_path: Path) -> list[str]:
    """dbt.log split into one text per invocation (each starts with a `=====` banner)."""
    return [part for part in log_path.read_text().split("\n============================== ")[1:]]


def test_the_pipelines_hourly_builds_keep_the_parse_and_read_the_hour_at_run_time(tmp_path, monkeypatch):
    """pipeline.dbt_build passes the hour in EVENTS_BATCH_HOUR, not --vars: every hour's build reuses the parse
    of the home (pipeline.dbt_parse, which the benchmark runs before it times an hour), still recomputes only
    its own hour's scope, and a full-scope build stays full scope even when the caller's environment holds an
    hour."""
    from event_pipeline import pipeline
    from event_pipeline.settings import get_settings

    monkeypatch.setenv("EVENTS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    settings = get_settings()
    settings.warehouse_path.parent.mkdir(parents=True)
    warehouse = Warehouse(settings.warehouse_path)
    batches = scenario()
    scope = "select event_hour from intermediate.int_run_scope order by 1"
    # the nodes of the committed manifest (tests/test_dag_integrity.py fails when it is stale)
    assert pipeline.dbt_parse(settings)["nodes"] == len(json.loads(MANIFEST_PATH.read_text())["nodes"])
    for hour in (H1, H2):
        warehouse.load(batches[hour])
        pipeline.dbt_build(hour, settings)
    assert [r[0] for r in warehouse.query(scope)] == [H1 - timedelta(days=1), H1 - timedelta(hours=1), H1, H2]
    parse, first, second = _dbt_invocations(settings.home / "dbt_logs" / "dbt.log")
    assert "Unable to do partial parsing because saved manifest not found" in parse
    for build in (first, second):
        assert "Unable to do partial parsing" not in build and "no changes found, skipping parsing" in build, (
            build[:3000])
    hourly = warehouse.snapshot()

    monkeypatch.setenv(BATCH_HOUR_ENV, dbt_batch_hour(H2))  # left over in the caller's environment
    pipeline.dbt_build(None, settings, full_refresh=True)
    assert [r[0] for r in warehouse.query(scope)] == sorted(
        {r[0] for r in warehouse.query("select distinct event_hour from intermediate.int_events_unioned")})
    assert warehouse.snapshot() == hourly
    assert os.environ[BATCH_HOUR_ENV] == dbt_batch_hour(H2)  # the caller's environment is given back


def test_dbt_docs_site_has_every_model_its_grain_and_the_catalog(warehouse, dbt, tmp_path):
    """`make dbt-docs`: the site documents every model with its grain, and the catalog comes from the warehouse."""
    from event_pipeline.dbt_cosmos import build_docs

    run_in_order(warehouse, dbt, [H1], scenario())
    site = build_docs(out_dir=tmp_path / "docs", warehouse=warehouse.path)
    assert site == tmp_path / "docs" / "static_index.html"
    manifest = json.loads((tmp_path / "docs" / "manifest.json").read_text())
    catalog = json.loads((tmp_path / "docs" / "catalog.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert set(MARTS) <= set(models)
    assert [name for name, node in models.items() if "one row per" not in node["description"].lower()] == []
    events_columns = catalog["nodes"]["model.event_pipeline.events"]["columns"]
    assert {"event_id", "user_key", "event_time"} <= set(events_columns)
    # the site embeds both documents: it opens from disk without a server
    assert '"model.event_pipeline.events"' in site.read_text()
