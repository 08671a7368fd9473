"""Every DuckDB connection of the pipeline, dbt's included, is capped by EVENTS_DUCKDB_MEMORY_LIMIT (spills past it)."""

from __future__ import annotations

from pathlib import Path

from dbt.cli.main import dbtRunner

from event_pipeline.dbt_cosmos import release_dbt_duckdb
from event_pipeline.warehouse import DEFAULT_MEMORY_LIMIT, connect

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"


def test_pipeline_and_dbt_connections_use_the_configured_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTS_DUCKDB_MEMORY_LIMIT", "1GB")
    warehouse = tmp_path / "work.duckdb"
    with connect(warehouse) as con:
        assert con.execute("select current_setting('memory_limit')").fetchall() == [("953.6 MiB",)]

    monkeypatch.setenv("EVENTS_WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    result = dbtRunner().invoke([
        "show", "--inline", "select current_setting('memory_limit') as memory_limit", "--output", "json",
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"), "--quiet",
    ])
    release_dbt_duckdb()  # dbt-duckdb keeps its DuckDB open for the process otherwise
    assert result.success, result.exception
    (node,) = result.result.results
    assert node.agate_table.rows[0]["memory_limit"] == "953.6 MiB"


def test_the_pipeline_and_dbt_default_to_the_same_cap(tmp_path, monkeypatch):
    """Unset, both sides use DEFAULT_MEMORY_LIMIT (2GB: a 10M-event hour stays under 4 GB resident)."""
    monkeypatch.delenv("EVENTS_DUCKDB_MEMORY_LIMIT", raising=False)
    with connect(tmp_path / "work.duckdb") as con:
        assert con.execute("select current_setting('memory_limit')").fetchall() == [("1.8 GiB",)]
    profile = (PROJECT_DIR / "profiles.yml").read_text()
    assert f"env_var('EVENTS_DUCKDB_MEMORY_LIMIT', '{DEFAULT_MEMORY_LIMIT}')" in profile
