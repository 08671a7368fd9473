"""Explains one user's membership: re-runs a definition's query for them and shows which conditions held."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from event_pipeline.segments.definitions import SegmentDefinition
from event_pipeline.segments.evaluate import (
    EVENTS_TABLE,
    build_scope,
    compile_definition,
    drop_scope,
    normalise_as_of,
    scope_events,
    with_scope,
)
from event_pipeline.segments.sqlbuild import FIRST_SEEN_TABLE, Context, Params
from event_pipeline.segments.store import DEFINITION_OF, SCHEMA, schema_exists
from event_pipeline.segments.validation import describe_window, format_seconds

OPERATOR_WORDS = {
    "at_least": "at least",
    "at_most": "at most",
    "more_than": "more than",
    "less_than": "less than",
    "equals": "=",
    "not_equals": "!=",
    "in": "in",
    "not_in": "not in",
}


def describe_compare(compare: dict) -> str:
    words = []
    for op, operand in sorted(compare.items()):
        if op == "exists":
            words.append("is set" if operand else "is not set")
        else:
            words.append(f"{OPERATOR_WORDS.get(op, op)} {operand}")
    return " and ".join(words)


def describe_matcher(matcher: dict) -> str:
    text = " or ".join(matcher["events"])
    filters = [f"{f['property']} {describe_compare(f['compare'])}" for f in matcher["where"]]
    if matcher["value"]:
        filters.append(f"value {describe_compare(matcher['value'])}")
    return f"{text} [{', '.join(filters)}]" if filters else text


def describe_leaf(leaf: dict) -> str:
    kind = leaf["type"]
    if kind == "trait":
        return f"trait {leaf['trait']} {describe_compare(leaf['compare'])}"
    if kind == "never":
        return f"never {describe_matcher(leaf['match'])}, {describe_window(leaf['window'])}"
    if kind == "funnel":
        steps = " then ".join(describe_matcher(step) for step in leaf["steps"])
        if leaf["not_followed_by"]:
            steps += f" and no {describe_matcher(leaf['not_followed_by'])}"
        return f"{steps} within {format_seconds(leaf['within_seconds'])}, {describe_window(leaf['window'])}"
    window = describe_window(leaf["window"])
    if kind == "aggregate":
        source = f"properties.{leaf['of']['property']}" if "property" in leaf["of"] else "value"
        measure = f"{leaf['function']}({source})"
        return f"{measure} of {describe_matcher(leaf['match'])} {describe_compare(leaf['compare'])}, {window}"
    return f"{describe_matcher(leaf['match'])} count {describe_compare(leaf['compare'])}, {window}"


def _tree(condition: dict, row: dict, counter: list[int]) -> dict:
    kind = condition["type"]
    if kind in ("all", "any"):
        items = [_tree(item, row, counter) for item in condition["items"]]
        held = all(i["held"] for i in items) if kind == "all" else any(i["held"] for i in items)
        return {"type": kind, "held": held, "items": items}
    if kind == "not":
        item = _tree(condition["item"], row, counter)
        return {"type": "not", "held": not item["held"], "items": [item]}
    index = counter[0]
    counter[0] += 1
    return {
        "type": kind,
        "label": condition["label"],
        "description": describe_leaf(condition),
        "value": row.get(f"m{index}"),
        "held": bool(row.get(f"h{index}")),
    }


def stored_membership(
    con: duckdb.DuckDBPyConnection, definition_key: str, user_key: str, as_of: datetime
) -> dict[str, Any] | None:
    """What the evaluation that ran for as_of stored for this user, or None if as_of was not evaluated."""
    if not schema_exists(con):
        return None
    evaluated = con.execute(
        f"select distinct version from {SCHEMA}.evaluations where as_of = ? and definition_key = ?",
        [as_of, definition_key],
    ).fetchall()
    if not evaluated:
        return None
    rows = con.execute(
        f"select segment_key, version, metrics from {SCHEMA}.membership_snapshots "
        f"where as_of = ? and user_key = ? and {DEFINITION_OF} = ? order by segment_key",
        [as_of, user_key, definition_key],
    ).fetchall()
    return {
        "version": evaluated[0][0],
        "segments": [{"segment_key": r[0], "version": r[1], "metrics": json.loads(r[2])} for r in rows],
    }


def _first_seen_relation(con: duckdb.DuckDBPyConnection, definition: SegmentDefinition) -> str:
    names = definition.first_seen_events()
    if names and schema_exists(con):
        covered = con.execute(
            f"select count(distinct event_name) from {SCHEMA}.user_event_first_seen_coverage "
            "where list_contains(?::varchar[], event_name)",
            [names],
        ).fetchall()[0][0]
        if covered == len(names):
            return FIRST_SEEN_TABLE
    return (
        f"(select user_key, event_name, min(event_time) as first_at from {EVENTS_TABLE} group by user_key, event_name)"
    )


def explain_membership(
    con: duckdb.DuckDBPyConnection, definition: SegmentDefinition, user_key: str, as_of: datetime
) -> dict[str, Any]:
    """Recompute `definition` as of `as_of` and return the user's numbers, held conditions and segment."""
    as_of = normalise_as_of(as_of)
    scope_sql, scope_params, _ = scope_events(con, [definition], as_of)
    ctx = Context(as_of, Params("x_"), events=scope_sql, first_seen=_first_seen_relation(con, definition))
    compiled = with_scope(compile_definition(definition, ctx), scope_sql, scope_params)
    build_scope(con, as_of)
    try:
        cursor = con.execute(
            f"select * from ({compiled.sql}) where user_key = $explain_user",
            {**compiled.params, "explain_user": user_key},
        )
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        drop_scope(con)
    result: dict[str, Any] = {
        "definition": definition.key,
        "kind": definition.kind,
        "version": definition.version,
        "as_of": as_of.isoformat(sep=" "),
        "user_key": user_key,
        "known_user": bool(rows),
        "segment_key": None,
        "stored": stored_membership(con, definition.key, user_key, as_of),
    }
    if not rows:
        return result
    row = dict(zip(columns, rows[0], strict=True))
    result["segment_key"] = row["segment_key"]
    result["metrics"] = json.loads(row["metrics"])
    if definition.kind == "rule":
        result["conditions"] = _tree(definition.body["condition"], row, [0])
    elif definition.kind == "rfm":
        result["scores"] = {k: row[k] for k in compiled.detail_columns if not k.startswith("rule_")}
        result["rules"] = [
            {"segment": f"{definition.key}.{s['name']}", "when": _describe_when(s["when"]), "held": row[f"rule_{i}"]}
            for i, s in enumerate(definition.body["segments"])
        ]
    else:
        result["facts"] = {k: row[k] for k in compiled.detail_columns}
        result["thresholds"] = {
            k.removesuffix("_seconds"): format_seconds(v) for k, v in definition.body.items() if k.endswith("_seconds")
        }
    return result


def _describe_when(when: dict) -> str:
    return " and ".join(f"{field} {describe_compare(compare)}" for field, compare in sorted(when.items())) or "always"


def format_explanation(result: dict[str, Any]) -> str:
    lines = [
        f"segment definition {result['definition']} ({result['kind']}, version {result['version']})",
        f"user {result['user_key']} as of {result['as_of']}",
    ]
    if not result["known_user"]:
        lines.append("  user not found: no row in marts.users first seen before as_of (or no qualifying events)")
    else:
        lines.append(f"  result: {result['segment_key'] or 'not a member'}")
    stored = result["stored"]
    if stored is None:
        lines.append("  stored: this as_of was not evaluated in the warehouse")
    else:
        keys = ", ".join(s["segment_key"] for s in stored["segments"]) or "not a member"
        note = "" if stored["version"] == result["version"] else " (evaluated with another version)"
        lines.append(f"  stored: {keys}, version {stored['version']}{note}")
    if "conditions" in result:
        _render_tree(result["conditions"], lines, 1)
    if "scores" in result:
        for name, value in result["scores"].items():
            lines.append(f"  {name}: {value}")
        for rule in result["rules"]:
            mark = "x" if rule["held"] else " "
            chosen = "  <- first match" if rule["segment"] == result["segment_key"] else ""
            lines.append(f"  [{mark}] {rule['segment']}: {rule['when']}{chosen}")
    if "facts" in result:
        for name, value in {**result["facts"], **result["thresholds"]}.items():
            lines.append(f"  {name}: {value}")
    return "\n".join(lines)


def _render_tree(node: dict, lines: list[str], depth: int) -> None:
    mark = "x" if node["held"] else " "
    indent = "  " * depth
    if "items" in node:
        lines.append(f"{indent}[{mark}] {node['type']}")
        for item in node["items"]:
            _render_tree(item, lines, depth + 1)
        return
    lines.append(f"{indent}[{mark}] {node['description']}: {node['label']} = {node['value']}")
