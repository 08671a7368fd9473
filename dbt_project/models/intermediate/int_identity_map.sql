{#- The identity map, rebuilt in full every run (it scales with ids, not events), with a stamp of
    the run that last changed each id's user_key. Downstream incremental models read the stamps
    to rebuild the users whose identity changed (merged, split or new).

    It reads its own previous version (this) to tell what changed. An id that is no longer known
    stays one run as a tombstone (user_key NULL, previous_user_key set) so the models built after
    it in the same run can drop the rows of its old user_key. -#}

{{ config(materialized='table') }}

{%- set previous_map = table_before_this_run(this.schema, this.identifier) %}

with

components as (

    select * from {{ ref('int_identity_components') }}

),

{% if previous_map is not none -%}

previous_map as (

    select * from {{ previous_map }}

),

{%- else -%}

previous_map as (

    select
        cast(null as varchar) as id_type,
        cast(null as varchar) as id_value,
        cast(null as varchar) as user_key,
        cast(null as varchar) as previous_user_key,
        cast(null as timestamp) as changed_batch_hour
    where false

),

{%- endif %}

current_ids as (

    select
        components.id_type,
        components.id_value,
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
