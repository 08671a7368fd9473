{#- The people and UTC dates whose sessions and daily activity this hourly run can change.

    The events mart changes in an hourly run only in the rows of the events the run reclassifies
    (int_run_scope_events) and in the rows of ids whose user_key changed (sessions and daily
    activity rebuild those people whole, from changed_user_keys()). Each reclassified event is
    read on both sides: as the events mart holds it before this run (read directly, never
    through ref: events is built after this model) and as the run will write it (its kept copy
    in int_events_deduped, stamped with the new identity map). A person's sessions that end more
    than a session gap before their earliest changed event cannot change, nor can their other
    dates: the run rebuilds the rest, not every person's sessions since the earliest late event.
    Empty in full scope. -#}

-- hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}
-- depends_on: {{ ref('int_events_deduped') }}
-- depends_on: {{ ref('int_identity_map') }}

{{ config(materialized='table') }}

{%- set previous_events = table_before_this_run('marts', 'events') %}

with

{% if is_full_scope() -%}

final as (

    select
        cast(null as varchar) as user_key,
        cast(null as date) as activity_date,
        cast(null as timestamp) as first_changed_event_at
    where false

)

{%- else -%}

rewritten_events as (

    select
        identity_type,
        identity_value,
        event_time
    from {{ ref('int_events_deduped') }}
    where
        message_type != 'annotate'
        and {{ run_scope_events_predicate() }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}
    where user_key is not null

),

changed_rows as (

    select
        identity_map.user_key,
        rewritten_events.event_time
    from rewritten_events
    inner join identity_map
        on
            rewritten_events.identity_type = identity_map.id_type
            and rewritten_events.identity_value = identity_map.id_value
    {%- if previous_events is not none %}
    union all
    select
        previous_events.user_key,
        previous_events.event_time
    from {{ previous_events }} as previous_events
    where
        previous_events.user_key is not null
        and {{ run_scope_events_predicate('previous_events.event_hour', 'previous_events.event_id') }}
    {%- endif %}

),

final as (

    select
        user_key,
        cast(event_time as date) as activity_date,
        min(event_time) as first_changed_event_at
    from changed_rows
    group by user_key, cast(event_time as date)

)

{%- endif %}

select * from final
