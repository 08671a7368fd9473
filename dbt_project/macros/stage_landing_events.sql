{#- Staging for one source's rows of landing.events: rename and cast only. Every source shares the
    canonical record (see docs/sources.md), so the five stg_<source>__events models call this. -#}
{% macro stage_landing_events(source_name) %}

with

source as (

    select * from {{ source('landing', 'events') }}
    where source = '{{ source_name }}'

),

renamed as (

    select
        event_id,
        message_type,
        source as source_name,
        user_id,
        anonymous_id,
        cast(alias_ids as varchar[]) as alias_ids,
        event_name,
        cast(value as double) as event_value,
        cast(properties as json) as properties,
        idempotency_key,
        brand_id,
        company_id,
        account_id,
        tracker_id,
        channel,
        action,
        object as object_name,
        vendor,
        product,
        instance_id,
        cast(attachments as varchar[]) as attachments,
        cast(event_time as timestamp) as event_time,
        cast(received_at as timestamp) as received_at,
        object_key,
        cast(line_number as integer) as line_number,
        cast(record_index as integer) as record_index,
        payload_hash,
        cast(raw as json) as raw_record,
        cast(batch_hour as timestamp) as batch_hour
    from source

)

select * from renamed

{% endmacro %}
