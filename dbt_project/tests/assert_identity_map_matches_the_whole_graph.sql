{#- Every known id has the user_key the whole identity graph gives it (int_identity_components),
    and the map knows exactly the ids the graph does. Hourly runs recompute only the components
    their events can change (int_identity_map); this checks, where the whole graph is computed
    anyway (full-scope builds and the daily full-scope `dbt test`), that the map has not drifted
    from it. Hourly runs skip it: it would recompute the graph the map avoids. -#}

-- depends_on: {{ ref('int_identity_components') }}
-- depends_on: {{ ref('int_identity_map') }}

{%- if is_full_scope() %}

with

whole_graph as (

    select * from {{ ref('int_identity_components') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}
    where user_key is not null

),

mismatches as (

    select
        coalesce(whole_graph.id_type, identity_map.id_type) as id_type,
        coalesce(whole_graph.id_value, identity_map.id_value) as id_value,
        whole_graph.user_key as whole_graph_user_key,
        identity_map.user_key as mapped_user_key
    from whole_graph
    full outer join identity_map
        on
            whole_graph.id_type = identity_map.id_type
            and whole_graph.id_value = identity_map.id_value
    where whole_graph.user_key is distinct from identity_map.user_key

)

select * from mismatches

{%- else %}

select
    cast(null as varchar) as id_type,
    cast(null as varchar) as id_value
where false

{%- endif %}
