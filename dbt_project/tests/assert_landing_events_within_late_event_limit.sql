{#- Warn when a dump hour delivered an event older than late_event_limit_hours: the loader should
    have quarantined it (event_too_late) unless the hour was a historical import. Checks the
    run's dump hour, or every hour when no batch_hour is given; skipped for full_history runs. -#}

{{ config(severity='warn') }}

with

deliveries as (

    select * from {{ ref('int_events_unioned') }}

),

final as (

    select
        delivery_key,
        event_id,
        source_name,
        event_time,
        batch_hour
    from deliveries
    where
        event_time < batch_hour - to_hours(cast({{ var('late_event_limit_hours', 72) }} as bigint))
        {%- if var('full_history', false) in [true, 'true', 'True', 1, '1'] %}
        and false
        {%- elif run_batch_hour() is not none %}
        and batch_hour = {{ batch_hour_sql() }}
        {%- endif %}

)

select * from final
