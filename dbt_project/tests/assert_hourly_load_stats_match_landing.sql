{#- Each dump hour's valid landing rows are all accounted for in hourly_load_stats: loaded or
    removed as duplicates (records_valid from the loader's counts must match too). An hourly run
    checks the dump hours it rewrote (hourly_load_stats' own scope: its dump hour and those with a
    delivery in an affected event hour; no other hour's deliveries or stats changed); a full-scope
    build or `dbt test` checks every hour. -#}
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}
-- depends_on: {{ ref('int_event_deliveries_classified') }}

with

deliveries as (

    select
        batch_hour,
        source_name,
        count(*) as landing_rows
    from {{ ref('int_events_unioned') }}
    where {{ scope_batch_hours() }}
    group by batch_hour, source_name

),

stats as (

    select * from {{ ref('hourly_load_stats') }}
    where {{ scope_batch_hours() }}

),

final as (

    select
        coalesce(deliveries.batch_hour, stats.batch_hour) as batch_hour,
        coalesce(deliveries.source_name, stats.source_name) as source_name,
        deliveries.landing_rows,
        stats.records_valid,
        stats.events_loaded,
        stats.duplicates_removed
    from deliveries
    full outer join stats
        on
            deliveries.batch_hour = stats.batch_hour
            and deliveries.source_name = stats.source_name
    where
        coalesce(deliveries.landing_rows, 0) != coalesce(stats.events_loaded + stats.duplicates_removed, 0)
        or coalesce(deliveries.landing_rows, 0) != coalesce(stats.records_valid, 0)

)

select * from final
