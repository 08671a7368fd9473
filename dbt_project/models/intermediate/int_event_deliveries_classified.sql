{#- The dedupe decision for every valid delivery in the affected event hours.

    1. event_id: the deliveries of one event_id are ranked by received_at, batch_hour,
       object_key, line_number, record_index; the first is the event's copy. Later copies with
       the same payload_hash are 'duplicate_event_id', with a different one 'conflicting_copy'.
    2. SuprSend idempotency: per (brand_id, idempotency_key) the first copies are ordered the same
       way; the first is kept, and so is each next one received 24 hours or more after the last
       kept one (a greedy chain). The rest are 'duplicate_idempotency_key'.
    Each decision looks at every delivery in landing, not only the run's: the rows written are
    those of the affected event hours, the rows read are every delivery of the events and
    idempotency groups that appear in them. -#}

-- the run's scope macros read these in hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_predicate='scope_event_hours',
        on_schema_change='fail',
    )
}}

with recursive

-- not materialized: every reference below reads only a few columns of a few rows of all history; DuckDB
-- materializes a CTE used more than once, which copied every delivery first (6-10 s, spilling at the 2GB
-- cap, against 0.8 s, after 30 days of 10k-event hours; the same rows either way)
deliveries as not materialized (

    select * from {{ ref('int_events_unioned') }}

),

{% if builds_whole_model() -%}

related_deliveries as (

    select * from deliveries

),

{%- else -%}

scoped_deliveries as (

    select * from deliveries
    where {{ event_hour_in_scope('event_hour') }}

),

related_idempotency_groups as (

    select idempotency_group from scoped_deliveries
    where idempotency_group is not null
    union
    select idempotency_group from deliveries
    where
        idempotency_group is not null
        and event_id in (select scoped_deliveries.event_id from scoped_deliveries)

),

related_event_ids as (

    select event_id from scoped_deliveries
    union
    select event_id from deliveries
    where idempotency_group in (
        select related_idempotency_groups.idempotency_group from related_idempotency_groups
    )

),

-- by rowid: the ids are spread over all history (2.2 s -> 0.8 s for this step after 30 days of
-- 10k-event hours; see macros/rows_where_in.sql)
related_deliveries as (

    {{ rows_where_in(
        ref('int_events_unioned'), 'event_id',
        'select related_event_ids.event_id from related_event_ids'
    ) }}

),

{%- endif %}

ranked_copies as (

    select
        *,
        row_number() over (
            partition by event_id
            order by
                received_at asc nulls last,
                batch_hour asc,
                object_key asc nulls last,
                line_number asc nulls last,
                record_index asc nulls last,
                delivery_key asc
        ) as copy_rank
    from related_deliveries

),

first_copies as (

    select
        event_id,
        delivery_key as kept_delivery_key,
        payload_hash as kept_payload_hash
    from ranked_copies
    where copy_rank = 1

),

idempotency_candidates as (

    select
        delivery_key,
        idempotency_group,
        received_at,
        row_number() over (
            partition by idempotency_group
            order by
                received_at asc nulls last,
                batch_hour asc,
                object_key asc nulls last,
                line_number asc nulls last,
                record_index asc nulls last,
                delivery_key asc
        ) as group_rank
    from ranked_copies
    where copy_rank = 1 and idempotency_group is not null

),

-- for each candidate, the first one received at least the window later
next_window_starts as (

    select
        candidate.idempotency_group,
        candidate.group_rank,
        min(later.group_rank) as next_group_rank
    from idempotency_candidates as candidate
    inner join idempotency_candidates as later
        on
            candidate.idempotency_group = later.idempotency_group
            and later.received_at
            >= candidate.received_at + to_hours(cast({{ var('idempotency_window_hours', 24) }} as bigint))
    group by candidate.idempotency_group, candidate.group_rank

),

idempotency_chain as (

    select
        idempotency_group,
        group_rank
    from idempotency_candidates
    where group_rank = 1

    union all

    select
        next_window_starts.idempotency_group,
        next_window_starts.next_group_rank as group_rank
    from idempotency_chain
    inner join next_window_starts
        on
            idempotency_chain.idempotency_group = next_window_starts.idempotency_group
            and idempotency_chain.group_rank = next_window_starts.group_rank

),

idempotency_kept as (

    select idempotency_candidates.delivery_key
    from idempotency_candidates
    inner join idempotency_chain
        on
            idempotency_candidates.idempotency_group = idempotency_chain.idempotency_group
            and idempotency_candidates.group_rank = idempotency_chain.group_rank

),

classified as (

    select
        ranked_copies.delivery_key,
        ranked_copies.event_id,
        ranked_copies.source_name,
        ranked_copies.message_type,
        ranked_copies.event_time,
        ranked_copies.event_hour,
        ranked_copies.received_at,
        ranked_copies.batch_hour,
        ranked_copies.object_key,
        ranked_copies.line_number,
        ranked_copies.record_index,
        ranked_copies.payload_hash,
        ranked_copies.brand_id,
        ranked_copies.idempotency_key,
        ranked_copies.idempotency_group,
        cast(ranked_copies.copy_rank as integer) as copy_rank,
        first_copies.kept_delivery_key,
        first_copies.kept_payload_hash,
        case
            when
                ranked_copies.copy_rank > 1
                and (ranked_copies.payload_hash is distinct from first_copies.kept_payload_hash)
                then 'conflicting_copy'
            when ranked_copies.copy_rank > 1 then 'duplicate_event_id'
            when
                ranked_copies.idempotency_group is not null
                and ranked_copies.delivery_key not in (
                    select idempotency_kept.delivery_key from idempotency_kept
                )
                then 'duplicate_idempotency_key'
            else 'kept'
        end as dedupe_status
    from ranked_copies
    inner join first_copies
        on ranked_copies.event_id = first_copies.event_id

),

final as (

    select * from classified
    where {{ event_hour_in_scope('event_hour') }}

)

select * from final
{{ cluster_whole_build_by('event_hour') }}
