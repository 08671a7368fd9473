{#- Every valid delivery of every source: the five staging models unioned, all their columns. A
    view: int_events_unioned stores each dump hour's rows with their keys, without the delivered
    JSON (raw_record, the widest column), which event_id_conflicts reads here for its few rows. -#}

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

    select * from unioned

)

select * from final
