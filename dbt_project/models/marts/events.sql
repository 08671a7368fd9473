{#- One row per deduplicated event (every message type except Trak.io annotate), attributed to
    the person (user_key) its id belongs to. A run rewrites the rows of the events it reclassifies
    (int_run_scope_events) plus the rows of the ids whose user_key changed (identity merges and
    splits). -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}
-- built before this model, as it reads the rows this model replaces
-- depends_on: {{ ref('int_run_scope_user_days') }}
-- depends_on: {{ ref('int_events_restamped') }}

-- change_log_key: the keys a run rewrites go to audit.mart_changes for the snapshot publish
-- (macros/mart_change_log.sql); post_hook: the fingerprint of the identity map the mart now agrees
-- with, for the next run's int_events_restamped (macros/run_scope.sql)
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_events',
        on_schema_change='fail',
        change_log_key=['event_id'],
        pre_hook="{{ log_mart_rebuild() }}",
        post_hook="{{ record_applied_identity_map(ref('int_identity_map')) }}",
    )
}}

with

deduped_events as (

    select * from {{ ref('int_events_deduped') }}
    where message_type != 'annotate'

),

identity_map as (

    select * from {{ ref('int_identity_map') }}
    where user_key is not null

),

{% if builds_whole_model() -%}

scoped_events as (

    select * from deduped_events

),

{%- else -%}

-- the run's events, plus the rows whose id the identity map re-mapped: a union, not an OR, so that
-- each part reads only its hours' row groups
scoped_events as (

    select * from deduped_events
    where {{ run_scope_events_predicate() }}
    {%- if is_incremental() %}
    union all
    -- by rowid (macros/rows_where_in.sql), every condition inside: the restamped ids are spread
    -- over all history, and one scan read every column of nearly every vector; a condition left
    -- outside kept DuckDB from filtering by rowid at all (this part after 30 days of 10k-event
    -- hours: 0.9-1.7 s in one scan, 0.5-0.6 s by rowid, 5.2 s with the conditions outside)
    {{ rows_where(
        ref('int_events_deduped'),
        restamped_events_predicate() ~ " and message_type != 'annotate' and not "
        ~ run_scope_events_predicate()
    ) }}
    {%- endif %}

),

{%- endif %}

final as (

    select
        scoped_events.event_id,
        identity_map.user_key,
        scoped_events.message_type,
        scoped_events.source_name,
        scoped_events.event_name,
        scoped_events.event_time,
        scoped_events.event_hour,
        cast(scoped_events.event_time as date) as event_date,
        scoped_events.received_at,
        scoped_events.identity_type,
        scoped_events.identity_value,
        scoped_events.user_id,
        scoped_events.anonymous_id,
        scoped_events.instance_id,
        scoped_events.alias_ids,
        scoped_events.event_value,
        scoped_events.properties,
        scoped_events.idempotency_key,
        scoped_events.brand_id,
        scoped_events.company_id,
        scoped_events.account_id,
        scoped_events.tracker_id,
        scoped_events.channel,
        scoped_events.action,
        scoped_events.object_name,
        scoped_events.vendor,
        scoped_events.product,
        scoped_events.attachments,
        scoped_events.payload_hash,
        scoped_events.batch_hour,
        scoped_events.object_key,
        scoped_events.line_number,
        scoped_events.record_index
    from scoped_events
    left join identity_map
        on
            scoped_events.identity_type = identity_map.id_type
            and scoped_events.identity_value = identity_map.id_value

)

select * from final
{{ cluster_whole_build_by('event_hour') }}
