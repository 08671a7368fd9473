{#- Every link between two ids that an event asserts:
      * Trak.io alias: the distinct_id (user_id) and each of its alias_ids are one person;
      * Orbee: an event's instance_id and its user_id / anonymous_id are one shopper.
    Ids are typed (user_id, anonymous_id, instance_id). A Trak.io alias id is the id the person was
    tracked by before they were identified (Trak.io's generated distinct id, a web SDK's anonymous id),
    so it is linked both as a user id and as an anonymous id: Orbee or SDK events carrying it as
    anonymous_id join the same person.

    A table by event hour, like the deduplicated events it reads: an hourly run rewrites the links
    of the affected event hours only. As a view, every read (the identity graph, identity_merges)
    re-derived the links of all history from every event: 0.9 s a read after 30 days of
    10k-event hours. -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}
-- built before this model, as it reads the rows this model replaces
-- depends_on: {{ ref('int_run_scope_previous_assertions') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_event_hours',
        on_schema_change='fail',
    )
}}

with

events as (

    select * from {{ ref('int_events_deduped') }}
    where
        message_type != 'annotate'
        and {{ event_hour_in_scope('event_hour') }}

),

trakio_alias_targets as (

    select
        event_id,
        event_time,
        event_hour,
        source_name,
        nullif(user_id, '') as from_id_value,
        nullif(unnest(alias_ids), '') as alias_id
    from events
    where
        source_name = 'trakio'
        and message_type = 'alias'

),

alias_id_types as (

    select unnest(['user_id', 'anonymous_id']) as to_id_type

),

trakio_aliases as (

    select
        trakio_alias_targets.event_id,
        trakio_alias_targets.event_time,
        trakio_alias_targets.event_hour,
        trakio_alias_targets.source_name,
        'trakio_alias' as link_type,
        'user_id' as from_id_type,
        trakio_alias_targets.from_id_value,
        alias_id_types.to_id_type,
        trakio_alias_targets.alias_id as to_id_value
    from trakio_alias_targets
    cross join alias_id_types

),

orbee_instance_users as (

    select
        event_id,
        event_time,
        event_hour,
        source_name,
        'orbee_instance' as link_type,
        'instance_id' as from_id_type,
        nullif(instance_id, '') as from_id_value,
        'user_id' as to_id_type,
        nullif(user_id, '') as to_id_value
    from events
    where source_name = 'orbee'

),

orbee_instance_anonymous_ids as (

    select
        event_id,
        event_time,
        event_hour,
        source_name,
        'orbee_instance' as link_type,
        'instance_id' as from_id_type,
        nullif(instance_id, '') as from_id_value,
        'anonymous_id' as to_id_type,
        nullif(anonymous_id, '') as to_id_value
    from events
    where source_name = 'orbee'

),

links as (

    select * from trakio_aliases
    union all
    select * from orbee_instance_users
    union all
    select * from orbee_instance_anonymous_ids

),

final as (

    select distinct
        event_id,
        event_time,
        event_hour,
        source_name,
        link_type,
        from_id_type,
        from_id_value,
        to_id_type,
        to_id_value
    from links
    where
        from_id_value is not null
        and to_id_value is not null
        and not (from_id_type = to_id_type and from_id_value = to_id_value)

)

select * from final
{{ cluster_whole_build_by('event_hour') }}
