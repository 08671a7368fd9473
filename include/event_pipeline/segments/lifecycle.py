"""Compiles the lifecycle model: every known user in exactly one of new/active/returning/dormant/churned."""

from __future__ import annotations

from event_pipeline.segments.definitions import SegmentDefinition
from event_pipeline.segments.sqlbuild import CompiledSegment, Context, matcher_sql, metrics_object

DETAIL_COLUMNS = ["stage", "first_seen_at", "last_active_at", "active_events", "previous_events"]


def compile_lifecycle(definition: SegmentDefinition, ctx: Context) -> CompiledSegment:
    """Stages, first match wins.

    new        first seen within new_within
    returning  active within active_within after no activity in the returning_gap before it
    active     active within active_within
    dormant    last active within churned_after, but not within active_within
    churned    no activity within churned_after
    """
    body = definition.body
    bind = ctx.params
    active_seconds = body["active_within_seconds"]
    gap_start_seconds = active_seconds + body["returning_gap_seconds"]
    lookback = max(body["churned_after_seconds"], gap_start_seconds)
    new_since = ctx.ago(body["new_within_seconds"])
    active_since = ctx.ago(active_seconds)
    gap_since = ctx.ago(gap_start_seconds)
    churn_since = ctx.ago(body["churned_after_seconds"])
    activity = f" and {matcher_sql(body['activity'], bind)}" if body["activity"] else ""
    prefix = bind(f"{definition.key}.")
    metrics = metrics_object(
        [(name, name) for name in ("first_seen_at", "last_active_at", "active_events", "previous_events")], bind
    )
    sql = f"""
with activity as (
    select user_key,
           max(event_time) as last_active_at,
           count(*) filter (where event_time >= {active_since}) as active_events,
           count(*) filter (where event_time >= {gap_since} and event_time < {active_since}) as previous_events
    from {ctx.events}
    where event_time >= {ctx.ago(lookback)}{activity}
    group by user_key
),
facts as (
    select u.user_key, u.first_seen_at, a.last_active_at,
           coalesce(a.active_events, 0) as active_events, coalesce(a.previous_events, 0) as previous_events
    from {ctx.users} u left join activity a on a.user_key = u.user_key
),
detail as (
    select *,
           case
               when first_seen_at >= {new_since} then 'new'
               when active_events > 0 and previous_events = 0 and first_seen_at < {gap_since} then 'returning'
               when active_events > 0 then 'active'
               when last_active_at >= {churn_since} then 'dormant'
               else 'churned'
           end as stage
    from facts
)
select user_key, {prefix} || stage as segment_key, {metrics} as metrics, {", ".join(DETAIL_COLUMNS)}
from detail"""
    return CompiledSegment(definition, sql, bind.values, DETAIL_COLUMNS)
