{#- The kept copy of every event: one row per event after event_id and idempotency dedupe. -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}
-- built before this model, as it reads the rows this model replaces
-- depends_on: {{ ref('int_run_scope_previous_assertions') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_event_hours',
        on_schema_change='fail',
    )
}}

with

deliveries as (

    select * from {{ ref('int_events_unioned') }}
    where {{ event_hour_in_scope('event_hour') }}

),

kept_deliveries as (

    select delivery_key from {{ ref('int_event_deliveries_classified') }}
    where
        dedupe_status = 'kept'
        and {{ event_hour_in_scope('event_hour') }}

),

final as (

    select deliveries.*
    from deliveries
    inner join kept_deliveries
        on deliveries.delivery_key = kept_deliveries.delivery_key

)

select * from final
{{ cluster_whole_build_by('event_hour') }}
