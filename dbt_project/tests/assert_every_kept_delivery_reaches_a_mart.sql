{#- Every kept delivery is exactly one row of events or annotations, and nothing else is. -#}

with

kept_deliveries as (

    select
        event_id,
        batch_hour
    from {{ ref('int_event_deliveries_classified') }}
    where dedupe_status = 'kept'

),

mart_events as (

    select
        event_id,
        batch_hour
    from {{ ref('events') }}
    union all
    select
        event_id,
        batch_hour
    from {{ ref('annotations') }}

),

missing as (

    select
        event_id,
        batch_hour,
        'kept but not in a mart' as problem
    from kept_deliveries
    except all
    select
        event_id,
        batch_hour,
        'kept but not in a mart' as problem
    from mart_events

),

unexpected as (

    select
        event_id,
        batch_hour,
        'in a mart but not kept' as problem
    from mart_events
    except all
    select
        event_id,
        batch_hour,
        'in a mart but not kept' as problem
    from kept_deliveries

),

final as (

    select * from missing
    union all
    select * from unexpected

)

select * from final
