{#- One row per dump hour and source: what the loader read, what it quarantined, and what dedupe
    removed and kept. records_read = events_loaded + records_quarantined + duplicates_removed
    + records_suppressed (records of people who asked to be forgotten).
    A later delivery can change an earlier hour's counts (it may take over as the kept copy), so
    a run rewrites its own dump hour and every dump hour with a delivery in an affected event
    hour. -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_batch_hours',
        on_schema_change='fail',
    )
}}

with

{% if not builds_whole_model() -%}

affected_batch_hours as (

    {{ affected_batch_hours() }}

),

{%- endif %}

object_counts as (

    select * from {{ ref('stg_landing__object_counts') }}
    {%- if not builds_whole_model() %}
    where batch_hour in (select affected_batch_hours.batch_hour from affected_batch_hours)
    {%- endif %}

),

classified_deliveries as (

    select * from {{ ref('int_event_deliveries_classified') }}
    {%- if not builds_whole_model() %}
    where batch_hour in (select affected_batch_hours.batch_hour from affected_batch_hours)
    {%- endif %}

),

loader_counts as (

    select
        batch_hour,
        source_name,
        sum(records_read) as records_read,
        sum(records_valid) as records_valid,
        sum(records_quarantined) as records_quarantined,
        sum(records_suppressed) as records_suppressed
    from object_counts
    group by batch_hour, source_name

),

dedupe_counts as (

    select
        batch_hour,
        source_name,
        count(*) filter (where dedupe_status = 'kept') as events_loaded,
        count(*) filter (where dedupe_status = 'duplicate_event_id') as duplicate_event_ids,
        count(*) filter (where dedupe_status = 'duplicate_idempotency_key') as duplicate_idempotency_keys,
        count(*) filter (where dedupe_status = 'conflicting_copy') as conflicting_copies
    from classified_deliveries
    group by batch_hour, source_name

),

final as (

    select
        coalesce(loader_counts.batch_hour, dedupe_counts.batch_hour) as batch_hour,
        coalesce(loader_counts.source_name, dedupe_counts.source_name) as source_name,
        cast(coalesce(loader_counts.records_read, 0) as bigint) as records_read,
        cast(coalesce(loader_counts.records_valid, 0) as bigint) as records_valid,
        cast(coalesce(loader_counts.records_quarantined, 0) as bigint) as records_quarantined,
        cast(
            coalesce(dedupe_counts.duplicate_event_ids, 0)
            + coalesce(dedupe_counts.duplicate_idempotency_keys, 0)
            + coalesce(dedupe_counts.conflicting_copies, 0)
            as bigint
        ) as duplicates_removed,
        cast(coalesce(dedupe_counts.duplicate_event_ids, 0) as bigint) as duplicate_event_ids,
        cast(coalesce(dedupe_counts.duplicate_idempotency_keys, 0) as bigint) as duplicate_idempotency_keys,
        cast(coalesce(dedupe_counts.conflicting_copies, 0) as bigint) as conflicting_copies,
        cast(coalesce(dedupe_counts.events_loaded, 0) as bigint) as events_loaded,
        cast(coalesce(loader_counts.records_suppressed, 0) as bigint) as records_suppressed
    from loader_counts
    full outer join dedupe_counts
        on
            loader_counts.batch_hour = dedupe_counts.batch_hour
            and loader_counts.source_name = dedupe_counts.source_name

)

select * from final
