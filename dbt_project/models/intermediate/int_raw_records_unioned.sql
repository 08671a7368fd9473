{#- The delivered JSON of every valid delivery, by its position in the dumps. A view: the JSON is
    the widest column of a delivery, and the only model that shows it (event_id_conflicts) needs it
    for a few rows; int_events_unioned left it out instead of copying it for every delivery. -#}

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
        batch_hour,
        object_key,
        line_number,
        record_index,
        raw_record
    from unioned

)

select * from final
