"""Command line for analysts: list, sizes, members, explain (read-only on the warehouse) and validate."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from event_pipeline.segments.definitions import DefinitionError, default_definitions_dir, load_definitions
from event_pipeline.segments.evaluate import normalise_as_of
from event_pipeline.segments.explain import explain_membership, format_explanation
from event_pipeline.segments.store import DEFINITION_OF, SCHEMA, schema_exists

WAREHOUSE_ENV = "EVENTS_ANALYTICS_PATH"
SEGMENT_FILTER = f"(segment_key = $segment or {DEFINITION_OF} = $segment)"


class CliError(Exception):
    """A problem reported to the user as one line, exit code 2."""


def open_warehouse(path: str | None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only (analysts read the published snapshot)."""
    if not path:
        raise CliError(f"no warehouse: pass --warehouse PATH or set {WAREHOUSE_ENV}")
    if not Path(path).is_file():
        raise CliError(f"warehouse {path} does not exist")
    con = duckdb.connect(path, read_only=True)
    if not schema_exists(con):
        con.close()
        raise CliError(f"warehouse {path} has no {SCHEMA} tables yet: segments have never been evaluated")
    return con


def parse_time(text: str) -> datetime:
    try:
        return normalise_as_of(datetime.fromisoformat(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time like 2024-05-01T13:00") from exc


def print_rows(columns: list[str], rows: list[tuple], as_json: bool) -> None:
    if as_json:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        for record in records:
            if isinstance(record.get("metrics"), str):
                record["metrics"] = json.loads(record["metrics"])
        print(json.dumps(records, default=str, indent=2))
        return
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def query(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    cursor = con.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return columns, cursor.fetchall()


def cmd_list(args: argparse.Namespace) -> int:
    con = open_warehouse(args.warehouse)
    columns, rows = query(
        con,
        f"""
        with latest as (
            select definition_key, max(as_of) as as_of from {SCHEMA}.evaluations group by definition_key
        )
        select z.segment_key, z.members, z.as_of, z.version, d.kind, d.owner,
            case when $full or length(d.description) <= 60 then d.description
                 else left(d.description, 57) || '...' end as description
        from {SCHEMA}.segment_sizes z
        join latest l on l.definition_key = split_part(z.segment_key, '.', 1) and l.as_of = z.as_of
        left join {SCHEMA}.definitions d on d.key = l.definition_key and d.version = z.version
        order by z.segment_key""",
        {"full": args.json},
    )
    print_rows(columns, rows, args.json)
    return 0


def cmd_sizes(args: argparse.Namespace) -> int:
    con = open_warehouse(args.warehouse)
    params: dict[str, Any] = {"segment": args.segment}
    where = [SEGMENT_FILTER]
    if args.since:
        where.append("as_of >= $since")
        params["since"] = args.since
    if args.until:
        where.append("as_of <= $until")
        params["until"] = args.until
    columns, rows = query(
        con,
        f"select as_of, segment_key, version, members from {SCHEMA}.segment_sizes "
        f"where {' and '.join(where)} order by as_of, segment_key",
        params,
    )
    if not rows:
        raise CliError(f"no sizes for segment {args.segment!r}")
    print_rows(columns, rows, args.json)
    return 0


def cmd_members(args: argparse.Namespace) -> int:
    con = open_warehouse(args.warehouse)
    params: dict[str, Any] = {"segment": args.segment}
    if args.as_of is None:
        sql = (
            f"select segment_key, user_key, version, entered_at, metrics from {SCHEMA}.memberships "
            f"where {SEGMENT_FILTER} order by segment_key, user_key"
        )
    else:
        params["as_of"] = args.as_of
        sql = (
            f"select segment_key, user_key, version, metrics from {SCHEMA}.membership_snapshots "
            f"where as_of = $as_of and {SEGMENT_FILTER} order by segment_key, user_key"
        )
    if args.limit:
        sql += f" limit {int(args.limit)}"
    columns, rows = query(con, sql, params)
    print_rows(columns, rows, args.json)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    definitions = {d.key: d for d in load_definitions(args.definitions)}
    definition_key = args.segment.split(".", 1)[0]
    if definition_key not in definitions:
        raise CliError(f"unknown segment {args.segment!r}; known: {', '.join(sorted(definitions))}")
    con = open_warehouse(args.warehouse)
    as_of = args.as_of
    if as_of is None:
        rows = con.execute(
            f"select max(as_of) from {SCHEMA}.evaluations where definition_key = ?", [definition_key]
        ).fetchall()
        as_of = rows[0][0]
        if as_of is None:
            raise CliError(f"segment {definition_key!r} was never evaluated; pass --as-of")
    result = explain_membership(con, definitions[definition_key], args.user, as_of)
    if args.json:
        print(json.dumps(result, default=str, indent=2))
    else:
        print(format_explanation(result))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    directory = Path(args.directory) if args.directory else default_definitions_dir()
    try:
        definitions = load_definitions(directory)
    except DefinitionError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{len(exc.errors)} problem(s) in {directory}", file=sys.stderr)
        return 1
    for d in definitions:
        print(f"ok  {d.key:<24} {d.kind:<9} {d.version:<16} {d.source}")
    print(f"{len(definitions)} definition(s) valid in {directory}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m event_pipeline.segments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    warehouse = argparse.ArgumentParser(add_help=False)
    warehouse.add_argument(
        "--warehouse",
        default=os.environ.get(WAREHOUSE_ENV),
        help=f"DuckDB file, opened read-only (default: ${WAREHOUSE_ENV})",
    )
    warehouse.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("list", parents=[warehouse], help="segments with their current sizes")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("sizes", parents=[warehouse], help="sizes over time of a segment")
    p.add_argument("segment", help="segment key (rfm.champions) or definition key (rfm: all its segments)")
    p.add_argument("--since", type=parse_time)
    p.add_argument("--until", type=parse_time)
    p.set_defaults(handler=cmd_sizes)

    p = sub.add_parser("members", parents=[warehouse], help="members of a segment (current or at --as-of)")
    p.add_argument("segment")
    p.add_argument("--as-of", type=parse_time, help="an evaluated as_of; default: current memberships")
    p.add_argument("--limit", type=int, default=0, help="at most this many rows (0: all)")
    p.set_defaults(handler=cmd_members)

    p = sub.add_parser("explain", parents=[warehouse], help="which conditions held for a user, with the numbers")
    p.add_argument("--user", required=True)
    p.add_argument("--segment", required=True)
    p.add_argument("--as-of", type=parse_time, help="default: the latest evaluated as_of of the segment")
    p.add_argument("--definitions", type=Path, default=None, help="definitions directory (default: segments/)")
    p.set_defaults(handler=cmd_explain)

    p = sub.add_parser("validate", help="validate definitions; exit 1 listing every problem")
    p.add_argument("directory", nargs="?", help="definitions directory (default: segments/)")
    p.set_defaults(handler=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
