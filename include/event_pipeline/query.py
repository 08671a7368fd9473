"""Query the analysts' snapshot read-only: `python -m event_pipeline.query "select ..."` (no SQL: a prompt)."""

from __future__ import annotations

import sys

import duckdb

from event_pipeline.settings import get_settings


def print_table(rows: list[tuple], headers: list[str]) -> None:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def run(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    cursor = con.execute(sql)
    if cursor.description:
        print_table(cursor.fetchall(), [d[0] for d in cursor.description])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    path = get_settings().analytics_path
    if not path.exists():
        raise SystemExit(f"{path} does not exist yet: run `make demo` (or let the hourly DAG publish) first")
    # read_only: analysts never block (or get blocked by) the pipeline, which swaps in new snapshots
    con = duckdb.connect(str(path), read_only=True)
    if argv:
        run(con, " ".join(argv))
        return
    print(f"connected read-only to {path}; end statements with ';', Ctrl-D to quit")
    buffer = ""
    for line in sys.stdin:
        buffer += line
        if buffer.strip().endswith(";"):
            try:
                run(con, buffer)
            except duckdb.Error as exc:
                print(f"error: {exc}")
            buffer = ""


if __name__ == "__main__":
    main()
