{#- Incremental strategy `replace_scope`: delete the partitions this run owns, then insert the
    freshly computed rows. Unlike delete+insert on a unique_key it also empties partitions that
    no longer have any rows (a rerun hour that lost records, an event whose kept copy moved).

    The model names its scope with config `scope_predicate`: the name of a macro that returns a
    SQL predicate over the target's columns. The model's query must produce exactly the rows
    that satisfy that predicate. With config `change_log_key` the keys of the rows deleted and
    inserted go to audit.mart_changes (macros/mart_change_log.sql). -#}
{% macro get_incremental_replace_scope_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set dest_columns = arg_dict['dest_columns'] -%}
    {%- set scope_macro_name = config.get('scope_predicate') -%}
    {%- if not scope_macro_name -%}
        {{ exceptions.raise_compiler_error(
            'incremental_strategy replace_scope needs config scope_predicate (a macro name)'
        ) }}
    {%- endif -%}
    {%- set scope_macro = context.get(scope_macro_name) -%}
    {%- if scope_macro is none -%}
        {{ exceptions.raise_compiler_error('no macro named ' ~ scope_macro_name) }}
    {%- endif -%}
    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute='name')) -%}
    {%- set change_log_key = config.get('change_log_key') -%}
    {%- if not change_log_key -%}
    delete from {{ target }}
    where {{ scope_macro() }};
    {%- elif is_full_scope() -%}
    {{ mart_change_log_ddl() }};
    insert into audit.mart_changes values ({{ mart_change_log_name(target) }}, null);

    delete from {{ target }}
    where {{ scope_macro() }};
    {%- else -%}
    {#- The scope is evaluated once (its rows' ids, keys and row hashes), then deleted by rowid. Only
        keys whose rows differ are logged: most rows of a rewritten partition come back unchanged. -#}
    {{ mart_change_log_ddl() }};
    create or replace temp table replace_scope_deleted as
    select
        rowid as deleted_rowid,
        {{ change_log_key_hash(change_log_key) }} as key_hash,
        hash({{ dest_cols_csv }}) as row_hash
    from {{ target }}
    where {{ scope_macro() }};

    insert into audit.mart_changes
    select distinct {{ mart_change_log_name(target) }}, coalesce(deleted.key_hash, inserted.key_hash)
    from replace_scope_deleted as deleted
    full join (
        select
            {{ change_log_key_hash(change_log_key) }} as key_hash,
            hash({{ dest_cols_csv }}) as row_hash
        from {{ source }}
    ) as inserted
        on deleted.key_hash = inserted.key_hash and deleted.row_hash = inserted.row_hash
    where deleted.key_hash is null or inserted.key_hash is null;

    delete from {{ target }}
    where rowid in (select replace_scope_deleted.deleted_rowid from replace_scope_deleted);

    drop table replace_scope_deleted;
    {%- endif %}

    insert into {{ target }} ({{ dest_cols_csv }})
    select {{ dest_cols_csv }}
    from {{ source }}
{%- endmacro %}
