{#- Connected components of an identity graph by label propagation, as two CTEs for a model that
    defines `nodes` (one row per node) and `edges` (from_node, to_node; both directions of every
    link). Each node starts labelled with itself; labels flow along edges to nodes with a larger
    label, so every node is reached by the smallest node of its component: `component_roots` has one row
    per node with that smallest node as component_root, a function of the component's members
    only (any input order gives the same result). Needs `with recursive`. Used by
    int_identity_components (the whole graph) and int_identity_map (the components an hourly run
    can change). -#}
{% macro identity_component_ctes() -%}
reachable as (

    select
        node,
        node as component_label
    from nodes

    union

    select
        edges.to_node as node,
        reachable.component_label
    from reachable
    inner join edges
        on reachable.node = edges.from_node
    where reachable.component_label < edges.to_node

),

component_roots as (

    select
        node,
        min(component_label) as component_root
    from reachable
    group by node

)
{%- endmacro %}
