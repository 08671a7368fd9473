"""Segment rules, RFM and lifecycle evaluated on hand-made marts: exact members for each rule kind."""

from __future__ import annotations

import itertools
import json
import re
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from event_pipeline.segments import evaluate_segments

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "segments" / "catalog.yml"
AS_OF = datetime(2024, 5, 1, 12)
_ids = itertools.count()


def span(text: str) -> timedelta:
    """'3d', '2h', '30m', '1d2h' -> timedelta."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    parts = re.findall(r"(\d+(?:\.\d+)?)([dhms])", text)
    assert parts, text
    return timedelta(**{units[u]: float(n) for n, u in parts})


def ago(text: str, as_of: datetime = AS_OF) -> datetime:
    return as_of - span(text)


class Marts:
    """marts.events / marts.users in a DuckDB connection, filled by tests."""

    def __init__(self, con: duckdb.DuckDBPyConnection, value_column: str = "value") -> None:
        self.con = con
        con.execute("create schema if not exists marts")
        con.execute(
            "create table marts.events (event_id varchar, user_key varchar, source varchar, message_type varchar, "
            f"event_name varchar, {value_column} double, properties json, event_time timestamp, "
            # the dump hour that delivered the event: here, always the event's own hour
            "batch_hour timestamp as (date_trunc('hour', event_time)))"
        )
        con.execute(
            "create table marts.users (user_key varchar, first_seen_at timestamp, last_seen_at timestamp, traits json)"
        )

    def event(self, user: str, name: str, at: datetime | str, value: float | None = None, **properties) -> None:
        at = ago(at) if isinstance(at, str) else at
        self.con.execute(
            "insert into marts.events values (?, ?, 'test', 'track', ?, ?, ?, ?)",
            [f"e{next(_ids)}", user, name, value, json.dumps(properties), at],
        )

    def user(self, user: str, first_seen: datetime | str = "60d", traits: dict | None = None) -> None:
        first = ago(first_seen) if isinstance(first_seen, str) else first_seen
        self.con.execute(
            "insert into marts.users values (?, ?, ?, ?)",
            [user, first, first, None if traits is None else json.dumps(traits)],
        )

    def users(self, *names: str, first_seen: str = "60d") -> None:
        for name in names:
            self.user(name, first_seen)


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.fixture
def marts(con) -> Marts:
    return Marts(con)


def write_definitions(directory: Path, *documents: str, catalog: bool = True) -> Path:
    """Each document is one YAML file; the shipped catalog is copied so event names are checked."""
    directory.mkdir(parents=True, exist_ok=True)
    if catalog:
        (directory / "catalog.yml").write_text(CATALOG.read_text())
    for i, document in enumerate(documents):
        (directory / f"def_{i}.yml").write_text(textwrap.dedent(document))
    return directory


def rule(key: str, condition: str) -> str:
    """A rule definition with the given (YAML, unindented) condition."""
    body = textwrap.indent(textwrap.dedent(condition).strip(), "  ")
    return f"key: {key}\nkind: rule\ndescription: test {key}\nowner: tests\ncondition:\n{body}\n"


def members(con, segment_key: str, as_of: datetime = AS_OF) -> set[str]:
    rows = con.execute(
        "select user_key from segments.membership_snapshots where as_of = ? and segment_key = ?",
        [as_of, segment_key],
    ).fetchall()
    return {r[0] for r in rows}


def metrics(con, segment_key: str, as_of: datetime = AS_OF) -> dict[str, dict]:
    rows = con.execute(
        "select user_key, metrics from segments.membership_snapshots where as_of = ? and segment_key = ?",
        [as_of, segment_key],
    ).fetchall()
    return {user: json.loads(m) for user, m in rows}


def evaluate(con, tmp_path: Path, *documents: str, as_of: datetime = AS_OF) -> dict[str, int]:
    return evaluate_segments(con, as_of, write_definitions(tmp_path / "defs", *documents))


# ---- rule kinds -----------------------------------------------------------------------------------


def test_count_at_least_and_at_most_within_window(con, marts, tmp_path):
    marts.users("a", "b", "c", "d", "e")
    for t in ("1h", "2d", "6d"):
        marts.event("a", "login", t)
    marts.event("b", "login", "3d")
    for t in ("8d", "9d", "10d", "11d"):
        marts.event("b", "login", t)  # outside the 7 day window
    for t in ("1h", "2h", "3h", "4h", "5h"):
        marts.event("d", "login", t)
    marts.event("e", "login", AS_OF - timedelta(days=7))  # window start is inclusive
    marts.event("e", "login", AS_OF)  # window end (as_of) is exclusive
    marts.event("e", "login", AS_OF + timedelta(hours=1))
    marts.event("c", "page_view", "1h")
    sizes = evaluate(
        con,
        tmp_path,
        rule("frequent", "event: login\nwindow: {last: 7d}\ncount: {at_least: 3}"),
        rule("rare", "event: login\nwindow: 7d\ncount: {at_most: 1}"),
        rule("did_login", "event: login\nwindow: 7d"),
    )
    assert members(con, "frequent") == {"a", "d"}
    assert members(con, "rare") == {"b", "c", "e"}
    assert members(con, "did_login") == {"a", "b", "d", "e"}
    assert sizes == {"did_login": 4, "frequent": 2, "rare": 3}
    assert metrics(con, "frequent")["d"] == {"login_count_last_7d": 5}


def test_reads_the_dbt_marts_event_value_column_and_skips_unattributed_events(tmp_path):
    con = duckdb.connect()
    marts = Marts(con, value_column="event_value")
    marts.users("a", "b")
    marts.event("a", "purchase", "1h", 30)
    marts.event("b", "purchase", "1h", 10)
    marts.event(None, "purchase", "1h", 99)
    evaluate(con, tmp_path, rule("big", "event: purchase\nwindow: 7d\nsum: {of: value, at_least: 20}"))
    assert members(con, "big") == {"a"}


def test_missing_marts_fail_clearly(tmp_path):
    con = duckdb.connect()
    with pytest.raises(RuntimeError, match=r"marts.events does not exist; marts.users does not exist"):
        evaluate(con, tmp_path, rule("x", "event: login\nwindow: 7d"))


def test_window_between_two_points_in_the_past(con, marts, tmp_path):
    marts.users("a", "b", "c")
    marts.event("a", "login", "10d")
    marts.event("b", "login", "3d")
    marts.event("c", "login", "40d")
    evaluate(con, tmp_path, rule("lapsed", "event: login\nwindow: {from: 30d, to: 7d}"))
    assert members(con, "lapsed") == {"a"}


def test_property_and_value_filters(con, marts, tmp_path):
    marts.users("a", "b", "c", "d", "e", "f")
    marts.event("a", "purchase", "1h", 10, platform="ios", qty=3, is_discount=False)
    marts.event("b", "purchase", "1h", 10, platform="web", qty=3, is_discount=True)
    marts.event("c", "purchase", "1h", 10, platform="ios", qty=1)
    marts.event("d", "purchase", "1h", 0, platform="android", qty="5")  # value filter fails
    marts.event("e", "purchase", "1h", 5, platform="android", qty=2.0, coupon="SPRING")
    marts.event("f", "view_item", "1h", 10, platform="ios", qty=3)  # other event
    evaluate(
        con,
        tmp_path,
        rule(
            "mobile_bulk",
            """
            event: purchase
            window: 7d
            where: {platform: {in: [ios, android]}, qty: {at_least: 2}}
            value: {more_than: 0}
            """,
        ),
        rule("full_price", "event: purchase\nwindow: 7d\nwhere: {is_discount: false}"),
        rule("not_web", "event: purchase\nwindow: 7d\nwhere: {platform: {not_equals: web}, qty: 3}"),
        rule("with_coupon", "event: purchase\nwindow: 7d\nwhere: {coupon: {exists: true}}"),
    )
    assert members(con, "mobile_bulk") == {"a", "e"}
    assert members(con, "full_price") == {"a"}
    assert members(con, "not_web") == {"a"}
    assert members(con, "with_coupon") == {"e"}


@pytest.mark.parametrize(
    ("measure", "expected"),
    [
        ("sum: {of: value, at_least: 40}", {"a", "b"}),
        ("sum: {of: value, less_than: 1}", {"c", "e"}),  # no purchases sum to 0; e's are outside the window
        ("min: {of: value, at_most: 5}", {"d"}),
        ("max: {of: value, more_than: 40}", {"b"}),
        ("avg: {of: value, equals: 20}", {"a"}),
        ("avg: {of: value, at_least: 5, at_most: 20}", {"a", "d"}),
        ("sum: {of: properties.amount, at_least: 7}", {"a", "d"}),
    ],
)
def test_value_aggregates(con, marts, tmp_path, measure, expected):
    marts.users("a", "b", "c", "d", "e")
    marts.event("a", "purchase", "1h", 10, amount=3)
    marts.event("a", "purchase", "2h", 30, amount="4")
    marts.event("b", "purchase", "1d", 50)
    marts.event("d", "purchase", "1h", 5, amount=2.5)
    marts.event("d", "purchase", "2h", 5, amount=2.5)
    marts.event("d", "purchase", "3h", 5, amount=2.5)
    marts.event("e", "purchase", "40d", 100)
    evaluate(con, tmp_path, rule("spend", f"event: purchase\nwindow: 30d\n{measure}"))
    assert members(con, "spend") == expected


def test_funnel_a_then_b_within_t(con, marts, tmp_path):
    marts.users("a", "b", "c", "d", "e", "f", "g", "h")
    marts.event("a", "view_item", "5h")
    marts.event("a", "purchase", "4h30m")
    marts.event("b", "purchase", "5h")  # B before A does not count
    marts.event("b", "view_item", "4h30m")
    marts.event("c", "view_item", "5h")
    marts.event("c", "purchase", "3h")  # too late: 2h after
    marts.event("d", "view_item", "5h")
    marts.event("d", "view_item", "4h")
    marts.event("d", "purchase", "3h30m")  # within 1h of the second view
    marts.event("e", "view_item", "2h")
    marts.event("e", "purchase", "2h")  # same instant: not "then"
    marts.event("f", "view_item", "8d")  # A outside the window
    marts.event("f", "purchase", "7d23h50m")
    for t, name in (("10h", "view_item"), ("9h30m", "add_to_cart"), ("9h", "purchase")):
        marts.event("g", name, t)
    for t, name in (("10h", "view_item"), ("9h30m", "purchase"), ("9h", "add_to_cart")):
        marts.event("h", name, t)
    evaluate(
        con,
        tmp_path,
        rule("viewed_then_bought", "funnel: {steps: [view_item, purchase], within: 1h}\nwindow: 7d"),
        rule(
            "three_steps",
            "funnel: {steps: [view_item, add_to_cart, {event: purchase}], within: 2h}\nwindow: 7d",
        ),
    )
    assert members(con, "viewed_then_bought") == {"a", "d", "g", "h"}
    assert members(con, "three_steps") == {"g"}


def test_funnel_not_followed_by(con, marts, tmp_path):
    marts.users("a", "b", "c", "d", "e", "f", "g")
    marts.event("a", "add_to_cart", "2d")
    marts.event("b", "add_to_cart", "2d")
    marts.event("b", "purchase", "1d12h")
    marts.event("c", "add_to_cart", "3d")
    marts.event("c", "purchase", "1d")  # 2 days later: too late
    marts.event("d", "purchase", "2d")
    marts.event("d", "add_to_cart", "1d23h")  # the purchase came before
    marts.event("e", "add_to_cart", "1h")  # nothing since
    marts.event("f", "add_to_cart", "2d")
    marts.event("f", "purchase", "1d23h")
    marts.event("f", "add_to_cart", "1d")  # second cart abandoned
    marts.event("g", "view_item", "1h")
    evaluate(
        con,
        tmp_path,
        rule(
            "abandoners",
            "funnel: {steps: [add_to_cart], not_followed_by: purchase, within: 24h}\nwindow: 7d\nlabel: carts",
        ),
    )
    assert members(con, "abandoners") == {"a", "c", "d", "e", "f"}
    assert metrics(con, "abandoners")["f"] == {"carts": 1}


def test_never_did(con, marts, tmp_path):
    marts.users("a", "b", "c", "d")
    marts.event("a", "purchase", "60d")
    marts.event("b", "purchase", "1d")
    marts.event("d", "purchase", AS_OF + timedelta(minutes=30))  # after as_of
    for user in "abcd":
        marts.event(user, "login", "1h")
    definitions = write_definitions(
        tmp_path / "defs",
        rule("never_bought", "never: purchase"),
        rule("not_bought_recently", "never: purchase\nwindow: 7d"),
    )
    evaluate_segments(con, AS_OF, definitions)
    assert members(con, "never_bought") == {"c", "d"}
    assert members(con, "not_bought_recently") == {"a", "c", "d"}
    # an hour later d's purchase counts; c buys now; re-evaluating as_of still gives the old answer
    marts.event("c", "purchase", AS_OF + timedelta(minutes=40))
    later = AS_OF + timedelta(hours=1)
    evaluate_segments(con, later, definitions)
    assert members(con, "never_bought", later) == set()
    evaluate_segments(con, AS_OF, definitions)
    assert members(con, "never_bought") == {"c", "d"}


def test_traits_equal_in_compare(con, marts, tmp_path):
    marts.user("a", traits={"plan": "pro", "age": 30, "beta": True})
    marts.user("b", traits={"plan": "free", "age": 17, "beta": False})
    marts.user("c")
    marts.user("d", traits={"plan": "enterprise", "age": "40"})
    marts.user("e", first_seen=AS_OF + timedelta(hours=1), traits={"plan": "pro"})  # not known yet
    evaluate(
        con,
        tmp_path,
        rule("pro", "trait: plan\nequals: pro"),
        rule("paying", "trait: plan\nin: [pro, enterprise]"),
        rule("adult", "trait: age\nat_least: 18"),
        rule("teen", "trait: age\nat_least: 13\nless_than: 18"),
        rule("beta", "trait: beta\nequals: true"),
        rule("not_free", "trait: plan\nnot_equals: free"),
        rule("no_plan", "trait: plan\nexists: false"),
    )
    assert members(con, "pro") == {"a"}
    assert members(con, "paying") == {"a", "d"}
    assert members(con, "adult") == {"a", "d"}
    assert members(con, "teen") == {"b"}
    assert members(con, "beta") == {"a"}
    assert members(con, "not_free") == {"a", "c", "d"}
    assert members(con, "no_plan") == {"c"}


def test_all_any_not(con, marts, tmp_path):
    marts.user("a", traits={"plan": "pro"})  # login + pro
    marts.user("b", traits={"plan": "free"})  # login + purchase
    marts.user("c", traits={"plan": "pro"})  # login + pro but signed up recently
    marts.user("d", traits={"plan": "free"})  # login only
    marts.user("e", traits={"plan": "pro"})  # no login
    for user in "abcd":
        marts.event(user, "login", "1h")
    marts.event("b", "purchase", "2d")
    marts.event("c", "signup", "1d")
    evaluate(
        con,
        tmp_path,
        rule(
            "engaged",
            """
            all:
              - event: login
                window: 7d
              - any:
                  - trait: plan
                    equals: pro
                  - event: purchase
                    window: 7d
              - not:
                  event: signup
                  window: 7d
            """,
        ),
    )
    assert members(con, "engaged") == {"a", "b"}
    assert metrics(con, "engaged")["b"] == {
        "login_count_last_7d": 1,
        "trait_plan": "free",
        "purchase_count_last_7d": 1,
        "signup_count_last_7d": 0,
    }


# ---- RFM --------------------------------------------------------------------------------------------


def rfm(key: str, scoring: str, segments: str, qualifying: str = "{event: purchase, value: {more_than: 0}}", **extra):
    lines = [
        f"key: {key}",
        "kind: rfm",
        "description: test rfm",
        "owner: tests",
        "window: {last: 365d}",
        f"qualifying: {qualifying}",
        *(f"{k}: {v}" for k, v in extra.items()),
        "scoring:",
        textwrap.indent(textwrap.dedent(scoring).strip(), "  "),
        "segments:",
        textwrap.indent(textwrap.dedent(segments).strip(), "  "),
    ]
    return "\n".join(lines) + "\n"


def test_rfm_quantile_scores_give_equal_values_equal_scores(con, marts, tmp_path):
    # frequency per user: 1,1,1,1,2,2,3,3,4,6; last purchase: ties in days; spend ties too
    plan = {
        "u01": (1, "1d", 10),
        "u02": (1, "1d", 10),
        "u03": (1, "2d", 10),
        "u04": (1, "2d", 20),
        "u05": (2, "3d", 20),
        "u06": (2, "3d", 20),
        "u07": (3, "5d", 30),
        "u08": (3, "5d", 30),
        "u09": (4, "8d", 40),
        "u10": (6, "10d", 50),
    }
    for user, (count, last, each) in plan.items():
        marts.user(user)
        for n in range(count):
            marts.event(user, "purchase", ago(last) - timedelta(hours=n), each / count)
    marts.user("u11")
    marts.event("u11", "purchase", "1d", 0)  # value 0 does not qualify
    evaluate(
        con,
        tmp_path,
        rfm(
            "rfm",
            "recency: quantile\nfrequency: quantile\nmonetary: quantile",
            "- name: everyone",
        ),
    )
    scores = {u: (m["r"], m["f"], m["m"]) for u, m in metrics(con, "rfm.everyone").items()}
    # edges: recency [8,5,3,2]d (mirrored: lower is better), frequency [1,1,2,3], monetary [10,20,20,30]
    assert scores == {
        "u01": (5, 1, 1),
        "u02": (5, 1, 1),
        "u03": (4, 1, 1),
        "u04": (4, 1, 2),
        "u05": (3, 3, 2),
        "u06": (3, 3, 2),
        "u07": (2, 4, 4),
        "u08": (2, 4, 4),
        "u09": (1, 5, 5),
        "u10": (1, 5, 5),
    }
    tied = {}
    for user, (_, last, each) in plan.items():
        tied.setdefault((last, each), set()).add(scores[user])
    assert all(len(s) == 1 for s in tied.values())
    assert metrics(con, "rfm.everyone")["u10"]["frequency"] == 6
    assert metrics(con, "rfm.everyone")["u10"]["monetary"] == pytest.approx(50)


def test_rfm_fixed_thresholds_and_first_match(con, marts, tmp_path):
    marts.users("a", "b", "c", "d")
    for t, order, amount in (("12h", "o1", 100), ("1d", "o2", 100), ("2d", "o3", 50), ("2d", "o3", 50)):
        marts.event("a", "purchase", t, order_id=order, amount=amount)
    marts.event("b", "purchase", AS_OF - timedelta(days=7), order_id="o4", amount=60)  # exactly 7d: r 4
    marts.event("c", "purchase", "100d", order_id="o5", amount=10)
    marts.event("d", "purchase", "400d", order_id="o6", amount=500)  # outside the window
    evaluate(
        con,
        tmp_path,
        rfm(
            "rfm",
            """
            recency: [1d, 7d, 30d, 90d]
            frequency: [2, 3, 5, 10]
            monetary: [50, 100, 250, 1000]
            """,
            """
            - name: best
              when: {r: {at_least: 5}, f: {at_least: 3}}
            - name: recent
              when: {r: {at_least: 4}}
            - name: rest
            """,
            qualifying="purchase",
            frequency="{count_distinct: properties.order_id}",
            monetary="{sum: properties.amount}",
        ),
    )
    assert members(con, "rfm.best") == {"a"}
    assert members(con, "rfm.recent") == {"b"}  # a matches too, but the first match wins
    assert members(con, "rfm.rest") == {"c"}
    a = metrics(con, "rfm.best")["a"]
    assert (a["r"], a["f"], a["m"], a["frequency"], a["monetary"]) == (5, 3, 4, 3, 300)
    b = metrics(con, "rfm.recent")["b"]
    assert (b["r"], b["f"], b["m"]) == (4, 1, 2)
    c = metrics(con, "rfm.rest")["c"]
    assert (c["r"], c["f"], c["m"], c["recency_days"]) == (1, 1, 1, 100)


# ---- lifecycle --------------------------------------------------------------------------------------

LIFECYCLE = """
key: lifecycle
kind: lifecycle
description: test lifecycle
owner: tests
new_within: 2d
active_within: 3d
returning_gap: 5d
churned_after: 10d
"""


def test_lifecycle_each_transition(con, marts, tmp_path):
    day0 = datetime(2024, 3, 1)

    def day(n: float) -> datetime:
        return day0 + timedelta(days=n)

    marts.user("x", first_seen=day(0))
    for n in (0, 1, 20, 23):
        marts.event("x", "login", day(n))
    marts.user("steady", first_seen=day(-30))
    for n in range(-30, 30):
        marts.event("steady", "page_view", day(n))
    definitions = write_definitions(tmp_path / "defs", LIFECYCLE)
    expected = {  # as_of day -> stage of x
        1.5: "new",
        3.5: "active",
        5: "dormant",
        12: "churned",
        20.5: "returning",
        22: "returning",  # the 3 days before the active window are still empty
        24: "active",
    }
    for n in expected:
        evaluate_segments(con, day(n), definitions)
    for n, stage in expected.items():
        rows = con.execute(
            "select user_key, segment_key from segments.membership_snapshots where as_of = ? order by 1",
            [day(n)],
        ).fetchall()
        assert rows == [("steady", "lifecycle.active"), ("x", f"lifecycle.{stage}")]  # one stage per user
    history = con.execute(
        "select segment_key, valid_from, valid_to from segments.membership_history "
        "where user_key = 'x' order by valid_from"
    ).fetchall()
    assert history == [
        ("lifecycle.new", day(1.5), day(3.5)),
        ("lifecycle.active", day(3.5), day(5)),
        ("lifecycle.dormant", day(5), day(12)),
        ("lifecycle.churned", day(12), day(20.5)),
        ("lifecycle.returning", day(20.5), day(24)),
        ("lifecycle.active", day(24), None),
    ]
    changes = con.execute(
        "select as_of, segment_key, change from segments.membership_changes where user_key = 'x' "
        "and as_of = ? order by change",
        [day(5)],
    ).fetchall()
    assert changes == [(day(5), "lifecycle.dormant", "entered"), (day(5), "lifecycle.active", "exited")]
    current = con.execute("select segment_key, entered_at from segments.memberships where user_key = 'x'").fetchall()
    assert current == [("lifecycle.active", day(24))]
