{#- Connected components of an identity graph by label propagation, as CTEs for a model that
    defines `observed_ids` (id_type, id_value: the graph's nodes) and `links` (from_id_type,
    from_id_value, to_id_type, to_id_value: its edges, either direction), both given by CTE name.
    Each node, '<id_type>:<id_value>', starts labelled with itself; labels flow along edges (both
    ways) to nodes with a larger label, so every node is reached by the smallest node of its
    component. The last CTE, `identity_components`, has one row per node: id_type, id_value,
    component_root (that smallest node) and user_key ('u_' || the first 16 hex digits of its md5),
    a function of the component's members only (any input order gives the same result). Needs
    `with recursive`. Used by int_identity_components (the whole graph) and int_identity_map (the
    components an hourly run can change). -#}
{% macro identity_component_ctes(observed_ids, links) -%}
nodes as (

    select
        id_type,
        id_value,
        id_type || ':' || id_value as node
    from {{ observed_ids }}

),

edges as (

    select
        from_id_type || ':' || from_id_value as from_node,
        to_id_type || ':' || to_id_value as to_node
    from {{ links }}
    union
    select
        to_id_type || ':' || to_id_value as from_node,
        from_id_type || ':' || from_id_value as to_node
    from {{ links }}

),

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

),

identity_components as (

    select
        nodes.id_type,
        nodes.id_value,
        component_roots.component_root,
        'u_' || left(md5(component_roots.component_root), 16) as user_key
    from nodes
    inner join component_roots
        on nodes.node = component_roots.node

)
{%- endmacro %}

{#- What events assert about identities, one row per assertion: the id each event is attributed to
    (identity_type, identity_value of `events`; linked_id_* NULL) and each link of `links` (its two
    ends). Used on both sides of an hourly run: int_run_scope_previous_assertions (before the run)
    and int_identity_map (after), which compares them. -#}
{% macro identity_assertions(events, links) -%}
    select
        event_id,
        identity_type as id_type,
        identity_value as id_value,
        cast(null as varchar) as linked_id_type,
        cast(null as varchar) as linked_id_value
    from {{ events }}
    where identity_value is not null
    union
    select
        event_id,
        from_id_type as id_type,
        from_id_value as id_value,
        to_id_type as linked_id_type,
        to_id_value as linked_id_value
    from {{ links }}
{%- endmacro %}

{#- A link's two ids in a fixed order, as id_a_type, id_a_value, id_b_type, id_b_value: id_a is the
    smaller '<id_type>:<id_value>', so a pair linked either way round is one pair. -#}
{% macro ordered_id_pair(from_type, from_value, to_type, to_value) -%}
    {%- set from_first = from_type ~ " || ':' || " ~ from_value ~ " <= " ~ to_type ~ " || ':' || " ~ to_value -%}
    case when {{ from_first }} then {{ from_type }} else {{ to_type }} end as id_a_type,
    case when {{ from_first }} then {{ from_value }} else {{ to_value }} end as id_a_value,
    case when {{ from_first }} then {{ to_type }} else {{ from_type }} end as id_b_type,
    case when {{ from_first }} then {{ to_value }} else {{ from_value }} end as id_b_value
{%- endmacro %}

{#- identity_merges' scope in an hourly run, part 1: the pairs (ordered) the run's events linked
    before the run or link now; their first link, link count and last link can change. -#}
{% macro identity_merges_affected_pairs() -%}
    select {{ ordered_id_pair('id_type', 'id_value', 'linked_id_type', 'linked_id_value') }}
    from {{ ref('int_run_scope_previous_assertions') }}
    where linked_id_value is not null
    union
    select {{ ordered_id_pair('from_id_type', 'from_id_value', 'to_id_type', 'to_id_value') }}
    from {{ ref('int_identity_links') }}
    where {{ run_scope_events_predicate() }}
{%- endmacro %}

{#- identity_merges' scope in an hourly run, part 2: the ids whose user_key this run changed (or
    forgot); the user_key of their pairs follows. A pair's two ids are one person, so the pair's
    id_a is among them whenever its id_b is. -#}
{% macro identity_merges_changed_ids() -%}
    select id_type, id_value
    from {{ ref('int_identity_map') }}
    where changed_batch_hour = {{ batch_hour_sql() }}
{%- endmacro %}

{#- identity_merges' scope_predicate: the rows of both parts (every row in full scope). -#}
{% macro scope_identity_merges() -%}
    {%- if is_full_scope() -%}
        true
    {%- else -%}
        (
            (id_a_type, id_a_value, id_b_type, id_b_value) in ({{ identity_merges_affected_pairs() }})
            or (id_a_type, id_a_value) in ({{ identity_merges_changed_ids() }})
        )
    {%- endif -%}
{%- endmacro %}
