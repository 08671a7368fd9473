{#- One row per known id (id_type, id_value) with the user_key of the person it belongs to.
    Rebuilt in full every run: it scales with ids, not events. -#}

with

identity_map as (

    select * from {{ ref('int_identity_map') }}
    where user_key is not null

),

final as (

    select
        id_type,
        id_value,
        user_key
    from identity_map

)

select * from final
