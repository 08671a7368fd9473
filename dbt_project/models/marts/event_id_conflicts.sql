{#- One row per conflicting copy: a delivery whose event_id was already delivered with a different
    payload. The first delivery is the one kept in events; this records the copy that lost. -#}

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

classified_deliveries as (

    select * from {{ ref('int_event_deliveries_classified') }}
    where
        dedupe_status = 'conflicting_copy'
        and {{ event_hour_in_scope('event_hour') }}

),

-- the delivered JSON of those copies only: the view reads landing, so its dump hours come first
raw_records as (

    select
        batch_hour,
        object_key,
        line_number,
        record_index,
        raw_record
    from {{ ref('int_deliveries_unioned') }}
    where batch_hour in (select classified_deliveries.batch_hour from classified_deliveries)

),

final as (

    select
        classified_deliveries.delivery_key,
        classified_deliveries.event_id,
        classified_deliveries.source_name,
        classified_deliveries.message_type,
        classified_deliveries.event_time,
        classified_deliveries.event_hour,
        classified_deliveries.received_at,
        classified_deliveries.batch_hour,
        classified_deliveries.object_key,
        classified_deliveries.line_number,
        classified_deliveries.record_index,
        classified_deliveries.copy_rank,
        classified_deliveries.payload_hash,
        classified_deliveries.kept_delivery_key,
        classified_deliveries.kept_payload_hash,
        raw_records.raw_record
    from classified_deliveries
    inner join raw_records
        on
            classified_deliveries.batch_hour = raw_records.batch_hour
            and classified_deliveries.object_key = raw_records.object_key
            and classified_deliveries.line_number = raw_records.line_number
            and classified_deliveries.record_index = raw_records.record_index

)

select * from final
{{ cluster_whole_build_by('event_hour') }}
