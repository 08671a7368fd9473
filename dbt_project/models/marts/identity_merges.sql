{#- Audit of identity stitching: one row per pair of ids an event linked, with the first event that
    linked them (earliest event_time, then event_id), how many events asserted the link, and the
    person (user_key) both now belong to. Rebuilt in full every run: it scales with links. -#}

with

links as (

    select * from {{ ref('int_identity_links') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}
    where user_key is not null

),

-- the same pair of ids in either direction is one link
normalized_links as (

    select
        case
            when from_id_type || ':' || from_id_value <= to_id_type || ':' || to_id_value
                then from_id_type
            else to_id_type
        end as id_a_type,
        case
            when from_id_type || ':' || from_id_value <= to_id_type || ':' || to_id_value
                then from_id_value
            else to_id_value
        end as id_a_value,
        case
            when from_id_type || ':' || from_id_value <= to_id_type || ':' || to_id_value
                then to_id_type
            else from_id_type
        end as id_b_type,
        case
            when from_id_type || ':' || from_id_value <= to_id_type || ':' || to_id_value
                then to_id_value
            else from_id_value
        end as id_b_value,
        link_type,
        source_name,
        event_id,
        event_time
    from links

),

id_pairs as (

    select
        id_a_type,
        id_a_value,
        id_b_type,
        id_b_value,
        arg_min(link_type, (event_time, event_id)) as link_type,
        arg_min(source_name, (event_time, event_id)) as source_name,
        arg_min(event_id, (event_time, event_id)) as first_event_id,
        min(event_time) as first_linked_at,
        max(event_time) as last_linked_at,
        count(distinct event_id) as linking_event_count
    from normalized_links
    group by id_a_type, id_a_value, id_b_type, id_b_value

),

final as (

    select
        id_pairs.id_a_type,
        id_pairs.id_a_value,
        id_pairs.id_b_type,
        id_pairs.id_b_value,
        identity_map.user_key,
        id_pairs.link_type,
        id_pairs.source_name,
        id_pairs.first_event_id,
        id_pairs.first_linked_at,
        id_pairs.last_linked_at,
        cast(id_pairs.linking_event_count as bigint) as linking_event_count
    from id_pairs
    inner join identity_map
        on
            id_pairs.id_a_type = identity_map.id_type
            and id_pairs.id_a_value = identity_map.id_value

)

select * from final
