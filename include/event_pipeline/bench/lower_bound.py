"""The lower bound: DuckDB alone reads the hour's dumps through s3fs and deduplicates them with one window query.

    python -m event_pipeline.bench.lower_bound --hour 2026-11-20T05 --out lower.json

No adapters, no validation, no models: the cost of moving the bytes and of one dedupe, which any pipeline
over these dumps pays. The dedupe key follows the pipeline's rules closely enough for a bound: SuprSend's own
`$insert_id`, else a 64-bit hash of the source and the record's content; SuprSend bulk requests are unnested.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import datetime
from pathlib import Path

import duckdb

READ_SQL = """
create table lines as
select split_part(filename, '/', 5) as source, received_at, call, path, body
from read_json($files, format = 'newline_delimited', compression = 'gzip', filename = true, ignore_errors = true,
               columns = {'received_at': 'VARCHAR', 'call': 'VARCHAR', 'path': 'VARCHAR', 'body': 'JSON'})
"""

DEDUPE_SQL = """
with records as (
    select source, received_at, call, path,
           unnest(case when json_type(body) = 'ARRAY' then from_json(body, '["JSON"]') else [body] end) as body
    from lines
    where body is not null
),
keyed as (
    select received_at, body ->> '$."$insert_id"' as insert_id, hash(source, call, path, body) as content
    from records
)
select count(*) as records, count(*) filter (where copy = 1) as unique_records
from (
    select row_number() over (partition by insert_id, case when insert_id is null then content end
                              order by received_at) as copy
    from keyed
)
"""


def measure(hour: datetime) -> dict:
    from event_pipeline import storage
    from event_pipeline.settings import s3_config

    config = s3_config()
    fs = storage.filesystem(config)
    objects = storage.discover_hour(fs, config.bucket, hour)
    files = [f"s3://{config.bucket}/{o.key}" for o in objects]
    con = duckdb.connect()
    con.register_filesystem(fs)
    started = time.monotonic()
    con.execute(READ_SQL, {"files": files})
    read = time.monotonic() - started
    lines = con.execute("select count(*) from lines").fetchone()[0]
    started = time.monotonic()
    records, unique = con.execute(DEDUPE_SQL).fetchone()
    dedupe = time.monotonic() - started
    return {"objects": len(files), "lines": lines, "records": records, "unique_records": unique,
            "read_seconds": round(read, 3), "dedupe_seconds": round(dedupe, 3),
            "seconds": round(read + dedupe, 3),
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m event_pipeline.bench.lower_bound", description=__doc__)
    parser.add_argument("--hour", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    result = measure(datetime.fromisoformat(args.hour))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
