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

{#- the columns the mart takes from an event as it is: all but user_key and event_date -#}
{%- set event_columns = [
    'event_id', 'message_type', 'source_name', 'event_name', 'event_time', 'event_hour',
    'received_at', 'identity_type', 'identity_value', 'user_id', 'anonymous_id', 'instance_id',
    'alias_ids', 'event_value', 'properties', 'idempotency_key', 'brand_id', 'company_id',
    'account_id', 'tracker_id', 'channel', 'action', 'object_name', 'vendor', 'product',
    'attachments', 'payload_hash', 'batch_hour', 'object_key', 'line_number', 'record_index',
] %}

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

    select {{ event_columns | join(', ') }} from deduped_events
    where {{ run_scope_events_predicate() }}
    {%- if is_incremental() %}
    union all
    -- the mart's rows whole as int_events_restamped read them: only their user_key changes (below).
    -- Found again in int_events_deduped by hour and id, the rows cost about 1 s of this model after
    -- 30 days of 10k-event hours (three columns of every event scanned, then the rows by rowid).
    select {{ event_columns | join(', ') }} from {{ ref('int_events_restamped') }}
    where not {{ run_scope_events_predicate() }}
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
