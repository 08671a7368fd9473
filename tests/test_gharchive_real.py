"""The declarative mapping on real public data: two GH Archive hours through the whole pipeline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from event_pipeline import pipeline
from event_pipeline.storage import dump_key

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
HOURS = {
    datetime(2015, 1, 1, 0): "gharchive_2015-01-01-0.json.gz",
    datetime(2015, 1, 1, 1): "gharchive_2015-01-01-1.json.gz",
}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all((REAL / f).exists() for f in HOURS.values()),
                       reason=f"the GH Archive sample dumps are not in {REAL} (they ship beside the repo in "
                              "../shared, not in a user's clone)"),
]


def test_two_real_gharchive_hours_map_validate_and_model(s3, events_home, monkeypatch):
    monkeypatch.setenv("EVENTS_DATA_DOCS", "0")
    fs, bucket = s3
    for hour, name in HOURS.items():
        fs.pipe_file(f"{bucket}/{dump_key('gharchive', hour, name.replace('.json.gz', '.jsonl.gz'))}",
                     (REAL / name).read_bytes())
    results = {hour: pipeline.run_hour(hour) for hour in HOURS}

    # the figures the data set's README publishes: events per hour, distinct actors, event types
    assert [r["validated"]["records"] for r in results.values()] == [7702, 7427]
    assert [r["validated"]["quarantined"] for r in results.values()] == [0, 0]
    con = duckdb.connect(str(events_home / "warehouse" / "work.duckdb"), read_only=True)
    per_hour = con.execute(
        "select batch_hour, count(distinct user_id), count(distinct split_part(event_name, '.', 1)) "
        "from landing.events group by 1 order by 1").fetchall()
    assert per_hour == [(datetime(2015, 1, 1, 0), 3648, 14), (datetime(2015, 1, 1, 1), 3416, 14)]
    # 856 actors appear in both hours: one person each across the hours
    assert con.execute("select count(*) from marts.users").fetchall() == [(3648 + 3416 - 856,)]
    assert con.execute("select count(*) from marts.events").fetchall() == [(7702 + 7427,)]
    issues_opened = con.execute(
        "select count(*) from marts.events where event_name = 'IssuesEvent.opened'").fetchall()[0][0]
    assert issues_opened == con.execute(
        "select count(*) from landing.events where (raw->>'type') = 'IssuesEvent' "
        "and (raw->'payload'->>'action') = 'opened'").fetchall()[0][0] > 0
    con.close()
