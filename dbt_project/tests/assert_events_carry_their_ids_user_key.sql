{#- Every row of the events mart carries the user_key the identity map gives its id (NULL for an
    event without an id, or whose id the map no longer knows). Hourly runs restamp only the ids they
    changed when the mart applied the previous build of the map (int_events_restamped); this checks,
    in full-scope builds and the daily full-scope `dbt test`, that no row has drifted from the map.
    Hourly runs skip it: it would compare every event with the map, which the restamp avoids. -#}

-- depends_on: {{ ref('events') }}
-- depends_on: {{ ref('int_identity_map') }}

{%- if is_full_scope() %}

with

events as (

    select * from {{ ref('events') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}
    where user_key is not null

),

mismatches as (

    select
        events.event_id,
        events.identity_type,
        events.identity_value,
        events.user_key as event_user_key,
        identity_map.user_key as mapped_user_key
    from events
    left join identity_map
        on
            events.identity_type = identity_map.id_type
            and events.identity_value = identity_map.id_value
    where events.user_key is distinct from identity_map.user_key

)

select * from mismatches

{%- else %}

select
    cast(null as varchar) as event_id,
    cast(null as varchar) as identity_type
where false

{%- endif %}
