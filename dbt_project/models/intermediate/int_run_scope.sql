{#- The event hours this run recomputes.

    An event hour's contents depend on every delivery of the events in it (which copy of an
    event_id is kept) and on every SuprSend event sharing an idempotency key with them (which
    event of the key's 24-hour chain is kept). A load of dump hour H can change exactly:
      * the event hours of H's rows, now and as they were before this load (a rerun replaces
        them; the previous rows are read from int_event_deliveries_classified as it stood before
        this run: that model is built after this one and never read through ref here),
      * the event hours of every other delivery of those event_ids,
      * the event hours of every delivery sharing an idempotency group with any of those.
    int_run_scope_events lists those events; this model is their event hours. Full scope (full
    refresh, full_history, no batch_hour): every event hour. -#}

-- hourly runs only
-- depends_on: {{ ref('int_run_scope_events') }}

{{ config(materialized='table') }}

{%- set previous_deliveries = table_before_this_run(this.schema, 'int_event_deliveries_classified') %}

with

{% if is_full_scope() -%}

deliveries as (

    select * from {{ ref('int_events_unioned') }}

),

affected_event_hours as (

    select event_hour from deliveries
    {%- if previous_deliveries is not none and not flags.FULL_REFRESH %}
    union
    select event_hour from {{ previous_deliveries }}
    {%- endif %}

),

{%- else -%}

affected_event_hours as (

    select event_hour from {{ ref('int_run_scope_events') }}

),

{%- endif %}

final as (

    select distinct event_hour
    from affected_event_hours
    where event_hour is not null

)

select * from final
