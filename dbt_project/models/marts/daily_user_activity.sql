{#- One row per user_key per UTC date with activity. A run rewrites the dates with a changed event of
    each person who has one (int_run_scope_user_days) and every date of a user whose identity
    changed. -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_identity_map') }}
-- depends_on: {{ ref('int_run_scope_user_days') }}

-- change_log_key: the keys a run rewrites go to audit.mart_changes for the snapshot publish
-- (macros/mart_change_log.sql)
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_daily_activity',
        on_schema_change='fail',
        change_log_key=['user_key', 'activity_date'],
        pre_hook="{{ log_mart_rebuild() }}",
    )
}}

with

events as (

    select * from {{ ref('events') }}
    where
        user_key is not null
        and {{ scope_daily_activity('event_date') }}

),

final as (

    select
        user_key,
        event_date as activity_date,
        cast(count(*) as bigint) as event_count,
        cast(coalesce(sum(event_value), 0) as double) as total_value,
        cast(count(distinct event_name) as bigint) as distinct_event_names,
        min(event_time) as first_event_at,
        max(event_time) as last_event_at
    from events
    group by user_key, event_date

)

select * from final
{{ cluster_whole_build_by('activity_date') }}
