{#- Connected components of the identity graph: one row per known id with its user_key.

    Nodes are the id every event is attributed to plus both ends of every link;
    identity_component_ctes() (macros/identity_graph.sql) labels every node
    ("<id_type>:<id_value>") with the smallest node of its component. user_key = 'u_' || first 16 hex digits of md5(that smallest node): a function of
    the component's members only, so any input order gives the same mapping. -#}

with recursive

events as (

    select * from {{ ref('int_events_deduped') }}

),

links as (

    select * from {{ ref('int_identity_links') }}

),

observed_ids as (

    select
        identity_type as id_type,
        identity_value as id_value
    from events
    where identity_value is not null
    union
    select
        from_id_type as id_type,
        from_id_value as id_value
    from links
    union
    select
        to_id_type as id_type,
        to_id_value as id_value
    from links

),

{{ identity_component_ctes('observed_ids', 'links') }},

final as (

    select * from identity_components

)

select * from final
