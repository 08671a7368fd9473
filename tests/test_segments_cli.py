"""`python -m event_pipeline.segments` on a small warehouse: list, sizes, members, explain, validate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from test_segments import AS_OF, Marts, rule, write_definitions

from event_pipeline.segments import cli, evaluate_segments

REPO = Path(__file__).resolve().parents[1]
H1, H2 = AS_OF - timedelta(hours=1), AS_OF


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """a, b bought (b twice, b also carted and left), c only browsed; evaluated for two hours."""
    path = tmp_path_factory.mktemp("wh") / "analytics.duckdb"
    con = duckdb.connect(str(path))
    marts = Marts(con)
    marts.users("a", "b", "c")
    marts.event("a", "purchase", AS_OF - timedelta(minutes=90), 25000)
    marts.event("b", "purchase", AS_OF - timedelta(minutes=80), 99000)
    marts.event("b", "add_to_cart", AS_OF - timedelta(minutes=30))
    marts.event("b", "purchase", AS_OF - timedelta(minutes=20), 4500)
    marts.event("c", "add_to_cart", AS_OF - timedelta(minutes=10))
    for hour in (H1, H2):
        evaluate_segments(con, hour, REPO / "segments")
    con.close()
    return path


def run(*args: str, warehouse: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
    env.pop("EVENTS_ANALYTICS_PATH", None)
    if warehouse is not None:
        env["EVENTS_ANALYTICS_PATH"] = str(warehouse)
    return subprocess.run(
        [sys.executable, "-m", "event_pipeline.segments", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_list_shows_current_sizes(warehouse):
    result = run("list", "--json", warehouse=warehouse)  # warehouse from EVENTS_ANALYTICS_PATH
    assert result.returncode == 0, result.stderr
    rows = {r["segment_key"]: r for r in json.loads(result.stdout)}
    assert rows["purchasers_30d"]["members"] == 2
    assert rows["cart_abandoners"]["members"] == 1
    assert rows["lifecycle.returning"]["members"] == 3  # first seen 60 days ago, silent until now
    assert rows["purchasers_30d"]["owner"] == "growth-analytics"
    assert rows["purchasers_30d"]["as_of"] == str(H2)
    text = run("list", "--warehouse", str(warehouse))
    assert text.returncode == 0 and "purchasers_30d" in text.stdout and "rfm.champions" in text.stdout


def test_sizes_over_time(warehouse):
    result = run("sizes", "cart_abandoners", "--warehouse", str(warehouse), "--json")
    assert result.returncode == 0, result.stderr
    assert [(r["as_of"], r["members"]) for r in json.loads(result.stdout)] == [(str(H1), 0), (str(H2), 1)]
    missing = run("sizes", "nope", "--warehouse", str(warehouse))
    assert missing.returncode == 2 and "no sizes" in missing.stderr


def test_members_current_and_at_an_as_of(warehouse):
    result = run("members", "purchasers_30d", "--warehouse", str(warehouse), "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["user_key"], r["entered_at"]) for r in rows] == [("a", str(H1)), ("b", str(H1))]
    assert rows[1]["metrics"] == {"purchase_count_last_30d": 2}
    earlier = run("members", "cart_abandoners", "--as-of", H1.isoformat(), "--warehouse", str(warehouse))
    assert earlier.returncode == 0 and earlier.stdout.splitlines()[1:] == []
    rfm = run("members", "rfm", "--warehouse", str(warehouse), "--json")
    assert {r["user_key"] for r in json.loads(rfm.stdout)} == {"a", "b"}


def test_explain_shows_conditions_and_numbers(warehouse):
    result = run("explain", "--user", "c", "--segment", "cart_abandoners", "--warehouse", str(warehouse))
    assert result.returncode == 0, result.stderr
    assert "result: cart_abandoners" in result.stdout
    assert "stored: cart_abandoners" in result.stdout
    assert "[x] add_to_cart and no purchase within 1d, last 7d: abandoned_carts_7d = 1" in result.stdout
    b = run("explain", "--user", "b", "--segment", "power_users", "--warehouse", str(warehouse), "--json")
    tree = json.loads(b.stdout)["conditions"]
    assert tree["held"] is False
    assert [(c["label"], c["value"], c["held"]) for c in tree["items"]] == [
        ("browsing_events_7d", 1, False),
        ("active_events_24h", 3, True),
    ]
    at_h1 = ["--as-of", H1.isoformat(), "--warehouse", str(warehouse), "--json"]
    earlier = run("explain", "--user", "b", "--segment", "rfm.champions", *at_h1)
    data = json.loads(earlier.stdout)
    assert data["as_of"] == str(H1) and data["scores"]["frequency"] == 1  # b's 2nd purchase came later
    assert data["stored"]["segments"][0]["segment_key"] == data["segment_key"]


def test_validate(tmp_path):
    ok = run("validate")
    assert ok.returncode == 0, ok.stderr
    assert "6 definition(s) valid" in ok.stdout
    bad = write_definitions(tmp_path / "bad", rule("x", "event: purchse\nwindow: 7d"))
    failed = run("validate", str(bad))
    assert failed.returncode == 1
    assert f"{bad}/def_0.yml: segment 'x': field 'condition.event': unknown event 'purchse'" in failed.stderr


def test_readers_open_the_warehouse_read_only(warehouse, monkeypatch, capsys):
    opened = []
    real_connect = duckdb.connect

    def spy(path, **kwargs):
        opened.append(kwargs.get("read_only"))
        return real_connect(path, **kwargs)

    monkeypatch.setattr(cli.duckdb, "connect", spy)
    for args in (
        ["list"],
        ["sizes", "purchasers_30d"],
        ["members", "purchasers_30d"],
        ["explain", "--user", "a", "--segment", "purchasers_30d"],
    ):
        assert cli.main([*args, "--warehouse", str(warehouse)]) == 0
    assert opened == [True, True, True, True]
    assert "purchasers_30d" in capsys.readouterr().out
    assert cli.main(["list", "--warehouse", str(warehouse.parent / "missing.duckdb")]) == 2
