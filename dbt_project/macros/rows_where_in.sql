{#- The rows of `relation` whose `column` is in `values_sql` (a subquery), read in two steps: the
    rowids of the matching rows, reading that column alone, then those rows whole by rowid (a filter
    on rowid skips every other row group). One scan reads every column of every row group whose
    min/max of the column might hold a match, which for ids spread over all history is every row
    group. A unit test's input is a CTE, which has no rowid: read in one step there. -#}
{% macro rows_where_in(relation, column, values_sql) -%}
    {%- if relation.is_cte -%}
        select * from {{ relation }}
        where {{ column }} in ({{ values_sql }})
    {%- else -%}
        select * from {{ relation }}
        where rowid in (
            select rowid from {{ relation }}
            where {{ column }} in ({{ values_sql }})
        )
    {%- endif -%}
{%- endmacro %}
