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

{#- `order by column` when the model is built whole, else nothing: a model's closing clause. An
    hourly run finds its rows by a column the scope predicates filter on (event_hour, batch_hour,
    activity_date), and DuckDB skips every row group whose min/max of that column lies outside the
    run's values. Hourly runs append rows in about that order anyway; a whole build wrote them in
    whatever order its joins produced, so every row group held every hour and each hourly run
    scanned the whole table (0.97 s -> 0.04 s for int_event_deliveries_classified's scope after 30
    days of 10k-event hours built whole). -#}
{% macro cluster_whole_build_by(column) -%}
    {%- if builds_whole_model() -%}
        order by {{ column }}
    {%- endif -%}
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

{#- Predicate on a relation's event_hour and event_id columns: true for the rows of the events this
    hourly run reclassifies (int_run_scope_events), in the affected event hours. The hours are
    implied by the events; they are there so that the scan skips the row groups of other hours. -#}
{% macro run_scope_events_predicate(hour_column='event_hour', id_column='event_id') -%}
    (
        {{ hour_column }} in ({{ affected_event_hours() }})
        and {{ id_column }} in (select event_id from {{ ref('int_run_scope_events') }})
    )
{%- endmacro %}

{#- Predicate for the event-level models (a row per delivery, event or link): true for the rows
    this run rewrites (all of them when the model is built whole). A model calling it declares
    `-- depends_on: {{ ref('int_run_scope_events') }}` (the ref sits in a branch dbt's parse does
    not take). -#}
{% macro event_hour_in_scope(column='event_hour', id_column='event_id') -%}
    {%- if builds_whole_model() -%}
        true
    {%- else -%}
        {{ run_scope_events_predicate(column, id_column) }}
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

{#- the run's events, and the rows of every restamped id (two predicates: see replace_scope) -#}
{% macro scope_events() -%}
    {%- if is_full_scope() -%}
        {{ return('true') }}
    {%- endif -%}
    {%- set alternatives = [run_scope_events_predicate()] -%}
    {%- if is_incremental() -%}
        {%- do alternatives.append(restamped_events_predicate()) -%}
    {%- endif -%}
    {{ return(alternatives) }}
{%- endmacro %}

{#- Predicate on a relation's event_hour and event_id columns: true for the events mart's rows
    whose user_key the identity map no longer gives (int_events_restamped), found as the run's
    events are (run_scope_events_predicate). A model calling it declares
    `-- depends_on: {{ ref('int_events_restamped') }}`. -#}
{% macro restamped_events_predicate(hour_column='event_hour', id_column='event_id') -%}
    (
        {{ hour_column }} in (select event_hour from {{ ref('int_events_restamped') }})
        and {{ id_column }} in (select event_id from {{ ref('int_events_restamped') }})
    )
{%- endmacro %}

{#- Sessions: for every person with a changed event (int_run_scope_user_days), the run rebuilds the
    sessions that end at or after their cutoff: their earliest changed event minus the session gap.
    A session that ended before it cannot change: the run only adds or removes that person's events
    at or after their earliest changed event, at least a full gap after that session's last event.
    People whose identity changed, or who are no longer known, are rebuilt whole. -#}
{% macro sessions_rebuild_cutoffs() -%}
    select
        user_key,
        min(first_changed_event_at)
        - to_minutes(cast({{ var('session_gap_minutes', 30) }} as bigint)) as rebuild_cutoff
    from {{ ref('int_run_scope_user_days') }}
    group by user_key
{%- endmacro %}

{#- three predicates, any of which puts a session in scope (see replace_scope) -#}
{% macro scope_sessions() -%}
    {%- if is_full_scope() -%}
        {{ return('true') }}
    {%- endif -%}
    {#- a session ending at or after its person's cutoff (NULL, so not in scope, for a person without
        one), compared on the row itself: `session_id in (the ids of such sessions)` read the whole
        table twice (0.09-0.21 s -> 0.04-0.05 s after 30 days of 10k-event hours, the same rows) -#}
    {%- set rebuilt_sessions -%}
        ended_at >= (
            select rebuild_cutoffs.rebuild_cutoff
            from ({{ sessions_rebuild_cutoffs() }}) as rebuild_cutoffs
            where rebuild_cutoffs.user_key = {{ this.identifier }}.user_key
        )
    {%- endset -%}
    {%- set alternatives = [rebuilt_sessions, 'user_key in (' ~ changed_user_keys() ~ ')'] -%}
    {%- if is_incremental() -%}
        {%- set unknown_people -%}
            user_key not in (
                select identity_map.user_key
                from {{ ref('int_identity_map') }} as identity_map
                where identity_map.user_key is not null
            )
        {%- endset -%}
        {%- do alternatives.append(unknown_people) -%}
    {%- endif -%}
    {{ return(alternatives) }}
{%- endmacro %}

{#- daily_user_activity rewrites the dates with a changed event of every person who has one
    (int_run_scope_user_days), and every row of a user key whose identity changed. -#}
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
            (
                {{ date_column }} in (select run_days.activity_date from {{ ref('int_run_scope_user_days') }} as run_days)
                and (user_key, {{ date_column }}) in (
                    select run_days.user_key, run_days.activity_date
                    from {{ ref('int_run_scope_user_days') }} as run_days
                )
            )
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

{#- A table of this warehouse as it stands before this model runs, or none (while parsing, or when
    it does not exist yet). For a model that reads the previous state of a table built after it (or of
    itself): a ref() would be a cycle. -#}
{% macro table_before_this_run(schema, identifier) -%}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return(adapter.get_relation(database=this.database, schema=schema, identifier=identifier)) -}}
{%- endmacro %}

{#- Which identity map the events mart agrees with, for int_events_restamped: a fingerprint (row
    count and a hash of every id's user_key) of the map the events model applied (its post_hook),
    and of the map as it was before its latest build (int_identity_map's pre_hook), with that build's
    batch hour. Kept in audit (wall-clock free, but not part of the modeled tables), so that a rerun
    of an hour leaves the modeled tables identical. -#}
{% macro identity_map_fingerprint(relation) -%}
    select count(*) || ':' || coalesce(sum(hash(id_type, id_value, user_key))::hugeint, 0)
    from {{ relation }}
{%- endmacro %}

{% macro record_identity_map_before_build() -%}
    {%- if execute -%}
        {%- set previous_map = table_before_this_run(this.schema, this.identifier) -%}
        create schema if not exists audit;
        {% if previous_map is none -%}
        drop table if exists audit.identity_map_before_build
        {%- else -%}
        create or replace table audit.identity_map_before_build as
        select
            ({{ identity_map_fingerprint(previous_map) }}) as fingerprint,
            {{ batch_hour_sql() }} as batch_hour
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro record_applied_identity_map(identity_map) -%}
    create schema if not exists audit;
    create or replace table audit.events_applied_identity_map as
    select ({{ identity_map_fingerprint(identity_map) }}) as fingerprint
{%- endmacro %}

{#- int_events_restamped's first step, its pre-hook: the rowids of the events mart's rows whose
    user_key the identity map no longer gives their id, into a temp table (rows_to_restamp_table)
    the model then reads the rows by. Only the ids the map's latest build stamped are compared when
    the mart applied the map as it was before that build; every event otherwise. Nothing in full
    scope or before the mart exists. -#}
{% macro find_rows_to_restamp() -%}
    {%- set previous_events = table_before_this_run('marts', 'events') -%}
    {%- if previous_events is none or is_full_scope() -%}
        select 1
    {%- else -%}
        {%- set changed_ids_only = restamp_compares_changed_ids_only() -%}
        create or replace temp table {{ rows_to_restamp_table() }} as
        select previous_events.rowid as events_rowid
        from {{ previous_events }} as previous_events
        {{ 'inner' if changed_ids_only else 'left' }} join (
            select identity_map.id_type, identity_map.id_value, identity_map.user_key
            from {{ ref('int_identity_map') }} as identity_map
            {%- if changed_ids_only %}
            where
                identity_map.changed_batch_hour = (
                    select before_build.batch_hour from audit.identity_map_before_build as before_build
                )
            {%- endif %}
        ) as identity_map
            on
                previous_events.identity_type = identity_map.id_type
                and previous_events.identity_value = identity_map.id_value
        where
            previous_events.user_key is distinct from identity_map.user_key
            and previous_events.identity_value is not null
    {%- endif -%}
{%- endmacro %}

{% macro rows_to_restamp_table() -%}
    int_events_restamped__rowids
{%- endmacro %}

{#- Whether int_events_restamped compares only the ids the map's latest build changed (the events
    mart applied the map as it was before that build), not every event. -#}
{% macro restamp_compares_changed_ids_only() -%}
    {{- return(not is_full_scope() and events_applied_the_map_before_its_build()) -}}
{%- endmacro %}

{#- True when the events mart applied the identity map as it was before the map's latest build: its
    rows then differ from the map only for the ids that build stamped. -#}
{% macro events_applied_the_map_before_its_build() -%}
    {%- set applied = table_before_this_run('audit', 'events_applied_identity_map') -%}
    {%- set before_build = table_before_this_run('audit', 'identity_map_before_build') -%}
    {%- if applied is none or before_build is none -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- set result = run_query(
        'select count(*) from ' ~ applied ~ ' as applied inner join ' ~ before_build
        ~ ' as before_build on applied.fingerprint = before_build.fingerprint') -%}
    {{- return(result.columns[0].values()[0] > 0) -}}
{%- endmacro %}
