{#- The event hours this run recomputes.

    An event hour's contents depend on every delivery of the events in it (which copy of an
    event_id is kept) and on every SuprSend event sharing an idempotency key with them (which
    event of the key's 24-hour chain is kept). A load of dump hour H can change exactly:
      * the event hours of H's rows, now and as they were before this load (a rerun replaces
        them; the previous rows are read from int_event_deliveries_classified as it stood before
        this run: that model is built after this one and never read through ref here),
      * the event hours of every other delivery of those event_ids,
      * the event hours of every delivery sharing an idempotency group with any of those.
    Full scope (full refresh, full_history, no batch_hour): every event hour. -#}

{{ config(materialized='table') }}

{%- set previous_deliveries = none -%}
{%- if execute -%}
    {%- set previous_deliveries = adapter.get_relation(
        database=this.database,
        schema=this.schema,
        identifier='int_event_deliveries_classified',
    ) -%}
{%- endif %}

with

deliveries as (

    select * from {{ ref('int_events_unioned') }}

),

{% if is_full_scope() -%}

affected_event_hours as (

    select event_hour from deliveries
    {%- if previous_deliveries is not none and not flags.FULL_REFRESH %}
    union
    select event_hour from {{ previous_deliveries }}
    {%- endif %}

),

{%- else -%}

batch_deliveries as (

    select
        event_id,
        idempotency_group,
        event_hour
    from deliveries
    where batch_hour = {{ batch_hour_sql() }}
    {%- if previous_deliveries is not none %}
    union all
    select
        event_id,
        idempotency_group,
        event_hour
    from {{ previous_deliveries }}
    where batch_hour = {{ batch_hour_sql() }}
    {%- endif %}

),

same_event_deliveries as (

    select
        event_id,
        idempotency_group,
        event_hour
    from deliveries
    where event_id in (select batch_deliveries.event_id from batch_deliveries)

),

touched_idempotency_groups as (

    select idempotency_group from batch_deliveries
    where idempotency_group is not null
    union
    select idempotency_group from same_event_deliveries
    where idempotency_group is not null

),

same_group_deliveries as (

    select event_hour from deliveries
    where idempotency_group in (
        select touched_idempotency_groups.idempotency_group from touched_idempotency_groups
    )

),

affected_event_hours as (

    select event_hour from batch_deliveries
    union
    select event_hour from same_event_deliveries
    union
    select event_hour from same_group_deliveries

),

{%- endif %}

final as (

    select distinct event_hour
    from affected_event_hours
    where event_hour is not null

)

select * from final
