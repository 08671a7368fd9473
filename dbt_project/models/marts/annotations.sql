{#- One row per deduplicated Trak.io annotate event: system-wide notes (deploys, campaigns) that
    belong to no user. -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_event_hours',
        on_schema_change='fail',
    )
}}

with

deduped_events as (

    select * from {{ ref('int_events_deduped') }}
    where
        message_type = 'annotate'
        and {{ event_hour_in_scope('event_hour') }}

),

final as (

    select
        event_id,
        source_name,
        event_name,
        event_time,
        event_hour,
        received_at,
        company_id,
        channel,
        properties,
        batch_hour
    from deduped_events

)

select * from final
{{ cluster_whole_build_by('event_hour') }}
