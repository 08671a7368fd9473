"""Compiles a rule segment's condition tree into one set-based DuckDB query over all users."""

from __future__ import annotations

from dataclasses import dataclass

from event_pipeline.segments.definitions import SegmentDefinition
from event_pipeline.segments.sqlbuild import (
    CompiledSegment,
    Context,
    event_names,
    json_compare,
    matcher_sql,
    measure_sql,
    metrics_object,
    number_compare,
    text_of,
)
from event_pipeline.segments.validation import leaves


@dataclass
class _Leaf:
    ctes: list[str]
    joins: list[str]
    metric: str
    held: str


def _count_leaf(i: int, leaf: dict, ctx: Context) -> _Leaf:
    bind = ctx.params
    name = f"leaf_{i}"
    filters = f"{matcher_sql(leaf['match'], bind)} and {ctx.window(leaf['window'])}"
    if leaf["type"] == "aggregate":
        aggregate = f"{leaf['function']}({measure_sql(leaf['of'], bind)})"
        metric = f"coalesce({name}.metric, 0)" if leaf["function"] == "sum" else f"{name}.metric"
    else:
        aggregate = "count(*)"
        metric = f"coalesce({name}.metric, 0)"
    cte = f"{name} as (select user_key, {aggregate} as metric from {ctx.events} where {filters} group by user_key)"
    held = f"{metric} = 0" if leaf["type"] == "never" else number_compare(metric, leaf["compare"], bind)
    return _Leaf([cte], [_join(name)], metric, held)


def _never_ever_leaf(i: int, leaf: dict, ctx: Context) -> _Leaf:
    """`never` without a window: the per-user first-seen table answers "ever before as_of"."""
    bind = ctx.params
    name = f"leaf_{i}"
    cte = (
        f"{name} as (select user_key, min(first_at) as metric from {ctx.first_seen} "
        f"where {event_names(leaf['match']['events'], bind)} and first_at < {bind(ctx.as_of)} group by user_key)"
    )
    return _Leaf([cte], [_join(name)], f"{name}.metric", f"{name}.metric is null")


def _funnel_leaf(i: int, leaf: dict, ctx: Context) -> _Leaf:
    """Each step is the first matching event strictly after the previous one (ASOF join), per start event."""
    bind = ctx.params
    name = f"leaf_{i}"
    window = ctx.window(leaf["window"])
    ctes = []
    for n, step in enumerate(leaf["steps"], start=1):
        ctes.append(
            f"{name}_s{n} as (select user_key, event_time as t from {ctx.events} "
            f"where {matcher_sql(step, bind)} and {window})"
        )
    ctes.append(f"{name}_c1 as (select user_key, t as started_at, t as reached_at from {name}_s1)")
    for n in range(2, len(leaf["steps"]) + 1):
        ctes.append(
            f"{name}_c{n} as (select c.user_key, c.started_at, s.t as reached_at from {name}_c{n - 1} c "
            f"asof join {name}_s{n} s on s.user_key = c.user_key and s.t > c.reached_at)"
        )
    within = bind(leaf["within_seconds"])
    deadline = f"c.started_at + to_seconds({within})"
    last = f"{name}_c{len(leaf['steps'])}"
    if leaf["not_followed_by"] is None:
        ctes.append(
            f"{name} as (select c.user_key, count(*) as metric from {last} c "
            f"where c.reached_at <= {deadline} group by c.user_key)"
        )
    else:
        ctes.append(
            f"{name}_x as (select user_key, event_time as t from {ctx.events} "
            f"where {matcher_sql(leaf['not_followed_by'], bind)})"
        )
        ctes.append(
            f"{name} as (select c.user_key, count(*) as metric from {last} c "
            f"asof left join {name}_x x on x.user_key = c.user_key and x.t > c.reached_at "
            f"where c.reached_at <= {deadline} and (x.t is null or x.t > {deadline}) group by c.user_key)"
        )
    metric = f"coalesce({name}.metric, 0)"
    return _Leaf(ctes, [_join(name)], metric, f"{metric} >= 1")


def _trait_leaf(leaf: dict, ctx: Context) -> _Leaf:
    bind = ctx.params
    held = f"coalesce({json_compare('u.traits', leaf['trait'], leaf['compare'], bind)}, false)"
    return _Leaf([], [], text_of("u.traits", leaf["trait"], bind), held)


def _join(name: str) -> str:
    return f"left join {name} on {name}.user_key = u.user_key"


def _compile_leaf(i: int, leaf: dict, ctx: Context) -> _Leaf:
    if leaf["type"] == "trait":
        return _trait_leaf(leaf, ctx)
    if leaf["type"] == "funnel":
        return _funnel_leaf(i, leaf, ctx)
    if leaf["type"] == "never" and leaf["window"] is None:
        return _never_ever_leaf(i, leaf, ctx)
    return _count_leaf(i, leaf, ctx)


def boolean_expression(condition: dict, counter: list[int]) -> str:
    """all/any/not over the held columns h0, h1, ... numbered depth first like `leaves()`."""
    kind = condition["type"]
    if kind in ("all", "any"):
        glue = " and " if kind == "all" else " or "
        return "(" + glue.join(boolean_expression(item, counter) for item in condition["items"]) + ")"
    if kind == "not":
        return f"(not {boolean_expression(condition['item'], counter)})"
    index = counter[0]
    counter[0] += 1
    return f"h{index}"


def compile_rule(definition: SegmentDefinition, ctx: Context) -> CompiledSegment:
    condition = definition.body["condition"]
    parts = [_compile_leaf(i, leaf, ctx) for i, leaf in enumerate(leaves(condition))]
    labels = [leaf["label"] for leaf in leaves(condition)]
    ctes = [cte for part in parts for cte in part.ctes]
    joins = " ".join(join for part in parts for join in part.joins)
    columns = ", ".join(f"{part.metric} as m{i}, coalesce({part.held}, false) as h{i}" for i, part in enumerate(parts))
    member = boolean_expression(condition, [0])
    bind = ctx.params
    metrics = metrics_object([(label, f"m{i}") for i, label in enumerate(labels)], bind)
    detail = [f"m{i}" for i in range(len(parts))] + [f"h{i}" for i in range(len(parts))]
    ctes.append(f"detail as (select u.user_key, {columns} from {ctx.users} u {joins})")
    sql = (
        "with " + ",\n".join(ctes) + "\n"
        f"select user_key, case when {member} then {bind(definition.key)} end as segment_key, "
        f"{metrics} as metrics, {', '.join(detail)} from detail"
    )
    return CompiledSegment(definition, sql, ctx.params.values, detail)
