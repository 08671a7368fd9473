"""Runtime settings read from the environment, with embedded defaults for the demo."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]

# Airflow pool with one slot: a DuckDB file accepts one writing process at a time,
# so every task that writes the warehouse runs in this pool.
WAREHOUSE_POOL = "duckdb_warehouse"
DEFAULT_S3_CONN_ID = "events_s3"
DEFAULT_BUCKET = "events"
LOCAL_S3_PORT = 5555
SOURCES = ("hackle", "suprsend", "trakio", "orbee")


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number; unset it or give a number") from exc


@dataclass(frozen=True)
class S3Config:
    """Where the raw dumps live: endpoint (None = AWS), bucket and credentials."""

    bucket: str
    endpoint_url: str | None = None
    key: str | None = None
    secret: str | None = None
    region: str = "us-east-1"

    def storage_options(self) -> dict:
        client_kwargs = {"region_name": self.region}
        if self.endpoint_url:
            client_kwargs["endpoint_url"] = self.endpoint_url
        opts: dict = {"client_kwargs": client_kwargs, "use_listings_cache": False}
        if self.key:
            opts["key"] = self.key
            opts["secret"] = self.secret
        else:
            opts["anon"] = False
        return opts


def _parse_connection(raw: str) -> dict:
    """An Airflow connection from its env-var form: JSON or URI (aws://key:secret@/?endpoint_url=...)."""
    raw = raw.strip()
    if raw.startswith("{"):
        conn = json.loads(raw)
        extra = conn.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return {"login": conn.get("login"), "password": conn.get("password"), "extra": extra}
    parts = urlsplit(raw)
    extra = dict(parse_qsl(parts.query))
    if "__extra__" in extra:
        extra = json.loads(extra["__extra__"])
    return {
        "login": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "extra": extra,
    }


def _connection_from_airflow(conn_id: str) -> dict | None:
    """Look the connection up in Airflow (metadata DB / secrets backend) when running inside a task."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        return None
    return {"login": conn.login, "password": conn.password, "extra": conn.extra_dejson or {}}


def s3_config() -> S3Config:
    """Object storage settings: the Airflow connection `events_s3` first, then EVENTS_S3_* / AWS_* env vars."""
    conn_id = os.environ.get("EVENTS_S3_CONN_ID", DEFAULT_S3_CONN_ID)
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    conn = _parse_connection(raw) if raw else None
    if conn is None and os.environ.get("EVENTS_S3_ENDPOINT_URL") is None:
        conn = _connection_from_airflow(conn_id)
    if conn is not None:
        extra = conn["extra"]
        return S3Config(
            bucket=extra.get("bucket") or os.environ.get("EVENTS_S3_BUCKET", DEFAULT_BUCKET),
            endpoint_url=extra.get("endpoint_url") or None,
            key=conn["login"] or None,
            secret=conn["password"] or None,
            region=extra.get("region_name") or "us-east-1",
        )
    return S3Config(
        bucket=os.environ.get("EVENTS_S3_BUCKET", DEFAULT_BUCKET),
        endpoint_url=os.environ.get("EVENTS_S3_ENDPOINT_URL") or None,
        key=os.environ.get("AWS_ACCESS_KEY_ID") or None,
        secret=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


@dataclass(frozen=True)
class Settings:
    """Paths and validation thresholds. Every field has an env var; defaults suit the demo."""

    home: Path = field(default_factory=lambda: Path(os.environ.get("EVENTS_HOME", REPO_ROOT / "var")))
    # clock skew allowed for event times after the hour's end
    future_skew: timedelta = field(
        default_factory=lambda: timedelta(minutes=_env_float("EVENTS_FUTURE_SKEW_MINUTES", 15))
    )
    # events older than this before the hour start are quarantined (use a historical import instead)
    late_event_limit: timedelta = field(
        default_factory=lambda: timedelta(hours=_env_float("EVENTS_LATE_LIMIT_HOURS", 72))
    )
    # a batch with a larger share of invalid records fails the run
    max_invalid_share: float = field(default_factory=lambda: _env_float("EVENTS_MAX_INVALID_SHARE", 0.25))
    # records validated per GX chunk (bounds memory)
    validation_chunk_rows: int = field(
        default_factory=lambda: int(_env_float("EVENTS_VALIDATION_CHUNK_ROWS", 250_000))
    )
    # sources that must deliver at least one record every hour (comma separated, empty = none)
    expected_sources: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            s for s in os.environ.get("EVENTS_EXPECTED_SOURCES", "").split(",") if s.strip()
        )
    )

    # processes parsing a large hour's dumps in parallel (1 = in the task's own process); small hours always 1
    load_workers: int = field(
        default_factory=lambda: max(1, int(_env_float("EVENTS_LOAD_WORKERS", os.cpu_count() or 1)))
    )

    # build a GX Data Docs site per hour (EVENTS_DATA_DOCS=0 turns it off, e.g. for benchmarks)
    data_docs: bool = field(default_factory=lambda: os.environ.get("EVENTS_DATA_DOCS", "1") != "0")

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def warehouse_path(self) -> Path:
        return Path(os.environ.get("EVENTS_WAREHOUSE_PATH", self.warehouse_dir / "work.duckdb"))

    @property
    def analytics_path(self) -> Path:
        return Path(os.environ.get("EVENTS_ANALYTICS_PATH", self.warehouse_dir / "analytics.duckdb"))

    @property
    def gx_dir(self) -> Path:
        return self.home / "gx"

    @property
    def dbt_project_dir(self) -> Path:
        return Path(os.environ.get("EVENTS_DBT_PROJECT_DIR", REPO_ROOT / "dbt_project"))

    @property
    def segments_dir(self) -> Path:
        return Path(os.environ.get("EVENTS_SEGMENTS_DIR", REPO_ROOT / "segments"))

    @property
    def mappings_dir(self) -> Path:
        return Path(os.environ.get("EVENTS_MAPPINGS_DIR", REPO_ROOT / "mappings"))


def get_settings() -> Settings:
    return Settings()
