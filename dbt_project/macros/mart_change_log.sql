{#- The marts' change log, read by the analysts' snapshot publish (include/event_pipeline/snapshot.py).

    A model with config `change_log_key` (its unique key columns) records in audit.mart_changes the
    key hash of every row it deletes or inserts; NULL stands for "the whole table": a first build, a
    full refresh or a full-scope run. The publish then rewrites only those keys in the snapshot
    instead of hashing every row of the table on both sides (O(history) every hour). -#}

{% macro mart_change_log_ddl() -%}
    create schema if not exists audit;
    create table if not exists audit.mart_changes (table_name varchar, key_hash ubigint)
{%- endmacro %}

{% macro mart_change_log_name(relation) -%}
    '{{ relation.schema }}.{{ relation.identifier }}'
{%- endmacro %}

{% macro change_log_key_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{#- pre_hook of a model with change_log_key: a build that (re)creates the table logs it whole.
    A pre-hook, not a post-hook: after the build the table exists, so is_incremental() is true. -#}
{% macro log_mart_rebuild() -%}
    {%- if config.get('change_log_key') and not is_incremental() -%}
        {{ mart_change_log_ddl() }};
        insert into audit.mart_changes values ({{ mart_change_log_name(this) }}, null)
    {%- endif -%}
{%- endmacro %}
