{#- Every kept delivery is exactly one row of events or annotations, and nothing else is. An hourly
    run checks the event hours it recomputed (int_run_scope); a full-scope build checks every hour. -#}

-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}

with

kept_deliveries as (

    select
        event_id,
        batch_hour
    from {{ ref('int_event_deliveries_classified') }}
    where
        dedupe_status = 'kept'
        and {{ event_hour_in_scope('event_hour') }}

),

mart_events as (

    select
        event_id,
        batch_hour
    from {{ ref('events') }}
    where {{ event_hour_in_scope('event_hour') }}
    union all
    select
        event_id,
        batch_hour
    from {{ ref('annotations') }}
    where {{ event_hour_in_scope('event_hour') }}

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
