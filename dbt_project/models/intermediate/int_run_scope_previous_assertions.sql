{#- What the run's events asserted about identities before this run: for each event of
    int_run_scope_events, the id it was attributed to (linked_id_* NULL) and each link it made, as
    int_events_deduped and int_identity_links held them before this run rewrote those events' rows
    (read here, never through ref: both are built after this model). int_identity_map compares
    them with what the same events assert now: an assertion that is gone can split a person or
    forget an id, a new one can merge two people or add an id; nothing else can change a
    component. Empty in full scope, where the whole graph is recomputed. -#}

-- hourly runs only
-- depends_on: {{ ref('int_run_scope') }}
-- depends_on: {{ ref('int_run_scope_events') }}

{{ config(materialized='table') }}

{%- set previous_events = table_before_this_run(this.schema, 'int_events_deduped') %}
{%- set previous_links = table_before_this_run(this.schema, 'int_identity_links') %}

with

{% if is_full_scope() or previous_events is none or previous_links is none -%}

final as (

    select
        cast(null as varchar) as event_id,
        cast(null as varchar) as id_type,
        cast(null as varchar) as id_value,
        cast(null as varchar) as linked_id_type,
        cast(null as varchar) as linked_id_value
    where false

)

{%- else -%}

previous_events as (

    select * from {{ previous_events }}
    where {{ run_scope_events_predicate() }}

),

previous_links as (

    select * from {{ previous_links }}
    where {{ run_scope_events_predicate() }}

),

final as (

    {{ identity_assertions('previous_events', 'previous_links') }}

)

{%- endif %}

select * from final
