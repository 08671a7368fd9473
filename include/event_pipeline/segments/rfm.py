"""Compiles an RFM model: per-user recency/frequency/monetary, 1-5 scores by edges, first-match segments."""

from __future__ import annotations

from event_pipeline.segments.definitions import SegmentDefinition
from event_pipeline.segments.sqlbuild import (
    CompiledSegment,
    Context,
    matcher_sql,
    measure_sql,
    metrics_object,
    number_compare,
    text_of,
)

QUANTILES = ("0.2", "0.4", "0.6", "0.8")
DIMENSIONS = (("recency", "recency_days", "r"), ("frequency", "frequency", "f"), ("monetary", "monetary", "m"))
DETAIL_COLUMNS = [
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "fm",
    "recency_edges",
    "frequency_edges",
    "monetary_edges",
]


def score_expression(column: str, edges: str, lower_is_better: bool, method: str) -> str:
    """1 + the number of the 4 edges the value beats, so equal values always get equal scores.

    Quantile edges are values of the data (quantile_disc at 20/40/60/80%, mirrored for recency):
    beating one means strictly better than it. Fixed edges are thresholds a value reaches: >= (<= for
    recency, where lower is better).
    """
    strict = method == "quantile"
    op = {(True, True): "<", (True, False): "<=", (False, True): ">", (False, False): ">="}[(lower_is_better, strict)]
    beats = " + ".join(f"({column} {op} {edges}[{n}])::integer" for n in range(1, 5))
    return f"1 + {beats}"


def edges_expression(dimension: str, column: str, scoring: dict, ctx: Context) -> str:
    spec = scoring[dimension]
    if spec["method"] == "quantile" and dimension == "recency":
        # mirrored so the most recent fifth scores 5 like the top fifth of frequency does: edges descend
        return "[" + ", ".join(f"-quantile_disc(-{column}, {q})" for q in QUANTILES) + "]"
    if spec["method"] == "quantile":
        return f"quantile_disc({column}, [{', '.join(QUANTILES)}])"
    edges = spec["edges"]
    if dimension == "recency":
        edges = [seconds / 86400 for seconds in edges]
    return f"{ctx.params([float(edge) for edge in edges])}::double[]"


def compile_rfm(definition: SegmentDefinition, ctx: Context) -> CompiledSegment:
    body = definition.body
    bind = ctx.params
    qualifying = f"{matcher_sql(body['qualifying'], bind)} and {ctx.window(body['window'])}"
    distinct = body["frequency"]["distinct"]
    frequency = "count(*)" if distinct is None else f"count(distinct {text_of('properties', distinct, bind)})"
    monetary = f"coalesce(sum({measure_sql(body['monetary']['of'], bind)}), 0)"
    recency = f"date_diff('microsecond', max(event_time), {bind(ctx.as_of)}) / 86400000000.0"
    edges = ", ".join(
        f"{edges_expression(dimension, column, body['scoring'], ctx)} as {dimension}_edges"
        for dimension, column, _ in DIMENSIONS
    )
    scores = ", ".join(
        score_expression(
            f"p.{column}", f"e.{dimension}_edges", dimension == "recency", body["scoring"][dimension]["method"]
        )
        + f" as {score}"
        for dimension, column, score in DIMENSIONS
    )
    rules = []
    cases = []
    for i, segment in enumerate(body["segments"]):
        tests = [number_compare(field, compare, bind) for field, compare in sorted(segment["when"].items())]
        rules.append(f"{' and '.join(tests) or 'true'} as rule_{i}")
        cases.append(f"when rule_{i} then {bind(definition.key + '.' + segment['name'])}")
    rule_columns = [f"rule_{i}" for i in range(len(rules))]
    metrics = metrics_object(
        [(name, name) for name in ("recency_days", "frequency", "monetary", "r", "f", "m", "fm")], bind
    )
    sql = f"""
with per_user as (
    select user_key, {recency} as recency_days, {frequency} as frequency, {monetary} as monetary
    from {ctx.events} where {qualifying} group by user_key
),
edges as (select {edges} from per_user),
scored as (select p.*, {scores}, e.* from per_user p cross join edges e),
with_fm as (select *, (f + m) / 2.0 as fm from scored),
detail as (select *, {", ".join(rules)} from with_fm)
select user_key, case {" ".join(cases)} end as segment_key, {metrics} as metrics,
    {", ".join(DETAIL_COLUMNS + rule_columns)}
from detail"""
    return CompiledSegment(definition, sql, bind.values, DETAIL_COLUMNS + rule_columns)
