"""Object storage access through s3fs: the raw dump layout and the hour's object listing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from event_pipeline.settings import S3Config, s3_config

if TYPE_CHECKING:  # imported where a filesystem is made: the load's worker processes only unpickle DumpObjects
    import s3fs

RAW_PREFIX = "raw"
DUMP_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")


def filesystem(config: S3Config | None = None) -> s3fs.S3FileSystem:
    """A fresh s3fs filesystem (no instance cache, so tests and tasks never share stale clients)."""
    import s3fs  # 0.2 s of imports (aiobotocore, aiohttp), paid only by the code that talks to storage

    config = config or s3_config()
    return s3fs.S3FileSystem(skip_instance_cache=True, **config.storage_options())


def hour_prefix(bucket: str, source: str, hour: datetime) -> str:
    """s3 path of one source's dumps for one hour: <bucket>/raw/<source>/dt=YYYY-MM-DD/hour=HH."""
    return f"{bucket}/{RAW_PREFIX}/{source}/dt={hour:%Y-%m-%d}/hour={hour:%H}"


def dump_key(source: str, hour: datetime, filename: str) -> str:
    """Object key (without bucket) of a dump file."""
    return f"{RAW_PREFIX}/{source}/dt={hour:%Y-%m-%d}/hour={hour:%H}/{filename}"


@dataclass(frozen=True)
class DumpObject:
    source: str
    key: str  # without the bucket
    size: int


def list_sources(fs: s3fs.S3FileSystem, bucket: str) -> list[str]:
    """Source folders present under raw/."""
    try:
        entries = fs.ls(f"{bucket}/{RAW_PREFIX}", detail=True, refresh=True)
    except FileNotFoundError:
        return []
    return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory")


def discover_hour(fs: s3fs.S3FileSystem, bucket: str, hour: datetime) -> list[DumpObject]:
    """Every dump object of every source for the hour starting at `hour`, sorted by key."""
    objects: list[DumpObject] = []
    for source in list_sources(fs, bucket):
        prefix = hour_prefix(bucket, source, hour)
        try:
            entries = fs.ls(prefix, detail=True, refresh=True)
        except FileNotFoundError:
            continue
        for entry in entries:
            name = entry["name"]
            if entry["type"] != "file" or not name.endswith(DUMP_SUFFIXES):
                continue
            objects.append(DumpObject(source=source, key=name.split("/", 1)[1], size=int(entry["size"])))
    return sorted(objects, key=lambda o: o.key)
