{#- The rows of the events mart that carry a user_key the identity map no longer gives their id
    (identity merges and splits, and any row left stale by a run that failed between the map and
    the mart: the comparison heals it). The events mart rewrites these rows wherever they are,
    instead of their whole event hours: a merge of a busy person touches a few rows in hundreds of
    hours. Compared once per run, here, and read by both the events model and its scope predicate
    (it was compared in each: two joins of every event with the map, 1.2 s each after 30 days of
    10k-event hours). A row per event with its event hour, so that both find the rows by hour and
    id and skip the row groups of other hours (by id pair, each read every row of the events:
    0.96 s for the scope after 30 days). Reads the events mart as it stands before this run (never
    through ref: events is built after this model). Empty in full scope, or when there is no
    events mart yet.

    When the events mart applied the map as it was before the map's latest build (fingerprints in
    audit.events_applied_identity_map and audit.identity_map_before_build, macros/run_scope.sql),
    its rows differ from the map only for the ids that build stamped (with its batch hour,
    tombstones included): only those are compared, not every id (0.6-0.8 s -> 0.17 s after 30 days
    of 10k-event hours). After a run that failed between the map and the mart, or on a mart that
    never recorded a map, every event is compared, which heals the rows that run left stale. -#}

-- hourly runs only
-- depends_on: {{ ref('int_identity_map') }}

{{ config(materialized='table') }}

{%- set previous_events = table_before_this_run('marts', 'events') %}
{%- set compare_changed_ids_only = (
    previous_events is not none
    and not is_full_scope()
    and events_applied_the_map_before_its_build()
) %}

with

{% if is_full_scope() or previous_events is none -%}

final as (

    select
        cast(null as varchar) as event_id,
        cast(null as timestamp) as event_hour,
        cast(null as varchar) as identity_type,
        cast(null as varchar) as identity_value
    where false

)

{%- else -%}

identity_map as (

    select * from {{ ref('int_identity_map') }}
    {%- if compare_changed_ids_only %}
    where
        changed_batch_hour = (
            select before_build.batch_hour from audit.identity_map_before_build as before_build
        )
    {%- endif %}

),

final as (

    select
        previous_events.event_id,
        previous_events.event_hour,
        previous_events.identity_type,
        previous_events.identity_value
    from {{ previous_events }} as previous_events
    {{ 'inner' if compare_changed_ids_only else 'left' }} join identity_map
        on
            previous_events.identity_type = identity_map.id_type
            and previous_events.identity_value = identity_map.id_value
    where
        previous_events.user_key is distinct from identity_map.user_key
        and previous_events.identity_value is not null

)

{%- endif %}

select * from final
