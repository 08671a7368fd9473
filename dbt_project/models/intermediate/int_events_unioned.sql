{#- Every valid delivery of every source, with the keys the rest of the project works on. -#}

with

hackle as (

    select * from {{ ref('stg_hackle__events') }}

),

suprsend as (

    select * from {{ ref('stg_suprsend__events') }}

),

trakio as (

    select * from {{ ref('stg_trakio__events') }}

),

orbee as (

    select * from {{ ref('stg_orbee__events') }}

),

gharchive as (

    select * from {{ ref('stg_gharchive__events') }}

),

unioned as (

    select * from hackle
    union all
    select * from suprsend
    union all
    select * from trakio
    union all
    select * from orbee
    union all
    select * from gharchive

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
        *,
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
    from unioned

)

select * from final
