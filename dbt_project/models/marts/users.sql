{#- One row per person (user_key). Rebuilt in full every run: it scales with users, and reads
    the per-day rollup (daily_user_activity) and the identify events, not every event. -#}

with

identity_map as (

    select * from {{ ref('int_identity_map') }}
    where user_key is not null

),

daily_user_activity as (

    select * from {{ ref('daily_user_activity') }}

),

identify_events as (

    select * from {{ ref('events') }}
    where
        message_type = 'identify'
        and user_key is not null

),

user_ids as (

    select
        user_key,
        coalesce(list_sort(list(id_value) filter (where id_type = 'user_id')), []) as user_ids,
        coalesce(list_sort(list(id_value) filter (where id_type = 'anonymous_id')), []) as anonymous_ids,
        coalesce(list_sort(list(id_value) filter (where id_type = 'instance_id')), []) as instance_ids,
        count(*) as id_count
    from identity_map
    group by user_key

),

user_activity as (

    select
        user_key,
        min(first_event_at) as first_seen_at,
        max(last_event_at) as last_seen_at,
        sum(event_count) as event_count,
        sum(total_value) as total_value,
        count(*) as active_days
    from daily_user_activity
    group by user_key

),

latest_traits as (

    select
        user_key,
        arg_max(properties, (event_time, event_id)) as traits,
        max(event_time) as traits_updated_at
    from identify_events
    group by user_key

),

final as (

    select
        user_ids.user_key,
        user_activity.first_seen_at,
        user_activity.last_seen_at,
        cast(coalesce(user_activity.event_count, 0) as bigint) as event_count,
        cast(coalesce(user_activity.total_value, 0) as double) as total_value,
        cast(coalesce(user_activity.active_days, 0) as bigint) as active_days,
        cast(latest_traits.traits as json) as traits,
        latest_traits.traits_updated_at,
        user_ids.user_ids,
        user_ids.anonymous_ids,
        user_ids.instance_ids,
        cast(user_ids.id_count as bigint) as id_count
    from user_ids
    left join user_activity
        on user_ids.user_key = user_activity.user_key
    left join latest_traits
        on user_ids.user_key = latest_traits.user_key

)

select * from final
