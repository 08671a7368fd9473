{#- One row per session: a user's run of events with less than session_gap_minutes (default 30)
    between consecutive events; a gap of exactly the limit starts a new session. session_id is
    a hash of the user_key and the session's first event time. A run rebuilds every session of
    the users with an event in an affected event hour, an old session overlapping one, or an
    identity change. -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_identity_map') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_sessions',
        on_schema_change='fail',
    )
}}

with

events as (

    select * from {{ ref('events') }}
    where
        user_key is not null
        and {{ scope_sessions() }}

),

ordered_events as (

    select
        user_key,
        event_id,
        event_name,
        event_time,
        event_value,
        lag(event_time) over (
            partition by user_key
            order by event_time, event_id
        ) as previous_event_time
    from events

),

flagged_events as (

    select
        *,
        case
            when previous_event_time is null then 1
            when
                event_time
                >= previous_event_time + to_minutes(cast({{ var('session_gap_minutes', 30) }} as bigint))
                then 1
            else 0
        end as starts_session
    from ordered_events

),

numbered_events as (

    select
        *,
        sum(starts_session) over (
            partition by user_key
            order by event_time, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from flagged_events

),

sessions as (

    select
        user_key,
        session_number,
        min(event_time) as started_at,
        max(event_time) as ended_at,
        count(*) as event_count,
        count(distinct event_name) as distinct_event_names,
        sum(event_value) as total_value,
        arg_min(event_id, (event_time, event_id)) as first_event_id,
        arg_max(event_id, (event_time, event_id)) as last_event_id
    from numbered_events
    group by user_key, session_number

),

final as (

    select
        's_' || left(md5(user_key || '|' || strftime(started_at, '%Y-%m-%dT%H:%M:%S.%f')), 16) as session_id,
        user_key,
        cast(session_number as bigint) as session_number,
        started_at,
        ended_at,
        cast(date_diff('second', started_at, ended_at) as bigint) as duration_seconds,
        cast(event_count as bigint) as event_count,
        cast(distinct_event_names as bigint) as distinct_event_names,
        cast(coalesce(total_value, 0) as double) as total_value,
        first_event_id,
        last_event_id
    from sessions

)

select * from final
