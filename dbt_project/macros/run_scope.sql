{#- Helpers that tell a model what this run covers.

    An hourly run is `dbt build` with the run's dump hour in the environment variable
    EVENTS_BATCH_HOUR (how the pipeline and the DAG pass it) or in `--vars '{"batch_hour":
    "2026-11-20 05:00:00"}'` (by hand). It recomputes only the partitions that landing rows of that
    dump hour can change; `int_run_scope` lists those event hours. A run with `--full-refresh`, with
    `full_history: true`, or without a batch hour recomputes everything ("full scope"). -#}

{#- The run's dump hour as given, or none. The environment variable is read only while the run
    executes, never while dbt parses the project: the parse then does not depend on the hour, and
    dbt's partial parsing carries over from one hourly run to the next (a changed `--vars` makes
    dbt parse every file again, about 5 s a run). While parsing, every run looks full scope, as in
    the committed manifest the DAG renders from. -#}
{% macro run_batch_hour() -%}
    {#- a var given (--vars, a unit test's overrides) wins, null included: null means no batch hour -#}
    {%- if var.has_var('batch_hour') -%}
        {%- set given = var('batch_hour') -%}
        {{- return(none if given in [none, '', 'null', 'None'] else given | string) -}}
    {%- endif -%}
    {%- if execute -%}
        {%- set from_env = env_var('EVENTS_BATCH_HOUR', '') | trim -%}
        {%- if from_env -%}
            {{- return(from_env) -}}
        {%- endif -%}
    {%- endif -%}
    {{- return(none) -}}
{%- endmacro %}

{% macro is_full_scope() -%}
    {%- set full_history = var('full_history', false) -%}
    {{- return(
        flags.FULL_REFRESH
        or full_history in [true, 'true', 'True', 1, '1']
        or run_batch_hour() is none
    ) -}}
{%- endmacro %}

{#- True when the incremental model being built is built whole: a full-scope run, or an hourly run
    that finds no table of the model to update (a new model, one dropped by hand, a view now
    materialized as a table: is_incremental() is false). Such a run reads all of the model's inputs;
    reading only the affected hours would create the table with those hours' rows alone. Anything
    else (a data test, a table model) follows the run's scope. -#}
{% macro builds_whole_model() -%}
    {%- set incremental_model = config.get('materialized') == 'incremental' -%}
    {{- return(is_full_scope() or (incremental_model and not is_incremental())) -}}
{%- endmacro %}

{#- The run's dump hour as a SQL timestamp literal (truncated to the hour; NULL in full scope
    without a batch hour). Accepts "YYYY-MM-DD HH:MM:SS" and ISO "YYYY-MM-DDTHH:MM:SS[+00:00]". -#}
{% macro batch_hour_sql() -%}
    {%- set raw = run_batch_hour() -%}
    {%- if raw is none -%}
        cast(null as timestamp)
    {%- else -%}
        {%- set text = (raw | string)[:19] | replace('T', ' ') -%}
        date_trunc('hour', cast('{{ text }}' as timestamp))
    {%- endif -%}
{%- endmacro %}

{#- Subquery: the event hours this run recomputes. -#}
{% macro affected_event_hours() -%}
    select event_hour from {{ ref('int_run_scope') }}
{%- endmacro %}

{#- Predicate on a relation's event_hour column: true for the partitions this run rewrites (all of
    them when the model is built whole). -#}
{% macro event_hour_in_scope(column='event_hour') -%}
    {%- if builds_whole_model() -%}
        true
    {%- else -%}
        {{ column }} in ({{ affected_event_hours() }})
    {%- endif -%}
{%- endmacro %}

{#- Subquery: user keys whose identity mapping changed in this run (the new key and the key it
    replaced), from the stamps int_identity_map writes. -#}
{% macro changed_user_keys() -%}
    select user_key
    from {{ ref('int_identity_map') }}
    where changed_batch_hour = {{ batch_hour_sql() }}
        and user_key is not null
    union
    select previous_user_key as user_key
    from {{ ref('int_identity_map') }}
    where changed_batch_hour = {{ batch_hour_sql() }}
        and previous_user_key is not null
{%- endmacro %}

{#- Scope predicates named by models' `scope_predicate` config; the replace_scope strategy calls
    them to delete the partitions a run rewrites. They run before the insert, so a predicate that
    reads `this` sees the table as it was before the run, exactly as the model's query did. -#}

{% macro scope_batch_hour() -%}
    {%- if is_full_scope() -%}
        true
    {%- else -%}
        batch_hour = {{ batch_hour_sql() }}
    {%- endif -%}
{%- endmacro %}

{% macro scope_event_hours() -%}
    {{ return(event_hour_in_scope('event_hour')) }}
{%- endmacro %}

{% macro scope_events() -%}
    {%- if is_full_scope() -%}
        true
    {%- else -%}
        (
            event_hour in ({{ affected_event_hours() }})
            {%- if is_incremental() %}
            or (identity_type, identity_value) in ({{ events_restamped_ids() }})
            {%- endif %}
        )
    {%- endif -%}
{%- endmacro %}

{#- Ids (identity_type, identity_value) whose rows in the events mart
    carry a user_key the identity map no longer gives them (identity merges and splits). The events
    mart rewrites those rows, wherever they are, instead of their whole event hours: a merge of a
    busy person touches a few rows in hundreds of hours. -#}
{% macro events_restamped_ids() -%}
    select distinct existing.identity_type, existing.identity_value
    from {{ this }} as existing
    left join {{ ref('int_identity_map') }} as identity_map
        on existing.identity_type = identity_map.id_type
        and existing.identity_value = identity_map.id_value
    where existing.user_key is distinct from identity_map.user_key
        and existing.identity_value is not null
{%- endmacro %}

{#- Sessions: the run rebuilds every session that ends at or after the cutoff (the first affected
    event hour minus the session gap), for every person, and every session of a person whose identity
    changed or who is no longer known. A session that ended before the cutoff cannot change: the
    run only adds or removes events at or after the first affected hour, which is at least a full
    gap after that session's last event. -#}
{% macro sessions_rebuild_cutoff() -%}
    select
        min(event_hour)
        - to_minutes(cast({{ var('session_gap_minutes', 30) }} as bigint)) as rebuild_cutoff
    from {{ ref('int_run_scope') }}
{%- endmacro %}

{% macro scope_sessions() -%}
    {%- if is_full_scope() -%}
        true
    {%- else -%}
        (
            ended_at >= ({{ sessions_rebuild_cutoff() }})
            or user_key in ({{ changed_user_keys() }})
            {%- if is_incremental() %}
            or user_key not in (
                select identity_map.user_key
                from {{ ref('int_identity_map') }} as identity_map
                where identity_map.user_key is not null
            )
            {%- endif %}
        )
    {%- endif -%}
{%- endmacro %}

{#- daily_user_activity rewrites every user's row on the dates of the affected event hours, and every
    row of a user key whose identity changed. -#}
{% macro daily_activity_changed_user_keys() -%}
    {{ changed_user_keys() }}
    {%- if is_incremental() %}
    union
    select existing.user_key
    from {{ this }} as existing
    where existing.user_key not in (
        select identity_map.user_key
        from {{ ref('int_identity_map') }} as identity_map
        where identity_map.user_key is not null
    )
    {%- endif %}
{%- endmacro %}

{% macro scope_daily_activity(date_column='activity_date') -%}
    {%- if builds_whole_model() -%}
        true
    {%- else -%}
        (
            {{ date_column }} in (select distinct cast(event_hour as date) from {{ ref('int_run_scope') }})
            or user_key in ({{ daily_activity_changed_user_keys() }})
        )
    {%- endif -%}
{%- endmacro %}

{#- hourly_load_stats rewrites the run's dump hour and every dump hour that delivered a row into an
    affected event hour (their kept / duplicate counts can change). -#}
{% macro affected_batch_hours() -%}
    select {{ batch_hour_sql() }} as batch_hour
    union
    select batch_hour
    from {{ ref('int_event_deliveries_classified') }}
    where {{ event_hour_in_scope('event_hour') }}
{%- endmacro %}

{% macro scope_batch_hours() -%}
    {%- if is_full_scope() -%}
        true
    {%- else -%}
        batch_hour in ({{ affected_batch_hours() }})
    {%- endif -%}
{%- endmacro %}
