{#- Every valid delivery of every source, with the keys the rest of the project works on.

    A table, partitioned by dump hour: an hourly run replaces the rows of its own dump hour, the only
    landing rows a load of that hour can change (a privacy request or a historical import rebuilds
    it all). Every later model reads deliveries by event hour, event_id or idempotency group; from
    a view over landing, each of those reads recomputed the keys of every delivery ever loaded.
    The delivered JSON (raw_record) is not copied here: int_deliveries_unioned, the view this
    model stores, reads it from landing for the few rows that show it. -#}

-- pre_hook: warehouses built before 2026-12-06 stored raw_record here too; drop it rather than
-- fail the hour on the schema change (a no-op once gone; the JSON stays in landing.events)
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_batch_hour',
        on_schema_change='fail',
        pre_hook="alter table if exists {{ this }} drop column if exists raw_record",
    )
}}

with

deliveries as (

    select * from {{ ref('int_deliveries_unioned') }}

),

final as (

    select
        -- one delivery = one record read from one position of one dump
        md5(concat_ws(
            '|',
            strftime(batch_hour, '%Y-%m-%d %H:%M:%S'),
            coalesce(object_key, ''),
            coalesce(cast(line_number as varchar), ''),
            coalesce(cast(record_index as varchar), '')
        )) as delivery_key,
        * exclude (raw_record),
        date_trunc('hour', event_time) as event_hour,
        -- SuprSend idempotency is per brand: one group per (brand_id, idempotency_key)
        case
            when source_name = 'suprsend' and nullif(idempotency_key, '') is not null
                then cast(to_json([coalesce(brand_id, ''), idempotency_key]) as varchar)
        end as idempotency_group,
        -- the id an event is attributed to: user id, else anonymous id, else Orbee instance
        case
            when message_type = 'annotate' then null
            when nullif(user_id, '') is not null then 'user_id'
            when nullif(anonymous_id, '') is not null then 'anonymous_id'
            when nullif(instance_id, '') is not null then 'instance_id'
        end as identity_type,
        case
            when message_type = 'annotate' then null
            else coalesce(nullif(user_id, ''), nullif(anonymous_id, ''), nullif(instance_id, ''))
        end as identity_value
    from deliveries
    {%- if is_incremental() and not is_full_scope() %}
    where batch_hour = {{ batch_hour_sql() }}
    {%- endif %}

)

select * from final
{{ cluster_whole_build_by('batch_hour') }}
