{#- The identity map with a stamp of the run that last changed each id's user_key. Downstream
    incremental models read the stamps to rebuild the users whose identity changed (merged, split
    or new).

    A full-scope run takes every component from int_identity_components (the whole graph). An
    hourly run compares what its events assert now (their ids in int_events_deduped, their links
    in int_identity_links) with what they asserted before (int_run_scope_previous_assertions) and
    recomputes only the components a difference can change: a gone assertion (a split, a
    forgotten id), a link between two components (a merge), an id the map does not know. Every
    other id keeps its row, since its events and links are as they were; an hour's events mostly
    repeat what the map knows (an Orbee instance's link on every event). The recomputed components
    are whole (a link between an affected and an untouched component would have put both in one),
    so the labels are those the whole graph gives; the daily full-scope `dbt test` checks that
    (assert_identity_map_matches_the_whole_graph). Rebuilding the graph every hour read every
    link and every event: 2.0 s a run after 30 days of 10k-event hours.

    It reads its own previous version (this) to tell what changed. An id that is no longer known
    stays one run as a tombstone (user_key NULL, previous_user_key set) so the models built after
    it in the same run can drop the rows of its old user_key. Before each build its pre-hook records
    the map's fingerprint (audit.identity_map_before_build): int_events_restamped compares only the
    ids this build stamps when the events mart applied that map. -#}

-- hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}
-- depends_on: {{ ref('int_run_scope_previous_assertions') }}
-- depends_on: {{ ref('int_events_deduped') }}
-- depends_on: {{ ref('int_identity_links') }}

-- pre_hook: the map's fingerprint before this build, for int_events_restamped (macros/run_scope.sql)
{{ config(materialized='table', pre_hook="{{ record_identity_map_before_build() }}") }}

{%- set previous_map = table_before_this_run(this.schema, this.identifier) %}
{#- a map written before it kept each id's component_root is recomputed whole once -#}
{%- set recompute_affected_only = (
    previous_map is not none
    and not is_full_scope()
    and 'component_root' in (adapter.get_columns_in_relation(previous_map) | map(attribute='name') | list)
) %}

with recursive

{% if previous_map is not none -%}

previous_map as (

    select * from {{ previous_map }}

),

{%- else -%}

previous_map as (

    select
        cast(null as varchar) as id_type,
        cast(null as varchar) as id_value,
        cast(null as varchar) as component_root,
        cast(null as varchar) as user_key,
        cast(null as varchar) as previous_user_key,
        cast(null as timestamp) as changed_batch_hour
    where false

),

{%- endif %}

{% if recompute_affected_only -%}

-- not materialized: read four times, each for the links of a few ids; DuckDB would copy every link first
links as not materialized (

    select * from {{ ref('int_identity_links') }}

),

scoped_events as (

    select
        event_id,
        identity_type,
        identity_value
    from {{ ref('int_events_deduped') }}
    where {{ run_scope_events_predicate() }}

),

scoped_links as (

    select * from links
    where {{ run_scope_events_predicate() }}

),

-- the same shape as int_run_scope_previous_assertions: what the run's events assert now
assertions_now as (

    {{ identity_assertions('scoped_events', 'scoped_links') }}

),

previous_assertions as (

    select * from {{ ref('int_run_scope_previous_assertions') }}

),

gone_assertions as (

    select * from previous_assertions
    except
    select * from assertions_now

),

new_assertions as (

    select * from assertions_now
    except
    select * from previous_assertions

),

known_ids as (

    select
        id_type,
        id_value,
        component_root
    from previous_map
    where user_key is not null

),

-- a new assertion changes a component only if it brings an id the map does not know, or links two
-- components; an Orbee event repeating its instance's link changes nothing
merging_or_new_assertions as (

    select new_assertions.*
    from new_assertions
    left join known_ids as known_id
        on
            new_assertions.id_type = known_id.id_type
            and new_assertions.id_value = known_id.id_value
    left join known_ids as known_linked_id
        on
            new_assertions.linked_id_type = known_linked_id.id_type
            and new_assertions.linked_id_value = known_linked_id.id_value
    where
        known_id.component_root is null
        or (
            new_assertions.linked_id_value is not null
            and known_id.component_root is distinct from known_linked_id.component_root
        )

),

-- both ends of every gone assertion: a split or a forgotten id
gone_ids as (

    select
        id_type,
        id_value
    from gone_assertions
    union
    select
        linked_id_type as id_type,
        linked_id_value as id_value
    from gone_assertions
    where linked_id_value is not null

),

touched_ids as (

    select
        id_type,
        id_value
    from gone_ids
    union
    select
        id_type,
        id_value
    from merging_or_new_assertions
    union
    select
        linked_id_type as id_type,
        linked_id_value as id_value
    from merging_or_new_assertions
    where linked_id_value is not null

),

affected_roots as (

    select distinct known_ids.component_root
    from known_ids
    inner join touched_ids
        on
            known_ids.id_type = touched_ids.id_type
            and known_ids.id_value = touched_ids.id_value

),

ids_asserted_now as (

    select
        id_type,
        id_value
    from assertions_now
    union
    select
        linked_id_type as id_type,
        linked_id_value as id_value
    from assertions_now
    where linked_id_value is not null

),

-- ids a gone assertion named that the run's events no longer assert: known only if another event
-- or link still does
unconfirmed_ids as (

    select
        id_type,
        id_value
    from gone_ids
    except
    select
        id_type,
        id_value
    from ids_asserted_now

),

ids_asserted_elsewhere as (

    select distinct
        unconfirmed_ids.id_type,
        unconfirmed_ids.id_value
    from unconfirmed_ids
    inner join {{ ref('int_events_deduped') }} as deduped_events
        on
            unconfirmed_ids.id_type = deduped_events.identity_type
            and unconfirmed_ids.id_value = deduped_events.identity_value
    union
    select
        unconfirmed_ids.id_type,
        unconfirmed_ids.id_value
    from unconfirmed_ids
    inner join links
        on
            unconfirmed_ids.id_type = links.from_id_type
            and unconfirmed_ids.id_value = links.from_id_value
    union
    select
        unconfirmed_ids.id_type,
        unconfirmed_ids.id_value
    from unconfirmed_ids
    inner join links
        on
            unconfirmed_ids.id_type = links.to_id_type
            and unconfirmed_ids.id_value = links.to_id_value

),

forgotten_now as (

    select * from unconfirmed_ids
    except
    select * from ids_asserted_elsewhere

),

-- the ids of the affected components still known, and the new ids
observed_ids as (

    select
        id_type,
        id_value
    from known_ids
    where component_root in (select affected_roots.component_root from affected_roots)
    union
    select
        id_type,
        id_value
    from touched_ids
    except
    select
        id_type,
        id_value
    from forgotten_now

),

affected_links as (

    select distinct
        links.from_id_type,
        links.from_id_value,
        links.to_id_type,
        links.to_id_value
    from links
    inner join observed_ids
        on
            links.from_id_type = observed_ids.id_type
            and links.from_id_value = observed_ids.id_value

),

{{ identity_component_ctes('observed_ids', 'affected_links') }},

components as (

    select
        id_type,
        id_value,
        component_root,
        user_key
    from previous_map
    where
        user_key is not null
        and component_root not in (select affected_roots.component_root from affected_roots)
    union all
    select * from identity_components

),

{%- else %}

components as (

    select * from {{ ref('int_identity_components') }}

),

{%- endif %}

current_ids as (

    select
        components.id_type,
        components.id_value,
        components.component_root,
        components.user_key,
        case
            when (previous_map.user_key is distinct from components.user_key)
                then previous_map.user_key
            else previous_map.previous_user_key
        end as previous_user_key,
        case
            when (previous_map.user_key is distinct from components.user_key)
                then {{ batch_hour_sql() }}
            else previous_map.changed_batch_hour
        end as changed_batch_hour
    from components
    left join previous_map
        on
            components.id_type = previous_map.id_type
            and components.id_value = previous_map.id_value

),

forgotten_ids as (

    select
        previous_map.id_type,
        previous_map.id_value,
        cast(null as varchar) as component_root,
        cast(null as varchar) as user_key,
        coalesce(previous_map.user_key, previous_map.previous_user_key) as previous_user_key,
        case
            when previous_map.user_key is not null then {{ batch_hour_sql() }}
            else previous_map.changed_batch_hour
        end as changed_batch_hour
    from previous_map
    where
        not exists (
            select 1
            from components
            where
                components.id_type = previous_map.id_type
                and components.id_value = previous_map.id_value
        )
        -- a tombstone lives until another run; a rerun of the same hour keeps it
        and (
            previous_map.user_key is not null
            or previous_map.changed_batch_hour is not distinct from {{ batch_hour_sql() }}
        )

),

final as (

    select * from current_ids
    union all
    select * from forgotten_ids

)

select * from final
