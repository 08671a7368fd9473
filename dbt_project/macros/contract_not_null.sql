{#- A pre-hook of every mart: an incremental mart's existing table gains the NOT NULL constraints its
    contract declares. dbt writes a contract's constraints only when it creates a table, so a mart
    created before a column was declared `not_null` would accept NULLs in that column until a full
    refresh. DuckDB enforces the constraint on every insert (the hourly runs write through
    replace_scope's inserts), which is why the marts' non-key columns carry a constraint instead of a
    `not_null` data test: a NULL fails the model before anything is written, and the check costs no
    test node an hour. One metadata query per incremental mart and run; an ALTER only for a column
    that still lacks its constraint. -#}
{% macro add_declared_not_null_constraints() -%}
    {#- only an existing incremental table the run updates: a table model, a new table or a full
        refresh is created with the contract's constraints -#}
    {%- if not execute or not is_incremental() -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set declared = [] -%}
    {%- for column in model.columns.values() -%}
        {%- for constraint in column.constraints if constraint.type == 'not_null' -%}
            {%- do declared.append(column.name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if not declared -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set lacking = run_query(
        "select column_name from information_schema.columns"
        ~ " where table_catalog = '" ~ this.database ~ "' and table_schema = '" ~ this.schema ~ "'"
        ~ " and table_name = '" ~ this.identifier ~ "' and is_nullable = 'YES'"
        ~ " and column_name in ('" ~ declared | join("', '") ~ "') order by column_name"
    ).columns[0].values() -%}
    {%- set statements = [] -%}
    {%- for column_name in lacking -%}
        {%- set nulls = run_query(
            'select count(*) from ' ~ this ~ ' where ' ~ adapter.quote(column_name) ~ ' is null'
        ).columns[0].values()[0] -%}
        {%- if nulls > 0 -%}
            {{ exceptions.raise_compiler_error(
                this ~ '.' ~ column_name ~ ' holds ' ~ nulls ~ ' NULL(s), but the model contract now'
                ~ ' declares it not_null: rebuild the mart and those after it once with'
                ~ ' `dbt build --full-refresh --select ' ~ this.identifier ~ '+` (README: changing an'
                ~ " incremental model's columns), then clear the failed hour"
            ) }}
        {%- endif -%}
        {%- do log('adding the declared NOT NULL constraint to ' ~ this ~ '.' ~ column_name, info=true) -%}
        {%- do statements.append(
            'alter table ' ~ this ~ ' alter column ' ~ adapter.quote(column_name) ~ ' set not null') -%}
    {%- endfor -%}
    {%- do return(statements | join(';\n')) -%}
{%- endmacro %}
