{#- The rows of `relation` where `predicate` holds, read in two steps: the rowids of the matching
    rows, reading only the predicate's columns, then those rows whole by rowid (a filter on rowid
    skips every other row group). One scan reads every column of every vector that holds a match,
    which for rows spread over all history is nearly every vector of the table. A unit test's input
    is a CTE, which has no rowid: read in one step there. -#}
{% macro rows_where(relation, predicate) -%}
    {%- if relation.is_cte -%}
        select * from {{ relation }}
        where {{ predicate }}
    {%- else -%}
        select * from {{ relation }}
        where rowid in (
            select rowid from {{ relation }}
            where {{ predicate }}
        )
    {%- endif -%}
{%- endmacro %}

{#- rows_where for one column's values: `column` in `values_sql` (a subquery). -#}
{% macro rows_where_in(relation, column, values_sql) -%}
    {{ rows_where(relation, column ~ ' in (' ~ values_sql ~ ')') }}
{%- endmacro %}
