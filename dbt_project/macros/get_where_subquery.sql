{#- dbt's get_where_subquery with one placeholder for a data test's `where` config:
    `__this_batch__` is `batch_hour = <the run's dump hour>` in an hourly run and `true` in a full-scope
    run. Tests on tables that grow with history check, every hour, only what that hour added; a
    full-scope build (`make test`, historical imports) checks every row. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- if '__this_batch__' in where -%}
            {%- set batch_predicate = 'true' if is_full_scope() else 'batch_hour = ' ~ batch_hour_sql() -%}
            {%- set where = where | replace('__this_batch__', batch_predicate) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
