{#- One row per session: a user's run of events with less than session_gap_minutes (default 30)
    between consecutive events; a gap of exactly the limit starts a new session. session_id is
    a hash of the user_key and the session's first event time. An hourly run rebuilds, for each person
    with a changed event (int_run_scope_user_days), the sessions that end at or after their cutoff
    (their earliest changed event minus the gap) from their events since the first of those
    sessions, numbering them after the person's earlier sessions, which it keeps; a person whose
    identity changed is rebuilt from their first event. Everyone else's sessions stay as they are.
    A session that began before the cutoff keeps its events before it (nothing before the cutoff
    changed): only the events from the cutoff on are ordered to find where sessions start, the
    earlier ones join the session as they are. An always-active user's session can span all of
    history, and ordering all of it took most of the model's time (850k of one hour's 860k ordered
    events after 30 days of 10k-event hours were 30 such users' earlier events). -#}

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
        scope_predicate='scope_sessions',
        on_schema_change='fail',
        change_log_key=['session_id'],
        pre_hook="{{ log_mart_rebuild() }}",
    )
}}

with

-- not materialized: an hourly run reads it twice, each time for a few people's events; DuckDB
-- materializes a CTE used more than once, which copied every event first (2.9 s -> 2.4 s for the
-- model's query after 30 days of 10k-event hours)
all_events as not materialized (

    select * from {{ ref('events') }}
    where user_key is not null

),

{% if builds_whole_model() -%}

events as (

    select
        *,
        0 as kept_sessions,
        0 as spans_cutoff,
        cast(null as timestamp) as last_event_time_before
    from all_events

),

{%- else -%}

rebuild_cutoffs as (

    {{ sessions_rebuild_cutoffs() }}

),

rebuilt_people as (

    {{ changed_user_keys() }}

),

-- per person with a changed event: where the rebuild starts (the first session ending at or after
-- their cutoff, else the cutoff) and how many of their sessions end before it (kept as they are)
rebuild_starts as (

    select
        rebuild_cutoffs.user_key,
        -- least() skips NULL: the cutoff when none of the person's sessions ends after it
        least(
            min(previous_sessions.started_at)
            filter (where previous_sessions.ended_at >= rebuild_cutoffs.rebuild_cutoff),
            rebuild_cutoffs.rebuild_cutoff
        ) as rebuild_from,
        count(previous_sessions.session_id) filter (
            where previous_sessions.ended_at < rebuild_cutoffs.rebuild_cutoff
        ) as kept_sessions,
        rebuild_cutoffs.rebuild_cutoff
    from rebuild_cutoffs
    left join {{ this }} as previous_sessions
        on rebuild_cutoffs.user_key = previous_sessions.user_key
    where rebuild_cutoffs.user_key not in (select rebuilt_people.user_key from rebuilt_people)
    group by rebuild_cutoffs.user_key, rebuild_cutoffs.rebuild_cutoff

),

-- a person's events before their cutoff that belong to the session spanning it (earlier sessions are
-- kept): all in that one session, whatever the rest of the run changes
spanned_session_events as (

    select
        all_events.user_key,
        all_events.event_id,
        all_events.event_name,
        all_events.event_time,
        all_events.event_value,
        rebuild_starts.kept_sessions
    from all_events
    inner join rebuild_starts
        on all_events.user_key = rebuild_starts.user_key
    where
        all_events.event_time >= rebuild_starts.rebuild_from
        and all_events.event_time < rebuild_starts.rebuild_cutoff

),

spanned_sessions as (

    select
        user_key,
        max(event_time) as last_event_time
    from spanned_session_events
    group by user_key

),

-- the events to order: a rebuilt person's all, everyone else's from their cutoff on; two disjoint
-- parts, not one OR over a left join: each reads only its own people's events
events as (

    select
        all_events.*,
        0 as kept_sessions,
        0 as spans_cutoff,
        cast(null as timestamp) as last_event_time_before
    from all_events
    where all_events.user_key in (select rebuilt_people.user_key from rebuilt_people)
    union all
    select
        all_events.*,
        rebuild_starts.kept_sessions,
        if(spanned_sessions.user_key is null, 0, 1) as spans_cutoff,
        spanned_sessions.last_event_time as last_event_time_before
    from all_events
    inner join rebuild_starts
        on all_events.user_key = rebuild_starts.user_key
    left join spanned_sessions
        on all_events.user_key = spanned_sessions.user_key
    where all_events.event_time >= rebuild_starts.rebuild_cutoff

),

{%- endif %}

ordered_events as (

    select
        user_key,
        event_id,
        event_name,
        event_time,
        event_value,
        kept_sessions,
        spans_cutoff,
        -- a person's first event here follows their last one before the cutoff, if that one is
        -- in a session spanning the cutoff (the other earlier sessions ended a full gap before it)
        coalesce(
            lag(event_time) over (
                partition by user_key
                order by event_time, event_id
            ),
            last_event_time_before
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

-- session_number counts the sessions started here; 0 continues the session spanning the cutoff
numbered_events as (

    select
        user_key,
        event_id,
        event_name,
        event_time,
        event_value,
        kept_sessions,
        spans_cutoff,
        sum(starts_session) over (
            partition by user_key
            order by event_time, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from flagged_events
    {%- if not builds_whole_model() %}
    union all
    select
        user_key,
        event_id,
        event_name,
        event_time,
        event_value,
        kept_sessions,
        1 as spans_cutoff,
        0 as session_number
    from spanned_session_events
    {%- endif %}

),

sessions as (

    select
        user_key,
        session_number,
        kept_sessions + spans_cutoff + session_number as session_number_overall,
        min(event_time) as started_at,
        max(event_time) as ended_at,
        count(*) as event_count,
        count(distinct event_name) as distinct_event_names,
        sum(event_value) as total_value,
        arg_min(event_id, (event_time, event_id)) as first_event_id,
        arg_max(event_id, (event_time, event_id)) as last_event_id
    from numbered_events
    group by user_key, session_number, kept_sessions, spans_cutoff

),

final as (

    select
        's_' || left(md5(user_key || '|' || strftime(started_at, '%Y-%m-%dT%H:%M:%S.%f')), 16) as session_id,
        user_key,
        cast(session_number_overall as bigint) as session_number,
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
