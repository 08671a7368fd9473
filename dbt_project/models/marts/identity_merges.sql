{#- Audit of identity stitching: one row per pair of ids an event linked, with the first event that
    linked them (earliest event_time, then event_id), how many events asserted the link, and the
    person (user_key) both now belong to.

    Incremental (replace_scope): an hourly run rewrites the pairs its events linked before the run
    or link now (int_run_scope_previous_assertions, int_identity_links) and the pairs of every id
    whose user_key it changed (int_identity_map's stamps), each from all of that pair's links.
    Rebuilt from every link each hour, it aggregated 1.4M links after 30 days of 10k-event hours
    (1.4-1.7 s a run) for the few pairs an hour changes. -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}
-- depends_on: {{ ref('int_run_scope_previous_assertions') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_identity_merges',
        on_schema_change='fail',
    )
}}

with

-- not materialized: an hourly run reads it four times, each for the links of a few ids
links as not materialized (

    select * from {{ ref('int_identity_links') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}
    where user_key is not null

),

{% if builds_whole_model() -%}

pair_links as (

    select * from links

),

{%- else -%}

affected_pairs as (

    {{ identity_merges_affected_pairs() }}

),

changed_ids as (

    {{ identity_merges_changed_ids() }}

),

-- every link of the affected pairs and of the changed ids, whichever way round it was made
pair_links as (

    select links.*
    from links
    inner join changed_ids
        on
            links.from_id_type = changed_ids.id_type
            and links.from_id_value = changed_ids.id_value
    union
    select links.*
    from links
    inner join changed_ids
        on
            links.to_id_type = changed_ids.id_type
            and links.to_id_value = changed_ids.id_value
    union
    select links.*
    from links
    inner join affected_pairs
        on
            links.from_id_type = affected_pairs.id_a_type
            and links.from_id_value = affected_pairs.id_a_value
            and links.to_id_type = affected_pairs.id_b_type
            and links.to_id_value = affected_pairs.id_b_value
    union
    select links.*
    from links
    inner join affected_pairs
        on
            links.from_id_type = affected_pairs.id_b_type
            and links.from_id_value = affected_pairs.id_b_value
            and links.to_id_type = affected_pairs.id_a_type
            and links.to_id_value = affected_pairs.id_a_value

),

{%- endif %}

-- the same pair of ids in either direction is one link
normalized_links as (

    select
        {{ ordered_id_pair('from_id_type', 'from_id_value', 'to_id_type', 'to_id_value') }},
        link_type,
        source_name,
        event_id,
        event_time
    from pair_links

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

-- exactly the pairs the run's scope deletes (a pair found through its id_b alone is not one)
scoped_pairs as (

    select * from id_pairs
    {%- if not builds_whole_model() %}
    where {{ scope_identity_merges() }}
    {%- endif %}

),

final as (

    select
        scoped_pairs.id_a_type,
        scoped_pairs.id_a_value,
        scoped_pairs.id_b_type,
        scoped_pairs.id_b_value,
        identity_map.user_key,
        scoped_pairs.link_type,
        scoped_pairs.source_name,
        scoped_pairs.first_event_id,
        scoped_pairs.first_linked_at,
        scoped_pairs.last_linked_at,
        cast(scoped_pairs.linking_event_count as bigint) as linking_event_count
    from scoped_pairs
    inner join identity_map
        on
            scoped_pairs.id_a_type = identity_map.id_type
            and scoped_pairs.id_a_value = identity_map.id_value

)

select * from final
