{#- The rows of the events mart that carry a user_key the identity map no longer gives their id
    (identity merges and splits, and any row left stale by a run that failed between the map and
    the mart: the comparison heals it). The events mart rewrites these rows wherever they are,
    instead of their whole event hours: a merge of a busy person touches a few rows in hundreds of
    hours. Compared once per run, here, and read by both the events model and its scope predicate
    (it was compared in each: two joins of every event with the map, 1.2 s each after 30 days of
    10k-event hours). A row per event with its event hour, so that both find the rows by hour and
    id and skip the row groups of other hours (by id pair, each read every row of the events:
    0.96 s for the scope after 30 days). Reads the events mart as it stands before this run (never
    through ref: events is built after this model). Empty in full scope, or when there is no
    events mart yet.

    When the events mart applied the map as it was before the map's latest build (fingerprints in
    audit.events_applied_identity_map and audit.identity_map_before_build, macros/run_scope.sql),
    its rows differ from the map only for the ids that build stamped (with its batch hour,
    tombstones included): only those are compared, not every id (0.6-0.8 s -> 0.17 s after 30 days
    of 10k-event hours). After a run that failed between the map and the mart, or on a mart that
    never recorded a map, every event is compared, which heals the rows that run left stale.

    Each row is the mart's row whole, as it stood: the events model rewrites it with the map's
    user_key, and nothing else of it can have changed (a run that changes an event's content puts
    it in int_run_scope_events, which the events model rebuilds from int_events_deduped), so the
    events model reads no history for them (finding them again in int_events_deduped by hour and
    id took about 1 s of the events model after 30 days of 10k-event hours). The rows are found by
    rowid in two steps: the pre-hook (macros/run_scope.sql, find_rows_to_restamp) compares the id
    columns with the map and keeps the stale rows' rowids in a temp table, then this model reads
    those rows whole (a filter on rowid skips every other row group). Both run in the model's
    transaction, so the rowids are still the rows'. In one query DuckDB built its hash table on all
    of the mart whenever it misjudged the comparison's size (4-6 s instead of 0.3 s); from the temp
    table it knows the size. -#}

-- hourly runs only
-- depends_on: {{ ref('int_identity_map') }}

{{ config(
    materialized='table',
    pre_hook="{{ find_rows_to_restamp() }}",
    post_hook="drop table if exists {{ rows_to_restamp_table() }}",
) }}

{%- set previous_events = table_before_this_run('marts', 'events') %}

with

{% if is_full_scope() or previous_events is none -%}

final as (

    select
        cast(null as varchar) as event_id,
        cast(null as timestamp) as event_hour,
        cast(null as varchar) as identity_type,
        cast(null as varchar) as identity_value
    where false

)

{%- else -%}

-- {{ 'compared the ids the map changed' if restamp_compares_changed_ids_only() else 'compared every event' }}
final as (

    select previous_events.*
    from {{ previous_events }} as previous_events
    where previous_events.rowid in (
        select rows_to_restamp.events_rowid from {{ rows_to_restamp_table() }} as rows_to_restamp
    )

)

{%- endif %}

select * from final
